"""Issue 21 ("Nothing lost, round two"), end to end: outputs that would lose a file, and
what SIGTERM and SIGKILL leave behind. docs/hostile-inputs.md lists each case.

In-process (CliRunner) where the command line is enough; real ``python -m deblur_cli``
processes for signals. The module-level tests of the same rules are in
tests/files/test_fsutil.py and tests/pipeline/test_outputs_never_replace.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deblur_cli import api
from deblur_cli.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OUTPUT
from deblur_cli.files.fsutil import TMP_PREFIX
from tests.cli.test_hostile import (  # noqa: F401 - _isolated: the same private cache, no proxies
    _encoded,
    _env,
    _finals,
    _isolated,
    _ok,
    _poll,
    _refused,
    _run,
    _sha,
    _start,
    _stop,
    _temps,
    _tree,
    _u8,
    identity,
    weights,
)


def _photo(path: Path, seed: int = 0, size=(40, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_encoded(_u8((*size, 3), seed), "PNG" if path.suffix == ".png" else "JPEG"))
    return path


@pytest.fixture
def appears_during_the_run(monkeypatch):
    """While the network runs, the user writes 'precious' at the given path (once)."""
    targets: list[Path] = []
    real = api.Deblurrer.run

    def run(self, rgb, progress=None):
        while targets:
            targets.pop().write_text("precious\n")
        return real(self, rgb, progress)

    monkeypatch.setattr(api.Deblurrer, "run", run)
    return targets


# ============================================================================ item 1


def test_a_file_written_at_the_output_during_the_run_is_kept(tmp_path, weights, appears_during_the_run):
    src = _photo(tmp_path / "big.jpg")
    out = tmp_path / "t.jpg"
    appears_during_the_run.append(out)
    _refused(_run(src, "-o", out, "--weights", weights), EXIT_OUTPUT, "t.jpg appeared while deblur was working")
    assert out.read_text() == "precious\n" and not _temps(tmp_path)


def test_in_a_batch_a_lost_race_is_listed_and_the_rest_goes_on(tmp_path, weights, appears_during_the_run):
    src, out = tmp_path / "in", tmp_path / "out"
    _photo(src / "a.png", 1)
    _photo(src / "b.png", 2)
    out.mkdir()
    appears_during_the_run.append(out / "a.png")
    result = _run("batch", src, "-o", out, "--weights", weights)
    assert result.exit_code == EXIT_FAILURES, result.output
    assert "a.png appeared while deblur was working" in " ".join(result.output.split())
    assert (out / "a.png").read_text() == "precious\n" and (out / "b.png").is_file()
    assert not _temps(out)


# ============================================================================ item 2


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_in_place_batch_keeps_a_users_photo_named_like_a_result(tmp_path, weights, overwrite):
    folder = tmp_path / "in"
    _photo(folder / "x.jpg", 1)
    _photo(folder / "x_deblurred.jpg", 2)
    mine = _sha(folder / "x_deblurred.jpg")
    result = _run("batch", folder, "-o", folder, "--weights", weights, *overwrite)
    text = " ".join(result.output.split())
    assert result.exit_code == EXIT_FAILURES, result.output
    assert _sha(folder / "x_deblurred.jpg") == mine
    assert "failed" in text and "x.jpg" in text and "deblur did not write" in text  # listed, not silent
    assert (folder / "x_deblurred_deblurred.jpg").is_file()  # the user's photo is a photo


def test_a_second_glob_run_leaves_out_the_first_runs_results(tmp_path, weights):
    for i, name in enumerate(("a.jpg", "b.jpg")):
        _photo(tmp_path / name, i)
    _ok(_run(tmp_path / "a.jpg", tmp_path / "b.jpg", "--weights", weights))
    again = sorted(tmp_path.glob("*.jpg"))  # what `deblur *.jpg` passes the second time
    _refused(_run(*again, "--weights", weights), EXIT_OUTPUT, "exists; pass --overwrite")
    text = _ok(_run(*again, "--weights", weights, "--overwrite"))
    assert "a_deblurred.jpg: left out" in " ".join(text.split())
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == ["a.jpg", "a_deblurred.jpg", "b.jpg", "b_deblurred.jpg"]


# ============================================================================ item 9: signals


# Stops the chosen command where it has a temporary file open: an image halfway through its
# write, a video after its first frame, a download after its first bytes. Then it waits for
# the test's signal.
_PAUSE_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    marker, what = Path(os.environ["PAUSE_MARKER"]), os.environ["PAUSE_WHAT"]

    def pause():
        marker.write_text("paused")
        time.sleep(300)

    if what == "image":
        from deblur_cli.files import image_io
        real_encode = image_io._encode

        def encode(samples, tmp, *args):
            real_encode(samples, tmp, *args)
            pause()

        image_io._encode = encode
    elif what == "video":
        from deblur_cli.tools import video_codec
        real = video_codec.Transcoder._encode

        def encode(self, frame, t):
            real(self, frame, t)
            pause()

        video_codec.Transcoder._encode = encode

    from deblur_cli.cli import main
    sys.argv[0] = "deblur"
    main()
    """
)


def _paused(tmp_path: Path, what: str, args: list[object]) -> subprocess.Popen:
    env = _env(tmp_path)
    marker = tmp_path / "paused"
    env.update(PAUSE_MARKER=str(marker), PAUSE_WHAT=what)
    proc = _start([sys.executable, "-c", _PAUSE_SCRIPT, *map(str, args)], env, tmp_path)
    _poll(proc, marker.exists)
    return proc


def _video_args(tmp_path: Path, weights: Path) -> tuple[list[object], Path]:
    pytest.importorskip("av")
    from tests.tools.test_video import make_clip

    folder = tmp_path / "films"
    folder.mkdir()
    clip = make_clip(folder / "clip.mp4", rotation=None, audio=False)
    return ["video", clip, "-o", folder / "out.mp4", "--weights", weights, "--threads", "1"], folder


def _image_args(tmp_path: Path, weights: Path) -> tuple[list[object], Path]:
    folder = tmp_path / "photos"
    src = _photo(folder / "p.png")
    return [src, "-o", folder / "out.png", "--weights", weights, "--threads", "1"], folder


@pytest.mark.parametrize("what", ["image", "video"])
def test_sigterm_is_handled_like_ctrl_c(tmp_path, weights, what):
    args, folder = (_image_args if what == "image" else _video_args)(tmp_path, weights)
    before = _tree(folder)
    proc = _paused(tmp_path, what, args)
    try:
        assert _temps(folder), "the command should be writing a temporary file now"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        _stop(proc)
    log = (tmp_path / "stderr.log").read_text()
    assert proc.returncode == EXIT_INTERRUPTED, log
    assert "error: interrupted" in log and "Traceback" not in log
    assert _tree(folder) == before  # nothing half-written, nothing new


@pytest.mark.parametrize("what", ["image", "video"])
def test_a_later_run_removes_what_sigkill_left(tmp_path, weights, what):
    args, folder = (_image_args if what == "image" else _video_args)(tmp_path, weights)
    proc = _paused(tmp_path, what, args)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        _stop(proc)
    left = _temps(folder)
    assert left and all(p.name.startswith(TMP_PREFIX) for p in left)
    _ok(_run(*args))  # the same command again, in this (another) process
    assert not _temps(folder)
    out = Path(str(args[args.index("-o") + 1]))
    assert out.is_file() and [p.name for p in _finals(folder) if p.name.startswith("out")] == [out.name]


def test_a_later_download_removes_what_sigkill_left_in_the_cache(tmp_path, weights, hostile_server):
    server = hostile_server(Path(weights).read_bytes())
    cache = tmp_path / "cache" / "downloads"
    env = _env(tmp_path)
    proc = _start([sys.executable, "-m", "deblur_cli", "weights", "download", f"{server.base}/stall/w.safetensors"], env, tmp_path)
    try:
        _poll(proc, lambda: server.hits["stall"] > 0 and bool(_temps(cache)) if cache.is_dir() else False)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        _stop(proc)
    assert _temps(cache)
    _ok(_run("weights", "download", f"{server.base}/ok/w.safetensors"))
    assert not _temps(cache) and len(os.listdir(cache)) == 1
