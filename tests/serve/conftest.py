"""A real `deblur serve` process on 127.0.0.1 (tiny weights, any free port) and helpers."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import torch

from deblur_cli.network.model import AttentiveDeblurNet
from deblur_cli.weights import save_weights
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]
#: The command a user runs.
SERVE = [sys.executable, "-m", "deblur_cli", "serve"]
STARTUP_SECONDS = 120  # importing torch on a busy 2-core CI machine


class ServerProcess:
    """`deblur serve --port 0 ARGS` in its own process; ``url`` is the address it printed.

    Its temporary files would go to ``tmp`` (TMPDIR), so a test can check that none are;
    its user cache (uploads) is ``cache``, by default ``tmp`` + ``-cache``.
    """

    def __init__(self, args: list[str], tmp: Path, cache: Path | None = None) -> None:
        self.tmp = tmp
        self.cache = cache if cache is not None else tmp.with_name(tmp.name + "-cache")
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp), "DEBLUR_CACHE_DIR": str(self.cache), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        env.pop("DEBLUR_MAX_PIXELS", None)
        self.proc = subprocess.Popen(
            [*SERVE, "--port", "0", *args], cwd=ROOT, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout, lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr, None), daemon=True).start()
        self.url = self._wait_for_url(lines)
        self.session = requests.Session()

    @staticmethod
    def _pump(stream, store: list[str], lines: queue.Queue | None) -> None:
        for line in stream:
            store.append(line)
            if lines is not None:
                lines.put(line)
        if lines is not None:
            lines.put(None)

    def _wait_for_url(self, lines: queue.Queue) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            found = re.search(r"http://\S+/", line)
            if found:
                return found.group(0)
        self.proc.kill()
        self.proc.wait(10)
        pytest.fail(f"deblur serve printed no address (exit {self.proc.returncode}): {''.join(self.stderr)[-2000:]}")

    def uploads(self) -> list[Path]:
        """Every upload folder and file in the user cache (each server's own folder excluded)."""
        return sorted(p for folder in (self.cache / "serve").glob("uploads-*") for p in folder.rglob("*"))

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path.lstrip("/"), timeout=60, **kwargs)

    def post(self, path: str, data: bytes | None = None, name: str = "photo.png", fields: dict | None = None,
             **kwargs) -> requests.Response:
        if data is not None:
            kwargs["files"] = {"file": (name, data)}
        if fields is not None:
            kwargs["data"] = fields
        return self.session.post(self.url + path.lstrip("/"), timeout=120, **kwargs)

    def healthy(self) -> dict:
        """The health answer; fails the test unless the server answers 200 with JSON."""
        r = self.get("api/health")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_until(self, predicate, what: str, seconds: float = 30) -> dict:
        """Poll /api/health until ``predicate(health)`` holds (never asserts a time: fails after a long wait)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            health = self.healthy()
            if predicate(health):
                return health
            time.sleep(0.05)
        pytest.fail(f"the server never reached: {what} (last: {health})")

    def stop(self) -> int:
        """Ctrl-C, as a user would; the exit code."""
        self.session.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        time.sleep(0.1)  # let the pump threads take the last lines
        return self.proc.returncode


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """Untrained tiny weights: the network is not what these tests are about."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("serve-weights") / "tiny.safetensors"
    save_weights(AttentiveDeblurNet(TINY), path)
    return path


@pytest.fixture(scope="session")
def server(tiny_weights, tmp_path_factory):
    """One server for the API and page tests: 1 MB uploads, 4 megapixels, fp32 on one CPU thread."""
    proc = ServerProcess(
        ["--weights", str(tiny_weights), "--device", "cpu", "--precision", "fp32", "--threads", "1",
         "--max-upload-mb", "1", "--max-pixels", "4000000"],
        tmp_path_factory.mktemp("serve-tmp"),
    )
    yield proc
    proc.stop()
