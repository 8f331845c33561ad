"""Shared fixtures: tiny model configs keep the suite fast on a 2-core CPU."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import threading
from collections import Counter

import pytest
import torch

from deblur_cli.network.model import ModelConfig

TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded, and CI has only 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder: downloads and the record of written outputs
    (deblur_cli.files.ledger) never reach the user's cache, nor pass from test to test."""
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path_factory.mktemp("deblur-cache")))


@pytest.fixture
def tiny_config() -> ModelConfig:
    return TINY


class HostileServer:
    """A local HTTP server on 127.0.0.1 (ephemeral port) serving ``body`` through hostile routes.

    ``/ok/...`` serves it; ``/tampered/...`` flips one byte; ``/error/...`` answers 500; any
    unknown route 404; ``/silent/...`` never answers; ``/stall/...`` sends headers and a third
    of the body, then nothing; ``/short/...`` promises the whole body and hangs up after a third;
    ``/endless/...`` sends zeros for ever without a Content-Length; ``/huge/...`` claims 10 GB;
    ``/gzip/...`` sends the body gzip-encoded although identity was asked; ``/drip/...`` sends
    one byte every ``drip_s`` seconds. ``hits`` counts requests per route.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.drip_s = 0.05
        self.hits: Counter[str] = Counter()
        self.stop = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                route = self.path.strip("/").split("/")[0]
                outer.hits[route] += 1
                getattr(self, f"route_{route.replace('-', '_')}", lambda: self.send_error(404))()

            def _head(self, length: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def route_ok(self) -> None:
                self._head(len(outer.body))
                self.wfile.write(outer.body)

            def route_tampered(self) -> None:  # right size, one byte changed on the way
                body = bytearray(outer.body)
                body[len(body) // 2] ^= 0x01
                self._head(len(body))
                self.wfile.write(bytes(body))

            def route_error(self) -> None:
                self.send_error(500)

            def route_silent(self) -> None:  # never answers within the client's timeout
                outer.stop.wait(10)

            def route_stall(self) -> None:  # headers and part of the body, then silence
                self._head(len(outer.body))
                self.wfile.write(outer.body[: len(outer.body) // 3])
                self.wfile.flush()
                outer.stop.wait(10)

            def route_short(self) -> None:  # promises the whole body, hangs up after a third
                self._head(len(outer.body))
                self.wfile.write(outer.body[: len(outer.body) // 3])
                self.wfile.flush()
                self.close_connection = True

            def route_endless(self) -> None:  # no Content-Length, and the body never ends
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                block = b"\0" * 65536
                while not outer.stop.is_set():
                    try:
                        self.wfile.write(block)
                    except OSError:  # the client hung up: what it should do
                        return

            def route_huge(self) -> None:  # claims 10 GB, sends the real body
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 10**9))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(outer.body)
                    outer.stop.wait(10)

            def route_gzip(self) -> None:  # gzip-encoded although the client asked for identity
                packed = gzip.compress(outer.body)
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(packed)))
                self.end_headers()
                self.wfile.write(packed)

            def route_drip(self) -> None:  # one byte every drip_s seconds, for ever
                self._head(len(outer.body))
                for byte in outer.body:
                    if outer.stop.wait(outer.drip_s):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *args: None  # broken pipes after client timeouts
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hostile_server():
    """Factory: ``hostile_server(body) -> HostileServer``; all are closed after the test."""
    servers: list[HostileServer] = []

    def make(body: bytes) -> HostileServer:
        servers.append(HostileServer(body))
        return servers[-1]

    yield make
    for s in servers:
        s.close()
