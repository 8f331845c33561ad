"""Tests for deblur_cli.pipeline: output naming and safety, batch planning, resume, failures,
interruptions (KeyboardInterrupt and SIGKILL) and the overlapped loader/saver threads.

A fake deblurrer (colour inversion) stands in for the network, so every output can be
checked against its own input: a mix-up between files would show.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deblur_cli.errors import InputError, OutputError, ResourceError, UsageError
from deblur_cli.files.fsutil import TMP_PREFIX
from deblur_cli.files.paths import default_output_path
from deblur_cli.pipeline import (
    BatchEvent,
    SaveOptions,
    check_output_path,
    deblur_batch,
    deblur_file,
    plan_batch,
)

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------
# helpers


class InvertDeblurrer:
    """Returns 1 - rgb, reports two tile steps, counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, rgb: np.ndarray, progress=None) -> np.ndarray:
        self.calls += 1
        if progress is not None:
            progress(1, 2)
            progress(2, 2)
        return (1.0 - rgb).astype(np.float32)


class FailingDeblurrer(InvertDeblurrer):
    """Raises ``exc`` on call number ``on_call`` (1-based), inverts otherwise."""

    def __init__(self, exc: BaseException, on_call: int) -> None:
        super().__init__()
        self.exc, self.on_call = exc, on_call

    def run(self, rgb: np.ndarray, progress=None) -> np.ndarray:
        if self.calls + 1 == self.on_call:
            self.calls += 1
            raise self.exc
        return super().run(rgb, progress)


class RaisesOnRed(InvertDeblurrer):
    """Raises for mostly-red images: failures are tied to image content, not call order."""

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def run(self, rgb: np.ndarray, progress=None) -> np.ndarray:
        if rgb[..., 0].mean() > 0.9 and rgb[..., 1].mean() < 0.1:
            raise self.exc
        return super().run(rgb, progress)


def make_image(path: Path, seed: int, size: tuple[int, int] = (24, 16), colour=None) -> np.ndarray:
    """Write a random (or flat ``colour``) RGB image; return its uint8 pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    if colour is None:
        pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        pixels = np.broadcast_to(np.array(colour, dtype=np.uint8), (h, w, 3)).copy()
    Image.fromarray(pixels).save(path)
    return pixels


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        return np.asarray(im.convert("RGB")).astype(np.int16)


def assert_inverted(src: Path, dst: Path) -> None:
    diff = np.abs(read_rgb(dst) - (255 - read_rgb(src)))
    assert diff.max() <= 1, f"{dst} is not the inversion of {src}"


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TMP_PREFIX)]


def final_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(TMP_PREFIX))


def make_tree(root: Path) -> dict[str, np.ndarray]:
    """in/a.png, in/b.jpg, in/sub/c.png, in/sub/deeper/d.PNG, plus a non-image."""
    pixels = {
        "a.png": make_image(root / "a.png", 1),
        "b.jpg": make_image(root / "b.jpg", 2),
        "sub/c.png": make_image(root / "sub" / "c.png", 3),
        "sub/deeper/d.PNG": make_image(root / "sub" / "deeper" / "d.PNG", 4),
    }
    (root / "notes.txt").write_text("not an image")
    return pixels


# ---------------------------------------------------------------------------------------
# single file


def test_default_output_path_names() -> None:
    assert default_output_path(Path("photo.jpg")) == Path("photo_deblurred.jpg")
    assert default_output_path(Path("a/b/IMG.PNG"), "_sharp") == Path("a/b/IMG_sharp.PNG")
    assert default_output_path(Path("x.y.tiff")) == Path("x.y_deblurred.tiff")


def test_deblur_file_writes_default_output(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    make_image(src, 0)
    ticks: list[tuple[int, int]] = []
    out = deblur_file(InvertDeblurrer(), src, progress=lambda d, t: ticks.append((d, t)))
    assert out == tmp_path / "photo_deblurred.png"
    assert_inverted(src, out)
    assert ticks == [(1, 2), (2, 2)]
    assert temp_files(tmp_path) == []


def test_deblur_file_into_folder_and_forced_format(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    make_image(src, 0)
    (tmp_path / "outs").mkdir()
    out = deblur_file(InvertDeblurrer(), src, tmp_path / "outs")
    assert out == tmp_path / "outs" / "photo.png" and out.is_file()  # like batch: the input's name
    own = deblur_file(InvertDeblurrer(), src, tmp_path)  # the input's own folder: suffixed name
    assert own == tmp_path / "photo_deblurred.png"
    out2 = deblur_file(InvertDeblurrer(), src, options=SaveOptions(output_format="JPG"))
    assert out2 == tmp_path / "photo_deblurred.jpg"
    with Image.open(out2) as im:
        assert im.format == "JPEG"


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_output_equal_to_input_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str, overwrite: bool
) -> None:
    src = tmp_path / "photo.png"
    make_image(src, 0)
    before = sha(src)
    if spelling == "same":
        out = src
    elif spelling == "relative":
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        out = Path("..") / "photo.png"
    elif spelling == "symlink":
        out = tmp_path / "link.png"
        os.symlink(src, out)
    else:
        out = tmp_path / "hard.png"
        os.link(src, out)
    fake = InvertDeblurrer()
    with pytest.raises(OutputError, match="is the input"):
        deblur_file(fake, src, out, SaveOptions(overwrite=overwrite))
    assert fake.calls == 0, "refused before inference"
    assert sha(src) == before
    assert temp_files(tmp_path) == []


def test_existing_output_refused_then_replaced_with_overwrite(tmp_path: Path) -> None:
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    make_image(src, 0)
    make_image(out, 9)
    old = sha(out)
    fake = InvertDeblurrer()
    with pytest.raises(OutputError, match="exists; pass --overwrite to replace it"):
        deblur_file(fake, src, out)
    assert fake.calls == 0 and sha(out) == old
    assert deblur_file(fake, src, out, SaveOptions(overwrite=True)) == out
    assert sha(out) != old
    assert_inverted(src, out)


def test_bad_output_paths_fail_before_inference(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    make_image(src, 0)
    fake = InvertDeblurrer()
    with pytest.raises(UsageError, match=r"\.xyz"):
        deblur_file(fake, src, tmp_path / "out.xyz")
    with pytest.raises(UsageError, match="without an extension"):
        deblur_file(fake, src, tmp_path / "out")
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder would be")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        deblur_file(fake, src, blocker / "out.png")
    with pytest.raises(InputError, match="no such file"):
        deblur_file(fake, tmp_path / "nope.png", tmp_path / "out.png")
    assert fake.calls == 0
    assert final_files(tmp_path) == [tmp_path / "file.txt", src]


def test_check_output_path_accepts_a_fresh_name(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    make_image(src, 0)
    check_output_path(src, tmp_path / "new.jpg", overwrite=False)  # no exception
    with pytest.raises(OutputError):
        check_output_path(src, tmp_path, overwrite=True)  # a folder


# ---------------------------------------------------------------------------------------
# batch planning


def test_plan_batch_order_filters_and_collisions(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_tree(src)
    make_image(src / f"{TMP_PREFIX}abc.png", 5)  # a temp file of ours: never an input
    make_image(src / "sub" / "c.jpg", 6)  # collides with sub/c.png once forced to .png
    plan = plan_batch(src, out, SaveOptions())
    jobs, problems = list(plan.jobs), list(plan.problems)
    rel = [(s.relative_to(src).as_posix(), d.relative_to(out).as_posix()) for s, d in jobs]
    assert rel == [
        ("a.png", "a.png"),
        ("b.jpg", "b.jpg"),
        ("sub/c.jpg", "sub/c.jpg"),
        ("sub/c.png", "sub/c.png"),
        ("sub/deeper/d.PNG", "sub/deeper/d.PNG"),
    ]
    assert problems == []
    plan = plan_batch(src, out, SaveOptions(output_format=".png"))
    jobs, problems = list(plan.jobs), list(plan.problems)
    assert [d.relative_to(out).as_posix() for _, d in jobs] == ["a.png", "b.png", "sub/c.png", "sub/deeper/d.png"]
    assert [(p.relative_to(src).as_posix(), "also the output" in why) for p, why in problems] == [("sub/c.png", True)]


def test_plan_batch_refuses_output_onto_an_input(tmp_path: Path) -> None:
    # in_dir inside out_dir: in/in/x.png would be written to out/in/x.png == in/x.png
    out = tmp_path / "out"
    src = out / "in"
    make_image(src / "x.png", 0)
    make_image(src / "in" / "x.png", 1)
    plan = plan_batch(src, out, SaveOptions())
    jobs, problems = list(plan.jobs), list(plan.problems)
    assert [s for s, _ in jobs] == [src / "x.png"]
    assert len(problems) == 1 and "replace an input" in problems[0][1]


def test_unreadable_subfolder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    make_image(src / "a.png", 0)
    locked = src / "locked"
    make_image(locked / "b.png", 1)
    real_scandir = os.scandir

    def scandir(path="."):  # chmod 0 does not stop root, so deny the folder here
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = deblur_batch(InvertDeblurrer(), src, tmp_path / "out")
    assert [s for s, _ in result.processed] == [src / "a.png"]
    assert result.failed == [(locked, "cannot read folder: Permission denied")]


# ---------------------------------------------------------------------------------------
# batch running


@pytest.mark.parametrize("overlap", [True, False])
def test_batch_mirrors_subfolders_and_reports_events(tmp_path: Path, overlap: bool) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    pixels = make_tree(src)
    events: list[BatchEvent] = []
    result = deblur_batch(InvertDeblurrer(), src, out, progress=events.append, overlap=overlap)
    assert result.ok and result.skipped == [] and len(result.processed) == 4
    assert sorted(p.relative_to(out).as_posix() for p in final_files(out)) == sorted(pixels)
    for s, d in result.processed:
        assert d == out / s.relative_to(src)
        if s.suffix.lower() == ".png":
            assert_inverted(s, d)
    assert not (out / "notes.txt").exists()
    assert events[0] == BatchEvent("start", None, 0, 4)
    done = [e for e in events if e.kind == "file_done"]
    assert [e.done for e in done] == [1, 2, 3, 4] and all(e.total == 4 for e in done)
    assert sum(e.kind == "file_start" for e in events) == 4
    assert sum(e.kind == "tile" and e.total == 2 for e in events) == 8


def test_batch_default_output_folder_is_a_sibling(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    make_image(src / "a.png", 0)
    result = deblur_batch(InvertDeblurrer(), src)
    assert result.processed == [(src / "a.png", tmp_path / "photos_deblurred" / "a.png")]
    assert (tmp_path / "photos_deblurred" / "a.png").is_file()


def test_batch_input_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        deblur_batch(InvertDeblurrer(), tmp_path / "nope")
    make_image(tmp_path / "a.png", 0)
    with pytest.raises(InputError, match="not a folder"):
        deblur_batch(InvertDeblurrer(), tmp_path / "a.png")
    with pytest.raises(UsageError, match="suffix"):
        deblur_batch(InvertDeblurrer(), tmp_path, tmp_path, SaveOptions(suffix=""))
    with pytest.raises(UsageError):
        deblur_batch(InvertDeblurrer(), tmp_path, tmp_path / "o", SaveOptions(output_format=".xyz"))


def test_batch_resume_skips_existing_outputs_untouched(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_tree(src)
    done_before = [out / "a.png", out / "sub" / "c.png"]
    for i, p in enumerate(done_before):
        make_image(p, 100 + i)
        os.utime(p, (1_000_000_000, 1_000_000_000))
    hashes = {p: sha(p) for p in done_before}
    fake = InvertDeblurrer()
    result = deblur_batch(fake, src, out)
    assert result.ok and fake.calls == 2
    assert sorted(d for _, d in result.skipped) == sorted(done_before)
    assert len(result.processed) == 2
    for p in done_before:
        assert p.stat().st_mtime == 1_000_000_000 and sha(p) == hashes[p]
    # overwrite replaces them
    result = deblur_batch(InvertDeblurrer(), src, out, SaveOptions(overwrite=True))
    assert len(result.processed) == 4 and result.skipped == []
    assert_inverted(src / "a.png", out / "a.png")


@pytest.mark.parametrize("overlap", [True, False])
def test_batch_keeps_going_past_bad_files(tmp_path: Path, overlap: bool) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_image(src / "a.png", 0)
    make_image(src / "z.png", 1)
    (src / "text.jpg").write_text("this is not a JPEG\n")
    make_image(src / "sub" / "trunc.png", 2, size=(64, 64))
    data = (src / "sub" / "trunc.png").read_bytes()
    (src / "sub" / "trunc.png").write_bytes(data[: len(data) // 2])
    (src / "empty.png").write_bytes(b"")
    inputs_before = {p: sha(p) for p in final_files(src)}
    result = deblur_batch(InvertDeblurrer(), src, out, overlap=overlap)
    assert not result.ok
    assert sorted(p.name for p, _ in result.failed) == ["empty.png", "text.jpg", "trunc.png"]
    assert all(msg and "\n" not in msg for _, msg in result.failed)
    assert [s.name for s, _ in result.processed] == ["a.png", "z.png"]
    assert [p.name for p in final_files(out)] == ["a.png", "z.png"]
    assert temp_files(out) == []
    assert {p: sha(p) for p in final_files(src)} == inputs_before


@pytest.mark.parametrize("overlap", [True, False])
def test_deblurrer_errors_are_recorded_per_file(tmp_path: Path, overlap: bool) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_image(src / "a.png", 0)
    make_image(src / "b_red.png", 0, colour=(255, 0, 0))
    make_image(src / "c.png", 1)
    result = deblur_batch(RaisesOnRed(RuntimeError("boom")), src, out, overlap=overlap)
    assert result.failed == [(src / "b_red.png", "internal error: RuntimeError: boom")]
    assert [s.name for s, _ in result.processed] == ["a.png", "c.png"]
    assert_inverted(src / "c.png", out / "c.png")
    # an expected failure keeps its one-line message
    out2 = tmp_path / "out2"
    result = deblur_batch(RaisesOnRed(ResourceError("out of memory")), src, out2, overlap=overlap)
    assert result.failed == [(src / "b_red.png", "out of memory")]
    assert len(result.processed) == 2


@pytest.mark.parametrize("overlap", [True, False])
def test_usage_error_from_deblurrer_ends_the_batch(tmp_path: Path, overlap: bool) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(4):
        make_image(src / f"{i}.png", i)
    fake = FailingDeblurrer(UsageError("fp16 needs CUDA"), on_call=2)
    with pytest.raises(UsageError):
        deblur_batch(fake, src, out, overlap=overlap)
    assert fake.calls == 2
    assert [p.name for p in final_files(out)] == ["0.png"]
    assert temp_files(out) == []


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_image(src / "a.png", 0)
    make_image(src / "sub" / "b.png", 1)
    os.symlink(src, src / "loop")
    os.symlink(src / "sub", src / "sub" / "up")
    os.symlink(src / "a.png", src / "linked.png")  # a symlinked file is an input
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.update(r=deblur_batch(InvertDeblurrer(), src, out)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "batch hung on a symlink loop"
    result = box["r"]
    assert result.ok
    assert sorted(p.relative_to(out).as_posix() for p in final_files(out)) == ["a.png", "linked.png", "sub/b.png"]


def test_output_folder_inside_input_is_not_reprocessed(tmp_path: Path) -> None:
    src = tmp_path / "in"
    out = src / "out"
    make_image(src / "a.png", 0)
    make_image(src / "sub" / "b.png", 1)
    first = deblur_batch(InvertDeblurrer(), src, out)
    second = deblur_batch(InvertDeblurrer(), src, out, SaveOptions(overwrite=True))
    for result in (first, second):
        assert [s.relative_to(src).as_posix() for s, _ in result.processed] == ["a.png", "sub/b.png"]
    assert not (out / "out").exists()
    assert_inverted(src / "a.png", out / "a.png")


def test_in_place_batch_uses_suffix_and_skips_its_outputs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    make_image(src / "a.png", 0)
    make_image(src / "sub" / "b.jpg", 1)
    result = deblur_batch(InvertDeblurrer(), src, src)
    assert sorted(d.relative_to(src).as_posix() for _, d in result.processed) == [
        "a_deblurred.png",
        "sub/b_deblurred.jpg",
    ]
    again = deblur_batch(InvertDeblurrer(), src, src)
    assert again.processed == [] and len(again.skipped) == 2
    forced = deblur_batch(InvertDeblurrer(), src, src, SaveOptions(overwrite=True))
    assert len(forced.processed) == 2
    assert not list(src.rglob("*_deblurred_deblurred*"))


def test_overlapped_and_sequential_outputs_are_identical(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for i in range(6):
        make_image(src / f"d{i % 2}" / f"{i}.{'png' if i % 3 else 'jpg'}", i, size=(40 + i, 30))
    (src / "d0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    runs = {}
    for overlap in (False, True):
        out = tmp_path / f"out_{overlap}"
        result = deblur_batch(InvertDeblurrer(), src, out, overlap=overlap)
        files = {p.relative_to(out): p.read_bytes() for p in final_files(out)}
        runs[overlap] = (
            [(s, d.relative_to(out)) for s, d in result.processed],
            [p for p, _ in result.failed],
            files,
        )
    assert runs[True] == runs[False]
    assert len(runs[True][2]) == 6


def test_stale_temp_files_are_removed_on_rerun(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_image(src / "sub" / "a.png", 0)
    stale = [out / f"{TMP_PREFIX}x1.png", out / "sub" / f"{TMP_PREFIX}x2.png"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a png")
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    live = out / f"{TMP_PREFIX}live.png"  # newer than the run start: another run's work
    live.write_bytes(b"in progress")
    os.utime(live, (time.time() + 3600, time.time() + 3600))
    keep = out / ".other-hidden.png"
    keep.write_bytes(b"user file")
    result = deblur_batch(InvertDeblurrer(), src, out)
    assert result.ok
    assert not any(p.exists() for p in stale)
    assert live.exists() and keep.read_bytes() == b"user file"


# ---------------------------------------------------------------------------------------
# interruptions


@pytest.mark.parametrize("overlap", [True, False])
def test_keyboard_interrupt_leaves_only_complete_outputs(tmp_path: Path, overlap: bool) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(6):
        make_image(src / f"{i}.png", i, size=(64, 48))
    fake = FailingDeblurrer(KeyboardInterrupt(), on_call=3)
    events: list[BatchEvent] = []
    with pytest.raises(KeyboardInterrupt):
        deblur_batch(fake, src, out, progress=events.append, overlap=overlap)
    assert temp_files(out) == []
    present = final_files(out)
    assert [p.name for p in present] == ["0.png", "1.png"], "results computed before Ctrl-C are kept"
    for p in present:
        assert_inverted(src / p.name, p)
    assert [e.path.name for e in events if e.kind == "file_done"] == ["0.png", "1.png"]
    # a second run completes the rest and leaves the first two alone
    result = deblur_batch(InvertDeblurrer(), src, out)
    assert result.ok and len(result.skipped) == 2 and len(result.processed) == 4
    assert [p.name for p in final_files(out)] == [f"{i}.png" for i in range(6)]


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from deblur_cli.pipeline import deblur_batch

    class Slow:
        calls = 0

        def run(self, rgb, progress=None):
            self.calls += 1
            # Stall after the first N images so the signal always lands midway, however
            # slowly the machine runs the poller.
            time.sleep(60 if self.calls > int(sys.argv[3]) else 0.2)
            return 1.0 - rgb

    deblur_batch(Slow(), Path(sys.argv[1]), Path(sys.argv[2]))
    """
)


def _start_slow_batch(src: Path, out: Path, stall_after: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", _KILL_SCRIPT, str(src), str(out), str(stall_after)]
    return subprocess.Popen(cmd, env=env, cwd=REPO)


def _signal_when_outputs(proc: subprocess.Popen, out: Path, count: int, sig: int) -> None:
    """Send ``sig`` once ``count`` outputs exist; wait for the process to end."""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and len(final_files(out)) >= count:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the batch ended before the signal"
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _make_slow_inputs(src: Path, n: int) -> None:
    for i in range(n):
        ext = "png" if i % 2 else "jpg"
        make_image(src / f"s{i % 3}" / f"{i:02d}.{ext}", i, size=(256, 192))


def test_sigint_stops_the_threaded_batch_cleanly(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _make_slow_inputs(src, 10)
    proc = _start_slow_batch(src, out, stall_after=2)
    _signal_when_outputs(proc, out, 2, signal.SIGINT)
    assert proc.returncode in (-signal.SIGINT, 1, 130)
    assert temp_files(out) == []
    present = final_files(out)
    assert 2 <= len(present) < 10
    for p in present:
        with Image.open(p) as im:
            im.load()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_midway_then_rerun_completes(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    n = 12
    _make_slow_inputs(src, n)
    proc = _start_slow_batch(src, out, stall_after=3)
    _signal_when_outputs(proc, out, 3, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    present = final_files(out)
    assert 3 <= len(present) < n
    for p in present:  # everything under a final name is complete
        with Image.open(p) as im:
            im.load()
    result = deblur_batch(InvertDeblurrer(), src, out)
    assert result.ok
    assert sorted(d for _, d in result.skipped) == present
    assert len(result.processed) + len(result.skipped) == n
    assert len(final_files(out)) == n
    assert temp_files(out) == []
    for s, d in result.processed + result.skipped:
        with Image.open(d) as im:
            im.load()
        if s.suffix == ".png":
            assert_inverted(s, d)
