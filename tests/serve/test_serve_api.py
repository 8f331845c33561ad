"""The HTTP API of a real `deblur serve` process, through a real HTTP client (requests), and
raw sockets where the point is what the server does before the body has arrived."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from deblur_cli import __version__
from deblur_cli.files.image_io import load_image
from deblur_cli.quality.score import blur_score, measure
from tests.serve import images
from tests.serve.conftest import ROOT, SERVE, ServerProcess

LIMIT = 2**20  # the session server's --max-upload-mb 1


def _loaded(data: bytes, tmp_path: Path, name: str = "x"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_image(path, max_pixels=0)


def _error(response) -> str:
    """The one-line JSON error of a refusal (and nothing else in the body)."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def raw_exchange(url: str, request: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send ``request`` (which may stop mid-body) and read one answer: (status, body).

    A server that waited for the rest of the body would never answer: the socket times out
    and the test fails.
    """
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-answer"
            body += chunk
    return int(lines[0].split()[1]), body


def post_head(url: str, extra: str, path: str = "/api/deblur") -> bytes:
    host = urlsplit(url).netloc
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: multipart/form-data; boundary=deblurtestboundary\r\n{extra}\r\n"
    ).encode()


# ----------------------------------------------------------------------------- health and page


def test_health_names_version_weights_device_precision(server, tiny_weights):
    health = server.healthy()
    assert health["version"] == __version__
    assert health["weights"] == {"name": "tiny.safetensors", "sha256": hashlib.sha256(tiny_weights.read_bytes()).hexdigest()}
    assert health["device"] == "cpu" and health["precision"] == "fp32"
    assert health["max_upload_mb"] == 1 and health["max_pixels"] == 4_000_000


def test_page_and_its_files_come_from_the_server(server):
    page = server.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]  # nothing from elsewhere
    for src in ('src="/static/app.js"', 'href="/static/style.css"', 'href="/static/favicon.svg"'):
        assert src in page.text
        assert server.get(src.split('"')[1]).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no external link
    for bad in ("/static/..%2f..%2fpyproject.toml", "/static/../../etc/passwd", "/static/app.js.bak", "/nope"):
        r = server.get(bad)
        assert r.status_code == 404, bad
        _error(r)


# ----------------------------------------------------------------------------- deblurring


def test_deblur_answers_the_image_in_the_upload_format_with_exif_and_icc(server, tmp_path):
    upload = images.jpeg_with_metadata(48, 32)
    r = server.post("api/deblur", upload, name="holiday photo.jpeg")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert 'filename="holiday photo_deblurred.jpg"' in r.headers["content-disposition"]
    before, after = float(r.headers["x-blur-score-before"]), float(r.headers["x-blur-score-after"])
    out = _loaded(r.content, tmp_path, "out.jpg")
    src = _loaded(upload, tmp_path, "in.jpg")
    assert out.format == "JPEG" and out.size == src.size == (32, 48)  # orientation 6 applied
    assert out.icc_profile == src.icc_profile is not None
    exif = Image.open(io.BytesIO(r.content)).getexif()
    assert exif[images.MAKE] == "deblur-test-camera" and exif.get(images.ORIENTATION, 1) == 1
    assert not np.array_equal(out.rgb, src.rgb)
    assert before == pytest.approx(blur_score(src.rgb), abs=1e-4)
    assert after == pytest.approx(blur_score(out.rgb), abs=1e-4)  # the answer's own score


@pytest.mark.parametrize(
    "upload, fmt, mode, depth, alpha",
    [
        (images.png16_rgba, "PNG", None, 16, True),
        (images.grey_png, "PNG", "L", 8, False),
        (images.tiff, "TIFF", None, 8, False),
    ],
    ids=["png16-rgba", "grey-png", "tiff"],
)
def test_deblur_keeps_depth_alpha_and_grey(server, tmp_path, upload, fmt, mode, depth, alpha):
    data = upload()
    r = server.post("api/deblur", data, name=f"in.{fmt.lower()}")
    assert r.status_code == 200, r.text
    out, src = _loaded(r.content, tmp_path, "out"), _loaded(data, tmp_path, "in")
    assert out.format == fmt and out.size == src.size
    assert out.bit_depth == depth == src.bit_depth
    assert (out.alpha is not None) == alpha
    if alpha:
        assert np.array_equal(out.alpha, src.alpha)  # alpha passes through untouched
    assert out.is_grey == src.is_grey
    if mode:
        assert Image.open(io.BytesIO(r.content)).mode == mode


def test_deblur_gives_what_the_cli_writes(server, tiny_weights, tmp_path):
    """Same weights and options: the API's answer is the file `deblur photo.png -o out.png` writes."""
    src = tmp_path / "deep.png"
    src.write_bytes(images.png16_rgba())
    cli = subprocess.run(
        [sys.executable, "-m", "deblur_cli", str(src), "-o", str(tmp_path / "cli.png"), "--weights", str(tiny_weights),
         "--device", "cpu", "--precision", "fp32", "--threads", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    r = server.post("api/deblur", src.read_bytes(), name="deep.png")
    assert r.status_code == 200
    api, cli_out = _loaded(r.content, tmp_path, "api.png"), load_image(tmp_path / "cli.png")
    assert api.bit_depth == cli_out.bit_depth == 16
    assert np.array_equal(api.rgb, cli_out.rgb) and np.array_equal(api.alpha, cli_out.alpha)
    assert api.icc_profile == cli_out.icc_profile


def test_gif_comes_back_as_png_with_a_note(server):
    frames = [Image.fromarray(images.photo_array(32, 24, seed=s)).convert("P") for s in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    r = server.post("api/deblur", buffer.getvalue(), name="anim.gif")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "anim_deblurred.png" in r.headers["content-disposition"]
    assert "frames" in r.headers["x-deblur-notes"]


def test_eight_concurrent_uploads_are_all_answered_with_their_own_result(server):
    uploads = [images.png(40 + 4 * i, 24 + 2 * i, seed=i) for i in range(8)]
    alone = [server.post("api/deblur", data).content for data in uploads]

    def post(i: int):
        import requests

        return requests.post(server.url + "api/deblur", files={"file": (f"p{i}.png", uploads[i])}, timeout=300)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    for i, r in enumerate(answers):
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (40 + 4 * i, 24 + 2 * i)
        assert f"p{i}_deblurred.png" in r.headers["content-disposition"]
        assert r.content == alone[i]  # one run at a time: nothing mixed up between requests
    assert server.healthy()["queue"]["deblur"]["taken"] == 0


def test_weights_are_chosen_per_request_among_those_offered(server):
    """Issue 27 item 16: registered weights on this machine may be chosen per request (field
    'weights'); nothing else: no path, no URL, no unknown name (nothing is ever downloaded)."""
    offered = server.healthy()["choices"]
    assert offered["weights"][0] == "tiny.safetensors" and {"lite", "k3"} <= set(offered["weights"])
    assert offered["methods"] == ["network"]
    data = images.png(40, 32, seed=41)
    default = server.post("api/deblur", data)
    assert default.headers["x-deblur-weights"] == "tiny.safetensors" and default.headers["x-deblur-method"] == "network"
    lite = server.post("api/deblur", data, fields={"weights": "lite"})
    assert lite.status_code == 200 and lite.headers["x-deblur-weights"] == "lite"
    assert lite.content != default.content
    assert server.post("api/deblur", data, fields={"weights": "tiny.safetensors", "method": "network"}).content == default.content
    for bad in ("/etc/passwd", "../weights/lite.safetensors", "https://example.com/w.safetensors", "nope", "LITE"):
        r = server.post("api/deblur", data, fields={"weights": bad})
        assert r.status_code == 400 and "not offered" in _error(r) and "lite" in _error(r), bad
    r = server.post("api/deblur", data, fields={"weights": "x" * 300})
    assert r.status_code == 400 and "longer than" in _error(r)
    r = server.post("api/deblur", data, fields={"method": "kernel"})
    assert r.status_code == 400 and "unknown method" in _error(r)
    r = server.session.post(server.url + "api/deblur", files=[("weights", (None, "lite")), ("weights", (None, "k3")), ("file", ("p.png", data))], timeout=60)
    assert r.status_code == 400 and "more than once" in _error(r)
    assert server.healthy()["queue"]["deblur"]["taken"] == 0


# ----------------------------------------------------------------------------- score


def test_score_gives_the_blur_score_and_verdict(server, tmp_path):
    data = images.png(64, 48, seed=4)
    r = server.post("api/score", data)
    assert r.status_code == 200
    body = r.json()
    expected = blur_score(_loaded(data, tmp_path).rgb)
    assert body["score"] == pytest.approx(expected, abs=1e-4)
    measured = measure(_loaded(data, tmp_path).rgb)  # the one verdict rule of `deblur score`: frame and blurriest region
    assert body["threshold"] == 0.35 and body["blurry"] == measured.blurry(0.35)
    assert body["region"] == (None if measured.region is None else measured.region.to_dict())
    assert body["verdict"] == ("blurry" if body["blurry"] else "sharp")
    strict = server.post("api/score", data, params={"threshold": "0"}).json()
    assert strict["blurry"] is True and strict["threshold"] == 0
    assert server.post("api/score", data, params={"threshold": "2"}).status_code == 400


def test_score_of_a_flat_image_is_unmeasurable_not_blurry(server):
    flat = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 130, 140)).save(flat, format="PNG")
    body = server.post("api/score", flat.getvalue()).json()
    assert body["score"] is None and body["blurry"] is False and body["verdict"] == "unmeasurable"
    assert body["reason"]


# ----------------------------------------------------------------------------- refusals


def _bad_uploads() -> list[tuple[str, dict, int, str]]:
    jpeg = images.jpeg_with_metadata()
    return [
        ("text", {"files": {"file": ("notes.jpg", b"hello, I am not a photo\n" * 20)}}, 400, "not an image"),
        ("truncated", {"files": {"file": ("cut.jpg", jpeg[: len(jpeg) // 2])}}, 400, "cut.jpg"),
        ("empty", {"files": {"file": ("empty.png", b"")}}, 400, "empty"),
        ("no file field", {"files": {"photo": ("a.png", images.png())}}, 400, "field 'file'"),
        ("not multipart", {"data": images.png(), "headers": {"Content-Type": "image/png"}}, 400, "multipart"),
        ("two files", {"files": [("file", ("a.png", images.png())), ("file", ("b.png", images.png()))]}, 400, "one image"),
        ("too many bytes", {"files": {"file": ("big.png", bytes(LIMIT + 1))}}, 413, "limit"),
        ("too many pixels", {"files": {"file": ("bomb.png", images.png_header_claiming(30_000, 30_000))}}, 413, "pixels"),
        ("heic", {"files": {"file": ("phone.heic", images.heic_start())}}, 400, "phone.heic"),  # read since issue 27: this one is cut
        ("psd", {"files": {"file": ("layers.psd", b"8BPS\x00\x01" + bytes(64))}}, 415, "Photoshop"),
    ]


@pytest.mark.parametrize("what, kwargs, status, words", _bad_uploads(), ids=[b[0] for b in _bad_uploads()])
def test_bad_upload_gets_its_json_error_and_the_server_keeps_serving(server, what, kwargs, status, words):
    r = server.session.post(server.url + "api/deblur", timeout=60, **kwargs)
    assert r.status_code == status, (what, r.text)
    message = _error(r)
    assert words in message, message
    assert str(server.tmp) not in message and "/tmp" not in message and "deblur-serve-" not in message
    if what in ("text", "truncated", "too many pixels", "heic"):
        assert server.post("api/score", **kwargs).status_code == status  # the same rules for scores
    assert server.healthy()["queue"]["deblur"]["taken"] == 0
    assert server.post("api/deblur", images.png(24, 16)).status_code == 200


def test_a_declared_size_over_the_limit_is_refused_before_the_body_is_sent(server):
    status, body = raw_exchange(server.url, post_head(server.url, f"Content-Length: {50 * LIMIT}\r\n"))
    assert status == 413 and "limit" in json.loads(body)["error"]
    assert server.post("api/deblur", images.png(24, 16)).status_code == 200


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(server):
    first = b'--deblurtestboundary\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
    pieces = [first] + [bytes(64 * 1024)] * (LIMIT // (64 * 1024) + 2)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)  # no last chunk: unfinished
    status, body = raw_exchange(server.url, post_head(server.url, "Transfer-Encoding: chunked\r\n") + chunks)
    assert status == 413 and "limit" in json.loads(body)["error"]  # answered while the body is unfinished
    assert server.healthy()["queue"]["deblur"]["taken"] == 0


def test_jobs_endpoint(server):
    assert server.get("api/jobs/0123456789abcdef").json() == {"state": "unknown"}
    assert server.get("api/jobs/bad!").status_code in (400, 404)
    r = server.post("api/deblur", images.png(), headers={"X-Deblur-Job": "../../etc"})
    assert r.status_code == 400 and "X-Deblur-Job" in _error(r)
    r = server.post("api/deblur", images.png(), headers={"X-Deblur-Job": "abcdef0123456789"})
    assert r.status_code == 200
    assert server.get("api/jobs/abcdef0123456789").json() == {"state": "unknown"}  # forgotten once answered


def test_no_temporary_file_is_left_behind(server):
    server.post("api/deblur", images.png())
    server.post("api/deblur", b"not an image", name="x.png")
    assert not list(server.tmp.iterdir())
    # nor a line in the user's record of written photos for each answer (issue 27, second pass)
    from deblur_cli.files.ledger import LEDGER_NAME

    assert not (server.cache / LEDGER_NAME).exists()
    assert not server.uploads() and len(list((server.cache / "serve").glob("uploads-*"))) == 1


# ----------------------------------------------------------------------------- the process


def test_full_queue_disconnects_warning_and_ctrl_c(tiny_weights, tmp_path):
    """--queue-size 1: a stalled upload holds the only place (503 for the next), its client
    leaving frees it; the same for the score queue, which /api/health reports too; --host
    0.0.0.0 warns once; Ctrl-C stops the server cleanly."""
    proc = ServerProcess(
        ["--weights", str(tiny_weights), "--device", "cpu", "--threads", "1", "--queue-size", "1", "--host", "0.0.0.0"],
        tmp_path / "tmp",
    )
    try:
        parts = urlsplit(proc.url)
        stalled = socket.create_connection((parts.hostname, parts.port), timeout=30)
        stalled.sendall(post_head(proc.url, "Content-Length: 500000\r\n") + b"--deblurtestboundary\r\n")
        proc.wait_until(lambda h: h["queue"]["deblur"]["taken"] == 1, "the stalled upload holds the place")
        busy = proc.post("api/deblur", images.png())
        assert busy.status_code == 503 and "busy" in _error(busy)
        stalled.close()  # the client goes away mid-upload
        proc.wait_until(lambda h: h["queue"]["deblur"]["taken"] == 0, "the place is free again")
        assert proc.post("api/deblur", images.png()).status_code == 200
        # the score and preview queue: a stalled score holds its only place (issue 27 item 6)
        stalled = socket.create_connection((parts.hostname, parts.port), timeout=30)
        stalled.sendall(post_head(proc.url, "Content-Length: 500000\r\n", "/api/score") + b"--deblurtestboundary\r\n")
        health = proc.wait_until(lambda h: h["queue"]["score"]["taken"] == 1, "the stalled score holds the place")
        assert health["queue"]["score"] == {"size": 1, "taken": 1, "waiting": 0}
        assert health["queue"]["deblur"] == {"size": 1, "taken": 0, "waiting": 0}
        for path in ("api/score", "api/preview"):
            busy = proc.post(path, images.png())
            assert busy.status_code == 503 and "scores and previews" in _error(busy)
        assert proc.post("api/deblur", images.png()).status_code == 200  # the other queue is free
        stalled.close()
        proc.wait_until(lambda h: h["queue"]["score"]["taken"] == 0, "the score place is free again")
    finally:
        code = proc.stop()
    stderr = "".join(proc.stderr)
    assert code == 0, stderr
    assert "server stopped" in stderr and "Traceback" not in stderr
    warnings = [line for line in proc.stderr if "no authentication" in line]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0]
    assert not list(proc.tmp.iterdir())
    assert not list((proc.cache / "serve").iterdir())  # its uploads folder went with it


def test_a_taken_port_is_one_line_and_exit_2(server):
    port = str(urlsplit(server.url).port)
    r = subprocess.run([*SERVE, "--port", port], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "cannot listen" in r.stderr and "--port" in r.stderr
    assert server.healthy()


def test_uploads_of_a_server_killed_with_sigkill_are_removed_by_the_next(tiny_weights, tmp_path):
    """Uploads live in the user cache, never in TMPDIR; a server killed with SIGKILL while one
    photo runs and another waits leaves both behind, and the next server removes them at start
    (issue 27 item 5), keeping a live server's folder."""
    import signal

    import requests

    cache = tmp_path / "cache"
    args = ["--weights", str(tiny_weights), "--device", "cpu", "--threads", "1"]
    first = ServerProcess(args, tmp_path / "tmp1", cache=cache)
    big = io.BytesIO()
    Image.new("RGB", (3000, 2000), (90, 120, 150)).save(big, format="PNG")
    with ThreadPoolExecutor(2) as pool:
        tokens = ["kill-test-running", "kill-test-waiting"]
        for token, data in zip(tokens, (big.getvalue(), images.png())):
            pool.submit(requests.post, first.url + "api/deblur", files={"file": ("p.png", data)},
                        headers={"X-Deblur-Job": token}, timeout=120)
            first.wait_until(lambda h, t=token: first.get(f"api/jobs/{t}").json()["state"] in ("running", "waiting"), token)
        assert first.get(f"api/jobs/{tokens[0]}").json()["state"] == "running"
        left = [p for p in first.uploads() if p.name == "upload"]
        assert len(left) == 2  # one running, one waiting
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)
    assert [p for p in first.uploads() if p.name == "upload"] == left  # SIGKILL: nothing could clean up
    assert not list((tmp_path / "tmp1").iterdir())  # and nothing ever went to TMPDIR

    second = ServerProcess(args, tmp_path / "tmp2", cache=cache)
    try:
        assert not any(p.exists() for p in left)
        folders = list((cache / "serve").glob("uploads-*"))
        assert len(folders) == 1 and f"-{second.proc.pid}-" in folders[0].name  # its own, empty
        third = ServerProcess(args, tmp_path / "tmp3", cache=cache)  # a second live server keeps it
        try:
            assert folders[0].exists() and len(list((cache / "serve").glob("uploads-*"))) == 2
        finally:
            third.stop()
    finally:
        second.stop()
    assert not list((cache / "serve").iterdir()), (first.proc.pid, second.proc.pid, third.proc.pid, second.stderr[-5:], third.stderr[-5:])


def test_score_sees_one_blurred_region_as_deblur_score_does(server, tmp_path):
    """Issue 27 item 11, the server's sibling: /api/score gives the region and its verdict."""
    from tests.quality.test_score import _street_with_a_moving_car

    car, _ = _street_with_a_moving_car(1)
    buffer = io.BytesIO()
    Image.fromarray((np.clip(car, 0, 1) * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    body = server.post("api/score", buffer.getvalue()).json()
    assert body["score"] <= 0.35 and body["verdict"] == "blurry" and body["region"]["score"] > 0.65


def test_a_phone_photo_comes_back_in_its_own_format(server, tmp_path):
    """Issue 27 item 12 in the server: a HEIC or AVIF upload is read (it was 415) and answered
    in its format, with its EXIF."""
    from tests.cli.test_hostile_round_three import _phone_photo

    for suffix, fmt, mime in ((".heic", "HEIF", "image/heic"), (".avif", "AVIF", "image/avif")):
        path = tmp_path / f"IMG_7{suffix}"
        _phone_photo(path, fmt)
        r = server.post("api/deblur", path.read_bytes(), name=path.name)
        assert r.status_code == 200 and r.headers["content-type"] == mime, (r.status_code, r.text[:200])
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.format == fmt and im.size == (40, 56) and im.getexif().get(0x010F) == "PhoneMaker"
        assert f"IMG_7_deblurred{suffix}" in r.headers.get("content-disposition", "")
