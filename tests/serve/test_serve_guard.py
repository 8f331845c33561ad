"""Who may use the server (issue 27 items 2, 3 and 9): other web sites' pages are refused by
the API, every request must name this server in its Host header (DNS rebinding), uploads are
refused from their header when they declare too many pixels, and every loopback spelling of
``--host`` is loopback. Real server processes and raw sockets on 127.0.0.1."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from deblur_cli.serve.guard import HostRule, split_host
from tests.serve import images
from tests.serve.conftest import ServerProcess
from tests.serve.test_serve_api import _error, raw_exchange

API_POSTS = ("api/deblur", "api/score", "api/preview")


def _port(server) -> int:
    return urlsplit(server.url).port


def _get(server, path: str, host: str) -> tuple[int, bytes]:
    return raw_exchange(server.url, f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())


def _served_lines(server, status: int) -> list[str]:
    return [line for line in server.stderr if line.startswith(f"{status} ")]


# ----------------------------------------------------------------------------- item 2: origins


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}",
                                    "http://localhost.evil.example:{port}", "http://127.0.0.1:{port}/path"])
def test_a_cross_origin_request_to_the_api_is_refused_before_any_work(server, origin):
    origin = origin.format(port=_port(server))
    before = len(_served_lines(server, 403))
    for path in API_POSTS:
        r = server.post(path, images.png(), headers={"Origin": origin})
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "cross-origin" in _error(r)
    for path in ("api/health", "api/jobs/0123456789abcdef"):
        r = server.get(path, headers={"Origin": origin})
        assert r.status_code == 403 and "cross-origin" in _error(r)
    assert server.healthy()["queue"]["deblur"]["taken"] == 0
    # each refusal is shown on the console (read by a thread: wait for the lines to come)
    deadline = time.monotonic() + 30
    while len(_served_lines(server, 403)) < before + 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_served_lines(server, 403)) == before + 5


def test_the_servers_own_origin_and_clients_without_one_are_served(server):
    port = _port(server)
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", None):
        headers = {"Origin": origin} if origin else {}
        assert server.post("api/score", images.png(), headers=headers).status_code == 200, origin
    # a same-origin GET from the page carries no Origin, only Sec-Fetch-Site
    assert server.get("api/health", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert server.get("api/health", headers={"Sec-Fetch-Site": "none"}).status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_another_sites_request_without_origin_is_refused(server, site):
    r = server.post("api/score", images.png(), headers={"Sec-Fetch-Site": site})
    assert r.status_code == 403 and "cross-origin" in _error(r)
    r = server.get("api/health", headers={"Sec-Fetch-Site": site})
    assert r.status_code == 403


def test_the_page_itself_may_be_opened_from_a_link(server):
    r = server.get("/", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"


# ----------------------------------------------------------------------------- item 3: Host


@pytest.mark.parametrize("host", ["attacker.example:{port}", "attacker.example", "127.0.0.1:{other}", "127.0.0.1",
                                  "localhost:{other}", "[::1]:{other}", "::1:{port}", "127.0.0.1:{port}@evil",
                                  "", "10.1.2.3:{port}", "127.0.0.2:{port}"])
def test_a_host_header_naming_another_server_is_refused(server, host):
    port = _port(server)
    host = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    for path in ("", "api/health", "static/app.js"):
        status, body = _get(server, path, host)
        assert status == 400, (host, path, status)
        assert "DNS rebinding" in json.loads(body)["error"] or "Host" in json.loads(body)["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST.:{port}", "[::1]:{port}"])
def test_the_names_of_this_server_are_served(server, host):
    status, body = _get(server, "api/health", host.format(port=_port(server)))
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_a_request_without_host_is_refused(server):
    status, body = raw_exchange(server.url, b"GET /api/health HTTP/1.0\r\n\r\n")
    assert status == 400 and "Host" in json.loads(body)["error"]


def test_a_rebinding_post_is_refused_before_the_body_is_read(server):
    port = _port(server)
    head = (
        f"POST /api/deblur HTTP/1.1\r\nHost: attacker.example:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 900000\r\n\r\n"
    ).encode()
    status, body = raw_exchange(server.url, head)  # the body never comes: answered at once
    assert status == 400 and "DNS rebinding" in json.loads(body)["error"]


@pytest.mark.parametrize(
    "host, value, port, allowed",
    [
        ("127.0.0.1", "localhost:8000", 8000, True),
        ("127.0.0.1", "localhost:8001", 8000, False),
        ("127.0.0.1", "localhost", 80, True),
        ("127.0.0.1", "localhost", 8000, False),
        ("127.1", "127.1:8000", 8000, True),
        ("127.1", "0x7f.1:8000", 8000, True),
        ("::1", "[::1]:8000", 8000, True),
        ("photos.lan", "PHOTOS.LAN:8000", 8000, True),
        ("photos.lan", "other.lan:8000", 8000, False),
        ("192.168.1.5", "192.168.1.5:8000", 8000, True),
        ("192.168.1.5", "192.168.1.6:8000", 8000, False),
        ("0.0.0.0", "192.168.1.6:8000", 8000, True),  # any address: an address cannot be rebound
        ("0.0.0.0", "[fe80::1]:8000", 8000, True),
        ("0.0.0.0", "attacker.example:8000", 8000, False),
        ("::", "attacker.example:8000", 8000, False),
    ],
)
def test_host_rule(host, value, port, allowed):
    parsed = split_host(value)
    assert parsed is not None
    assert HostRule.for_host(host).allows(*parsed, port) is allowed


@pytest.mark.parametrize(
    "host, value, local, allowed",
    [
        ("photos.lan", "192.168.1.5:8000", "192.168.1.5", True),  # --host as a name: its address too
        ("photos.lan", "192.168.1.6:8000", "192.168.1.5", False),
        ("photos.lan", "[fe80::1]:8000", "fe80::1", True),
        ("photos.lan", "attacker.example:8000", "192.168.1.5", False),
    ],
)
def test_the_address_a_connection_came_in_on_names_the_server(host, value, local, allowed):
    assert HostRule.for_host(host).allows(*split_host(value), 8000, local) is allowed


def test_a_preflight_from_another_site_is_refused(server):
    """OPTIONS, as a browser sends before a cross-origin request with headers (X-Deblur-Job)."""
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "x-deblur-job"}
    r = server.session.options(server.url + "api/deblur", headers=headers, timeout=60)
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = server.session.options(server.url + "api/deblur", timeout=60)
    assert r.status_code == 405  # no CORS at all: the page is same-origin


@pytest.mark.parametrize("value", ["", "a b", "::1", "[::1", "[::1]x", "host:", "host:0", "host:99999", "host:+80", "u@host"])
def test_malformed_host_values(value):
    assert split_host(value) is None


# ----------------------------------------------------------------------------- item 2: pixels; item 9


def _one_bit_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height), 0).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _peak_memory(pid: int) -> int | None:
    """The process's peak resident memory in bytes (Linux), None elsewhere."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return None if kib is None else kib * 1024


def test_default_server_on_127_1_refuses_a_small_png_of_10000_by_10000_from_its_header(tiny_weights, tmp_path):
    """--host 127.1 is loopback (no warning); with the default limits a 12 KB PNG that
    decodes to 10000 x 10000 (1.2 GB of float pixels) is refused before it is decoded."""
    bomb = _one_bit_png(10_000, 10_000)
    assert len(bomb) < 20_000
    proc = ServerProcess(["--weights", str(tiny_weights), "--device", "cpu", "--threads", "1", "--host", "127.1"], tmp_path / "tmp")
    try:
        assert proc.url.startswith("http://127.0.0.1:")
        status, body = _get(proc, "api/health", f"127.1:{_port(proc)}")  # the spelling given is a name of the server
        assert status == 200
        peak = _peak_memory(proc.proc.pid)
        for path in ("api/deblur", "api/score", "api/preview"):
            r = proc.post(path, bomb, name="bomb.png")
            assert r.status_code == 413, (path, r.text)
            assert "10000x10000" in _error(r) and "--max-pixels" in _error(r)
        if peak is not None:
            assert _peak_memory(proc.proc.pid) - peak < 200 * 2**20  # nothing was decoded
        assert proc.post("api/score", images.png()).status_code == 200
    finally:
        code = proc.stop()
    assert code == 0
    assert not [line for line in proc.stderr if "no authentication" in line]


@pytest.mark.parametrize("host", ["127.1", "0x7f.1", "::1", "[::1]", "localhost", "::ffff:127.0.0.1", "127.255.255.254"])
def test_every_loopback_spelling_is_loopback(host):
    from deblur_cli.serve.guard import is_loopback

    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "8.8.8.8", "example.com", "0", "127.0.0.1 x"])
def test_other_addresses_are_not_loopback(host):
    from deblur_cli.serve.guard import is_loopback

    assert not is_loopback(host)
