"""The queue and the failure paths, on a real server (uvicorn on 127.0.0.1, in a thread) whose
network is a stand-in the test controls: one run at a time and in order, a client that leaves
stops its work, an unexpected failure is a JSON 500 without a traceback."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import uvicorn

from deblur_cli.serve.app import ServeOptions, create_app
from deblur_cli.serve.jobs import Cancelled
from deblur_cli.serve.server import listen, page_url
from tests.serve import images
from tests.serve.test_serve_api import post_head


class StandIn:
    """A Deblurrer stand-in: records what runs, may hold each run until released, or fail."""

    device = "cpu"
    precision = "fp32"
    weights_info = None

    def __init__(self, hold: bool = False, fail: Exception | None = None) -> None:
        self.hold = hold
        self.fail = fail
        self.release = threading.Event()
        self.started: list[int] = []  # image widths, in the order runs started
        self.running = 0
        self.most_at_once = 0
        self.cancelled: list[int] = []
        self.lock = threading.Lock()

    def run(self, rgb: np.ndarray, progress=None) -> np.ndarray:
        with self.lock:
            self.started.append(rgb.shape[1])
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.fail is not None:
                raise self.fail
            tile = 0
            while self.hold and not self.release.wait(0.02):
                tile += 1
                try:
                    progress(tile % 10, 10)  # the engine reports tiles; a cancelled job raises here
                except Cancelled:
                    self.cancelled.append(rgb.shape[1])
                    raise
            return 1.0 - rgb
        finally:
            with self.lock:
                self.running -= 1


class ThreadServer:
    def __init__(self, standin: StandIn, tmp: Path, monkeypatch, loader=None, **options) -> None:
        monkeypatch.setenv("TMPDIR", str(tmp))
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        self.tmp = tmp
        self.app = create_app(standin, ServeOptions(**options), loader=loader)
        self.sock = listen("127.0.0.1", 0)
        self.url = page_url(self.sock)
        self.server = uvicorn.Server(uvicorn.Config(self.app, http="h11", lifespan="off", log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def uploads(self) -> list[Path]:
        """What is in this server's uploads folder (in the user cache)."""
        return list(self.app.state.server.uploads.iterdir())

    def health(self) -> dict:
        return requests.get(self.url + "api/health", timeout=30).json()

    def wait_until(self, predicate, what: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.01)
        pytest.fail(f"never happened: {what}")

    def close(self) -> None:
        from deblur_cli.serve.app import close

        close(self.app)
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def make_server(tmp_path, monkeypatch):
    made: list[ThreadServer] = []

    def make(standin: StandIn, loader=None, **options) -> ThreadServer:
        made.append(ThreadServer(standin, tmp_path / f"tmp{len(made)}", monkeypatch, loader, **options))
        made[-1].tmp.mkdir()
        return made[-1]

    yield make
    for server in made:
        server.close()


def _post(url: str, width: int, token: str | None = None) -> requests.Response:
    headers = {"X-Deblur-Job": token} if token else {}
    files = {"file": (f"w{width}.png", images.png(width, 16, seed=width))}
    return requests.post(url + "api/deblur", files=files, headers=headers, timeout=60)


def test_requests_run_one_at_a_time_in_arrival_order(make_server):
    standin = StandIn(hold=True)
    server = make_server(standin)
    widths = [30, 31, 32, 33]
    tokens = [f"order-test-{w}" for w in widths]
    with ThreadPoolExecutor(len(widths)) as pool:
        answers = []
        for i, (width, token) in enumerate(zip(widths, tokens)):
            answers.append(pool.submit(_post, server.url, width, token))
            # the next request is sent once this one waits in the queue (or runs)
            server.wait_until(
                lambda t=token: requests.get(server.url + f"api/jobs/{t}", timeout=30).json()["state"] in ("waiting", "running"),
                f"request {i} queued",
            )
        states = [requests.get(server.url + f"api/jobs/{t}", timeout=30).json() for t in tokens]
        assert states[0]["state"] == "running" and states[0]["total"] == 10
        assert states[0]["seconds"] >= 0  # how long it has run: the page's time left comes from it
        assert [s.get("ahead") for s in states[1:]] == [1, 2, 3]
        assert server.health()["queue"]["deblur"] == {"size": 16, "taken": 4, "waiting": 3}
        standin.release.set()
        results = [a.result() for a in answers]
    assert [r.status_code for r in results] == [200] * 4
    assert standin.started == widths and standin.most_at_once == 1
    assert not list(server.tmp.iterdir()) and not server.uploads()


def test_a_client_that_leaves_stops_its_work_and_frees_its_place(make_server):
    standin = StandIn(hold=True)
    server = make_server(standin)
    body = (
        b'--deblurtestboundary\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + images.png(40, 16) + b"\r\n--deblurtestboundary--\r\n"
    )
    host, port = server.sock.getsockname()[:2]
    with socket.create_connection((host, port), timeout=30) as client:
        client.sendall(post_head(server.url, f"Content-Length: {len(body)}\r\n") + body)
        server.wait_until(lambda: standin.started == [40], "the work started")
    # the client has gone while its photo runs: the work stops at its next tile
    server.wait_until(lambda: standin.cancelled == [40], "the work was cancelled")
    server.wait_until(lambda: server.health()["queue"]["deblur"]["taken"] == 0, "the place was freed")
    server.wait_until(lambda: not server.uploads(), "its upload folder was removed")
    standin.release.set()
    assert _post(server.url, 24).status_code == 200  # and the server goes on


def test_an_unexpected_failure_is_a_json_500_without_traceback(make_server):
    server = make_server(StandIn(fail=RuntimeError("boom\nTraceback (most recent call last): secret")))
    r = _post(server.url, 20)
    assert r.status_code == 500
    assert r.json() == {"error": "internal error; the server's log has the details"}
    assert "boom" not in r.text and "Traceback" not in r.text
    assert server.health()["status"] == "ok" and server.health()["queue"]["deblur"]["taken"] == 0
    assert not list(server.tmp.iterdir()) and not server.uploads()


def test_stopping_cancels_waiting_and_running_work(make_server):
    standin = StandIn(hold=True)
    server = make_server(standin)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_post, server.url, 30, "stop-test-1")
        server.wait_until(lambda: standin.started == [30], "the first runs")
        second = pool.submit(_post, server.url, 31, "stop-test-2")
        server.wait_until(lambda: server.health()["queue"]["deblur"]["waiting"] == 1, "the second waits")
        from deblur_cli.serve.app import cancel_all

        cancel_all(server.app)
        answers = [first.result(), second.result()]
    assert [r.status_code for r in answers] == [503, 503]
    assert all(r.json() == {"error": "the server is stopping"} for r in answers)
    assert standin.started == [30] and standin.cancelled == [30]  # the second never ran
    late = _post(server.url, 20)  # and nothing new is taken
    assert late.status_code == 503 and late.json() == {"error": "the server is stopping"}


def test_other_weights_load_on_the_worker_while_the_job_says_so(make_server):
    """A request for other registered weights: its job is "loading" them (the page says so)
    while the loader runs on the worker thread; the runner is kept for the next request of
    the same choice, and let go for another (issue 27 item 16)."""
    loaded: list[tuple[str, str | None]] = []
    release = threading.Event()
    others: dict[str | None, StandIn] = {}

    def loader(method: str, weights: str | None) -> StandIn:
        loaded.append((method, weights))
        assert release.wait(30)
        others[weights] = StandIn()
        return others[weights]

    server = make_server(StandIn(), loader=loader)
    offered = server.health()["choices"]
    assert offered["methods"] == ["network"] and "lite" in offered["weights"] and "k3" in offered["weights"]

    def post(weights: str, token: str) -> requests.Response:
        files = {"file": ("w.png", images.png(20, 16))}
        return requests.post(server.url + "api/deblur", files=files, data={"weights": weights},
                             headers={"X-Deblur-Job": token}, timeout=60)

    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(post, "lite", "loading-test-1")
        server.wait_until(
            lambda: requests.get(server.url + "api/jobs/loading-test-1", timeout=30).json() == {"state": "loading", "weights": "lite"},
            "the job says it loads lite",
        )
        release.set()
        first = answer.result()
    assert first.status_code == 200 and first.headers["x-deblur-weights"] == "lite"
    assert others["lite"].started == [20]
    assert post("lite", "loading-test-2").status_code == 200 and loaded == [("network", "lite")]  # kept
    assert post("k3", "loading-test-3").headers["x-deblur-weights"] == "k3"
    assert loaded == [("network", "lite"), ("network", "k3")]
    assert post("lite", "loading-test-4").status_code == 200 and len(loaded) == 3  # one other runner at a time
