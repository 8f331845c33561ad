"""Slow and idle clients (issue 27 item 4), measured with raw sockets on 127.0.0.1 against a
real `deblur serve` process with short limits: an upload trickled a byte at a time loses its
place in the queue, headers sent a line at a time are cut off, connections over the cap are
refused at once, and a client that never reads its answer is let go.

What each test saw is printed (``pytest -s``); no test asserts a time, only what happens,
with a generous bound after which it fails.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.serve import images
from tests.serve.conftest import ServerProcess
from tests.serve.test_serve_api import post_head, raw_exchange

GIVE_UP = 60.0  # seconds after which a test fails: the server never did what it should


@pytest.fixture(scope="module")
def strict(tiny_weights, tmp_path_factory):
    """A server with short limits: uploads 2 s, headers 1 s, 8 connections, 2 queue places."""
    proc = ServerProcess(
        ["--weights", str(tiny_weights), "--device", "cpu", "--threads", "1", "--upload-timeout", "2",
         "--header-timeout", "1", "--max-connections", "8", "--queue-size", "2"],
        tmp_path_factory.mktemp("strict-tmp"),
    )
    yield proc
    proc.stop()


def _address(proc) -> tuple[str, int]:
    parts = urlsplit(proc.url)
    return parts.hostname, parts.port


def _health(proc) -> dict:
    """/api/health on a connection of its own, closed after the answer (it never counts against the cap)."""
    host = urlsplit(proc.url).netloc
    status, body = raw_exchange(proc.url, f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert status == 200, body
    return json.loads(body)


def _until(predicate, what: str):
    deadline = time.monotonic() + GIVE_UP
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


class Client:
    """A raw connection that sends when told and collects whatever the server sends back."""

    def __init__(self, proc) -> None:
        self.sock = socket.create_connection(_address(proc), timeout=GIVE_UP)
        self.received = b""
        self.closed_by_server = False
        self.started = time.monotonic()

    def send(self, data: bytes) -> bool:
        """False once the server has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed_by_server = True
            return False

    def read_ready(self, wait: float) -> None:
        """Take what has arrived within ``wait`` seconds; notes a close by the server."""
        if self.closed_by_server:
            return
        ready, _, _ = select.select([self.sock], [], [], wait)
        if not ready:
            return
        try:
            chunk = self.sock.recv(65536)
        except OSError:  # reset: the server closed with our bytes unread
            chunk = b""
        if chunk:
            self.received += chunk
        else:
            self.closed_by_server = True

    def answer(self) -> tuple[int, dict] | None:
        head, sep, body = self.received.partition(b"\r\n\r\n")
        if not sep:
            return None
        status = int(head.split()[1])
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        return (status, json.loads(body[:length])) if len(body) >= length else None

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("path, queue", [("/api/deblur", "deblur"), ("/api/score", "score")])
def test_an_upload_trickled_a_byte_at_a_time_loses_its_place(strict, path, queue):
    """1 byte every 0.5 s, under the 60 s stall limit: once the 2 s upload deadline passes the
    client is answered 408, its queue place is free while it still trickles, and the
    connection is closed after the 5 s drain. The same for scores (their own queue)."""
    client = Client(strict)
    client.send(post_head(strict.url, "Content-Length: 100000\r\n", path) + b"--deblurtestboundary\r\n")
    _until(lambda: _health(strict)["queue"][queue]["taken"] == 1, "the trickling upload holds a place")
    answered_at = None
    sent = 0
    while not client.closed_by_server and time.monotonic() - client.started < GIVE_UP:
        sent += client.send(b"x")
        client.read_ready(0.5)
        if answered_at is None and client.answer():
            answered_at = time.monotonic() - client.started
            assert _health(strict)["queue"][queue]["taken"] == 0  # freed while the client still sends
    client.close()
    assert client.answer() is not None, client.received
    status, body = client.answer()
    assert status == 408 and "--upload-timeout" in body["error"], body
    assert client.closed_by_server, "the server kept draining the trickle"
    print(f"\ntrickle: 408 after {answered_at:.1f} s, the place free at once; {sent} bytes trickled; "
          f"closed {time.monotonic() - client.started:.1f} s after connecting")
    assert strict.post("api/deblur", images.png(24, 16)).status_code == 200


def test_headers_sent_a_line_at_a_time_are_cut_off(strict):
    client = Client(strict)
    client.send(f"GET /api/health HTTP/1.1\r\nHost: {urlsplit(strict.url).netloc}\r\n".encode())
    lines = 0
    while not client.closed_by_server and time.monotonic() - client.started < GIVE_UP:
        if client.send(b"X-Slow-%d: 1\r\n" % lines):
            lines += 1
        client.read_ready(0.3)
    client.close()
    assert client.closed_by_server
    status, body = client.answer()
    assert status == 408 and "headers" in body["error"] and "--header-timeout" in body["error"]
    print(f"\nslow headers: {lines} lines sent, closed after {time.monotonic() - client.started:.1f} s")


def test_a_connection_that_sends_nothing_is_closed(strict):
    client = Client(strict)
    while not client.closed_by_server and time.monotonic() - client.started < GIVE_UP:
        client.read_ready(0.5)
    client.close()
    assert client.closed_by_server and client.received == b""  # no answer to a request never made


def test_connections_over_the_cap_are_refused_at_once_and_idle_ones_let_go(strict):
    """40 connections at once against a cap of 8 (the issue's trial held 400, each sending a
    header line every 10 s): 32 are refused with a 503 at once, the 8 others are closed at
    the header timeout however often they send a header line, and the server answers again."""
    strict.session.close()  # its kept-alive connection would take one of the 8
    time.sleep(0.5)
    clients = [Client(strict) for _ in range(40)]

    def settle(predicate, what: str):
        def check():
            for client in clients:
                client.read_ready(0)
            return predicate()
        return _until(check, what)

    try:
        settle(lambda: sum(1 for c in clients if c.answer()) >= 32, "32 connections refused")
        refused = [c for c in clients if c.answer()]
        held = [c for c in clients if c not in refused]
        for client in refused:
            status, body = client.answer()
            assert status == 503 and "--max-connections" in body["error"]
            settle(lambda c=client: c.closed_by_server, "a refused connection closed")
        line = 0
        while not all(c.closed_by_server for c in held) and time.monotonic() - held[0].started < GIVE_UP:
            for client in held:  # a header line every 0.2 s, as the trial's clients did every 10 s
                client.send(b"GET / HTTP/1.1\r\n" if line == 0 else b"X-Line-%d: 1\r\n" % line)
                client.read_ready(0)
            line += 1
            time.sleep(0.2)
        assert len(refused) == 32 and len(held) == 8
        assert all(c.closed_by_server for c in held), "a connection sending header lines was held"
    finally:
        for client in clients:
            client.close()
    print(f"\n40 connections, cap 8: {len(refused)} refused with 503 at once; the other 8 closed after "
          f"{time.monotonic() - held[0].started:.1f} s ({line} header lines each)")
    assert _health(strict)["status"] == "ok"


def test_a_client_that_never_reads_its_answer_is_let_go():
    """The answer waits in a full send buffer; after ``stall_seconds`` the connection is aborted
    and the application's send returns (so its memory is freed)."""
    import asyncio

    import uvicorn

    from deblur_cli.serve.connections import ConnectionLimits, protocol_class
    from deblur_cli.serve.server import listen

    done = threading.Event()

    async def big(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        for _ in range(64):  # 64 MB: far more than the socket buffers hold
            await send({"type": "http.response.body", "body": bytes(2**20), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        done.set()

    sock = listen("127.0.0.1", 0)
    limits = ConnectionLimits(stall_seconds=1.0)
    server = uvicorn.Server(uvicorn.Config(big, http=protocol_class(limits), lifespan="off", log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _until(lambda: server.started, "the server started")
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert done.wait(GIVE_UP), "the application's send never returned"
            got, closed = b"", False
            while not closed:
                try:
                    chunk = client.recv(2**20)
                except OSError:
                    break
                closed = not chunk
                got += chunk
        assert len(got) < 64 * 2**20  # cut off, not delivered
    finally:
        server.should_exit = True
        thread.join(30)
        del asyncio
