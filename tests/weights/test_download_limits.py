"""Issue 21, item 8: a weights download cannot fill the disk or run for ever.

Against the shared hostile server (tests/conftest.py) on 127.0.0.1: an endless body, a false
10 GB Content-Length, a gzip body sent although identity was asked, and a server dripping
one byte at a time. The cap and the progress floor are shortened here (monkeypatch) so that
the tests take a moment; no test asserts a time.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deblur_cli import weights as W
from deblur_cli.cli import app
from deblur_cli.errors import EXIT_WEIGHTS, WeightsError
from deblur_cli.network.model import AttentiveDeblurNet
from tests.conftest import TINY

D = importlib.import_module("deblur_cli.weights.download")  # the module (the package exports a function of that name)


@pytest.fixture
def body(tmp_path) -> bytes:
    path = tmp_path / "w.safetensors"
    W.save_weights(AttentiveDeblurNet(TINY), path)
    return path.read_bytes()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(tmp_path / "cache"))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path / "cache"


def _kept(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and p.name != "written.tsv"] if cache.exists() else []


def test_an_endless_body_stops_at_the_cap(body, cache, hostile_server, monkeypatch):
    monkeypatch.setattr(D, "MAX_DOWNLOAD_BYTES", 1_000_000)
    server = hostile_server(body)
    with pytest.raises(WeightsError, match="more than any weights file can need; stopped there"):
        W.download(f"{server.base}/endless/w.safetensors")
    assert _kept(cache) == []


def test_a_declared_size_over_the_cap_is_refused_at_once(body, cache, hostile_server):
    server = hostile_server(body)
    seen: list[tuple[int, int]] = []
    with pytest.raises(WeightsError, match="announces 10.0 GB.*nothing was downloaded"):
        W.download(f"{server.base}/huge/w.safetensors", progress=lambda d, t: seen.append((d, t)))
    assert seen == [] and _kept(cache) == []


def test_an_encoded_body_is_refused(body, cache, hostile_server):
    server = hostile_server(body)
    with pytest.raises(WeightsError, match="gzip-encoded although only identity was accepted"):
        W.download(f"{server.base}/gzip/w.safetensors")
    assert _kept(cache) == []


def test_a_drip_below_the_progress_floor_is_stopped(body, cache, hostile_server, monkeypatch):
    monkeypatch.setattr(D, "PROGRESS_WINDOW_S", 0.5)
    monkeypatch.setattr(D, "MIN_PROGRESS_BYTES", 1024)
    server = hostile_server(body)
    with pytest.raises(WeightsError, match="under the floor of 1024 bytes per 0.5 s"):
        W.download(f"{server.base}/drip/w.safetensors", timeout=5)
    assert _kept(cache) == []


def test_progress_reports_the_announced_size(body, cache, hostile_server):
    server = hostile_server(body)
    seen: list[tuple[int, int]] = []
    W.download(f"{server.base}/ok/w.safetensors", progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, len(body)) and seen[-1] == (len(body), len(body))


@pytest.mark.parametrize("route", ["endless", "huge", "gzip"])
def test_weights_url_follows_the_same_limits(body, cache, hostile_server, monkeypatch, tmp_path, route):
    """`deblur photo.jpg --weights URL` downloads through the same code."""
    from tests.cli.test_hostile import _encoded, _u8

    monkeypatch.setattr(D, "MAX_DOWNLOAD_BYTES", 1_000_000)
    server = hostile_server(body)
    photo = tmp_path / "p.png"
    photo.write_bytes(_encoded(_u8((16, 16, 3)), "PNG"))
    result = CliRunner().invoke(app, [str(photo), "--weights", f"{server.base}/{route}/w.safetensors"])
    assert result.exit_code == EXIT_WEIGHTS, result.output
    assert result.output.startswith("error: download of") and "\n" not in result.output.strip()
    assert _kept(cache) == [] and not (tmp_path / "p_deblurred.png").exists()


def test_the_download_bar_shows_size_and_rate():
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from deblur_cli.cli.app import download_bar

    kinds = {type(c) for c in download_bar().columns}
    assert {DownloadColumn, TransferSpeedColumn} <= kinds
