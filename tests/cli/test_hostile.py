"""Issue 6, end to end: hostile inputs, interruptions and tampering lose nothing.

Every case goes through the real command line: Typer's CliRunner in-process for most,
a real ``python -m deblur_cli`` process for the SIGKILL cases and for the check that a
user never sees a traceback. The module-level owners test the same risks piece by piece
(tests/files/test_image_io.py, pipeline/test_pipeline.py, weights/test_weights.py,
training/test_train.py); here we check what a user sees: the exit code of
deblur_cli/errors.py, one line starting with ``error:``, no output and no ``.deblur-tmp-*``
file left behind, and every input's sha256 unchanged. docs/hostile-inputs.md lists each
case and the test that covers it.

Two tiny weights files serve all tests: random ones, and an *identity* network (global
residual on, output convolution zeroed) whose output equals its input exactly in fp32,
so that "the first frame was used" or "16-bit grey stays 16-bit" can be checked pixel
for pixel through the whole command.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from deblur_cli import weights as W
from deblur_cli.cli import app
from deblur_cli.errors import (
    EXIT_FAILURES,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_USAGE,
    EXIT_WEIGHTS,
)
from deblur_cli.files import fsutil, image_io
from deblur_cli.files.fsutil import TMP_PREFIX
from deblur_cli.network.model import AttentiveDeblurNet, ModelConfig

REPO = Path(__file__).resolve().parents[2]
TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)
IDENTITY = dataclasses.replace(TINY, global_residual=True)
runner = CliRunner()

# ----------------------------------------------------------------------------- helpers


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _walk(folder: Path) -> list[Path]:
    """Every entry under ``folder``, sorted; symlinked folders are listed, never entered."""
    found = []
    for here, dirs, files in os.walk(folder, followlinks=False):
        found += [Path(here, name) for name in files + [d for d in dirs if Path(here, d).is_symlink()]]
    return sorted(found)


def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` -> sha256 ('link' for symlinks to folders or to nothing)."""
    return {
        p.relative_to(folder).as_posix(): _sha(p) if p.is_file() else "link"
        for p in _walk(folder)
    }


def _temps(folder: Path) -> list[Path]:
    return [p for p in _walk(folder) if p.name.startswith(TMP_PREFIX)]


def _finals(folder: Path) -> list[Path]:
    return [p for p in _walk(folder) if p.is_file() and not p.name.startswith(TMP_PREFIX)]


def _run(*args: object, **kwargs):
    return runner.invoke(app, [os.fspath(a) if isinstance(a, Path) else str(a) for a in args], **kwargs)


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def _refused(result, code: int, *needles: str) -> str:
    """The command failed with ``code`` and exactly one line starting with 'error:'."""
    _no_traceback(result)
    text = result.output.strip()
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}: {text}"
    assert text.startswith("error:"), text
    assert "\n" not in text, f"more than one line: {text!r}"
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


def _ok(result) -> str:
    _no_traceback(result)
    assert result.exit_code == EXIT_OK, result.output
    return result.output


def _u8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **options)
    return buf.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 60-byte grey PNG whose (CRC-correct) header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _broken_exif_jpeg() -> bytes:
    """A valid JPEG with an APP1 'Exif' segment whose IFD points past its end."""
    jpeg = _encoded(_u8((12, 16, 3), seed=5), "JPEG")
    garbage = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\xff\xff"
    app1 = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    return jpeg[:2] + app1 + jpeg[2:]


HOSTILE_FILES: dict[str, tuple[str, Callable[[], bytes], str]] = {
    # id: (file name, content, what the one-line message must say)
    "truncated-jpeg": ("cut.jpg", lambda: _encoded(_u8((48, 64, 3), 1), "JPEG")[:-600], "corrupt or truncated"),
    "truncated-png": ("cut.png", lambda: _encoded(_u8((48, 64, 3), 2), "PNG")[:4000], "corrupt or truncated"),
    "zero-byte": ("empty.jpg", lambda: b"", "empty (0 bytes)"),
    "text-named-jpg": ("notes.jpg", lambda: b"shopping list: milk, eggs\n" * 40, "not an image"),
    "bomb-header": ("bomb.png", _bomb_png, "possible decompression bomb"),
}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random tiny weights (any output; for cases where only exit codes and files matter)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    W.save_weights(AttentiveDeblurNet(TINY), path)
    return path


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> Path:
    """Tiny weights whose output is exactly the input (global residual + zero output conv)."""
    torch.manual_seed(0)
    model = AttentiveDeblurNet(IDENTITY)
    with torch.no_grad():
        model.nets[0].out_conv.weight.zero_()
        model.nets[0].out_conv.bias.zero_()
    path = tmp_path_factory.mktemp("weights") / "identity.safetensors"
    W.save_weights(model, path)
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test touches the user's cache or a proxy; warnings Pillow raises on odd EXIF stay quiet."""
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(image_io.MAX_PIXELS_ENV, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _deblur_ok(src: Path, out: Path, weights: Path, *extra: object) -> str:
    """Run `deblur SRC -o OUT` in fp32 and check success, the input untouched, no temp left."""
    before = _sha(src)
    text = _ok(_run(src, "-o", out, "--weights", weights, "--precision", "fp32", *extra))
    assert _sha(src) == before
    assert out.is_file() and not _temps(out.parent)
    return text


# ============================================================================ hostile files


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_hostile_file_is_refused(tmp_path, weights, case):
    name, content, message = HOSTILE_FILES[case]
    folder = tmp_path / "photos"
    folder.mkdir()
    src = folder / name
    src.write_bytes(content())
    before = _tree(folder)
    # default output name next to the input, then an explicit -o into the same folder
    _refused(_run(src, "--weights", weights), EXIT_INPUT, message, name)
    _refused(_run("image", src, "-o", folder / "out.png", "--weights", weights), EXIT_INPUT, message)
    assert _tree(folder) == before  # input unchanged, no output, no temp file


def test_max_pixels_option_and_environment(tmp_path, weights, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    src = folder / "small.png"
    src.write_bytes(_encoded(_u8((20, 20, 3)), "PNG"))
    before = _tree(folder)
    _refused(_run(src, "--weights", weights, "--max-pixels", "399"), EXIT_INPUT, "400 pixels", "limit of 399", "--max-pixels")
    monkeypatch.setenv(image_io.MAX_PIXELS_ENV, "100")
    _refused(_run(src, "--weights", weights), EXIT_INPUT, "limit of 100")
    monkeypatch.setenv(image_io.MAX_PIXELS_ENV, "lots")
    _refused(_run(src, "--weights", weights), EXIT_USAGE, image_io.MAX_PIXELS_ENV)
    _refused(_run(src, "--weights", weights, "--max-pixels", "-1"), EXIT_USAGE, "pixel limit")
    assert _tree(folder) == before
    monkeypatch.setenv(image_io.MAX_PIXELS_ENV, "100")  # the option beats the environment
    _ok(_run(src, "--weights", weights, "--max-pixels", "400"))
    assert (folder / "small_deblurred.png").is_file()
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_bomb_png(5000, 5000))
    _refused(_run(bomb, "--weights", weights, "--max-pixels", "24999999"), EXIT_INPUT, "25,000,000 pixels")


def test_hostile_files_in_a_batch_fail_alone(tmp_path, weights):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, content, _ in HOSTILE_FILES.values():
        (src / name).write_bytes(content())
    (src / "good.png").write_bytes(_encoded(_u8((24, 32, 3)), "PNG"))
    before = _tree(src)
    result = _run("batch", src, "-o", out, "--weights", weights)
    _no_traceback(result)
    assert result.exit_code == EXIT_FAILURES, result.output
    for name, _, message in HOSTILE_FILES.values():
        assert name in result.output
        assert any(name in line and message in line for line in result.output.splitlines()), (name, result.output)
    assert [p.name for p in _finals(out)] == ["good.png"] and not _temps(out)
    assert _tree(src) == before


def test_one_by_one_pixel_image(tmp_path, identity):
    pixel = np.array([[[200, 30, 90]]], np.uint8)
    src = tmp_path / "dot.png"
    src.write_bytes(_encoded(pixel, "PNG"))
    out = tmp_path / "dot-out.png"
    _deblur_ok(src, out, identity)
    with Image.open(out) as im:
        assert im.size == (1, 1) and np.array_equal(np.asarray(im.convert("RGB")), pixel)


@pytest.mark.parametrize("size", [(20000, 3), (3, 20000)], ids=["20000x3", "3x20000"])
def test_long_strip(tmp_path, identity, size):
    w, h = size
    pixels = _u8((h, w, 3), seed=7)
    src = tmp_path / "strip.png"
    src.write_bytes(_encoded(pixels, "PNG"))
    out = tmp_path / "strip-out.png"
    _deblur_ok(src, out, identity)
    with Image.open(out) as im:
        assert im.size == (w, h)
        assert np.abs(np.asarray(im).astype(int) - pixels).max() <= 1  # identity net, tiled or not


def test_animated_gif_uses_first_frame(tmp_path, identity):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (10, 6), c) for c in colours]
    src = tmp_path / "anim.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=40, loop=0)
    before = _sha(src)
    _ok(_run(src, "--weights", identity, "--precision", "fp32"))
    out = tmp_path / "anim_deblurred.png"  # GIF cannot be written: lossless PNG instead
    with Image.open(out) as im:
        assert im.size == (10, 6) and getattr(im, "n_frames", 1) == 1
        assert np.abs(np.asarray(im.convert("RGB")).astype(int) - colours[0]).max() <= 2
    assert _sha(src) == before and not _temps(tmp_path)


def test_multipage_tiff_uses_first_page(tmp_path, identity):
    pages = [_u8((6, 9, 3), seed=s) for s in (1, 2, 3)]
    src = tmp_path / "scan.tif"
    Image.fromarray(pages[0]).save(src, save_all=True, append_images=[Image.fromarray(p) for p in pages[1:]])
    out = tmp_path / "scan-out.tif"
    _deblur_ok(src, out, identity)
    with Image.open(out) as im:
        assert getattr(im, "n_frames", 1) == 1
        assert np.array_equal(np.asarray(im.convert("RGB")), pages[0])


def test_cmyk_jpeg_gives_rgb(tmp_path, identity):
    src = tmp_path / "print.jpg"
    Image.new("CMYK", (32, 16), (255, 0, 0, 0)).save(src, quality=95)  # pure cyan
    out = tmp_path / "print-out.jpg"
    _deblur_ok(src, out, identity)
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (32, 16)
        mean = np.asarray(im).reshape(-1, 3).mean(axis=0)
    assert np.allclose(mean, [0, 255, 255], atol=12), mean


def test_16bit_grey_png_stays_16bit_grey(tmp_path, identity):
    values = np.random.default_rng(3).integers(0, 65536, (10, 13), dtype=np.uint16)
    src = tmp_path / "scan16.png"
    Image.fromarray(values).save(src)
    with Image.open(src) as im:
        assert im.mode.startswith("I;16")  # the input really is 16-bit grey
    out = tmp_path / "scan16-out.png"
    _deblur_ok(src, out, identity)
    with Image.open(out) as im:
        assert im.mode.startswith("I;16") and im.size == (13, 10)
        assert np.array_equal(np.asarray(im).astype(np.uint16), values)  # all 16 bits kept


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_is_ignored(tmp_path, identity):
    src = tmp_path / "camera.jpg"
    src.write_bytes(_broken_exif_jpeg())
    out = tmp_path / "camera-out.jpg"
    _deblur_ok(src, out, identity)
    with Image.open(out) as im:
        im.load()
        assert im.size == (16, 12)


def _bytes_name(folder: Path, raw: bytes) -> Path:
    return folder / os.fsdecode(raw)


def _readable(text: str) -> None:
    """Undecodable bytes of a file name show as \\xff (as the library's messages do), never as
    Python's internal surrogate escapes (\\udcff), which match no byte of the real name."""
    assert "\\udc" not in text, f"file name shown with surrogate escapes: {text!r}"


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names are a POSIX feature")
def test_non_utf8_file_name_is_deblurred(tmp_path, weights):
    src = _bytes_name(tmp_path, b"f\xe9te-\xff.png")  # a Latin-1 name on a UTF-8 system
    try:
        src.write_bytes(_encoded(_u8((12, 16, 3)), "PNG"))
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    before = _sha(src)
    text = _ok(_run(src, "--weights", weights))
    out = _bytes_name(tmp_path, b"f\xe9te-\xff_deblurred.png")
    names = sorted(n for n in os.listdir(os.fsencode(tmp_path)) if n != b"cache")  # the user cache: see _isolated
    assert names == [b"f\xe9te-\xff.png", b"f\xe9te-\xff_deblurred.png"]
    with Image.open(out) as im:
        im.load()
    assert _sha(src) == before
    flat = text.replace("\n", "")  # Rich wraps the long "wrote" line
    assert "wrote" in flat and "_deblurred.png" in flat
    _readable(flat)
    assert "f\\xe9te-\\xff_deblurred.png" in flat


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names are a POSIX feature")
def test_non_utf8_file_name_errors(tmp_path, weights):
    bad = _bytes_name(tmp_path, b"broken-\xfe.jpg")
    try:
        bad.write_bytes(b"not a photo")
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    before = _tree(tmp_path)
    _readable(_refused(_run(bad, "--weights", weights), EXIT_INPUT, "broken-\\xfe.jpg", "not an image"))
    missing = _bytes_name(tmp_path, b"missing-\xff.png")
    message = _refused(_run(missing, "--weights", weights), EXIT_INPUT, "missing-")
    assert _tree(tmp_path) == before
    _readable(message)
    assert "missing-\\xff.png" in message


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names are a POSIX feature")
def test_non_utf8_names_in_a_batch(tmp_path, weights):
    src, out = tmp_path / "in", tmp_path / "out"
    sub = _bytes_name(src, b"\xe9t\xe9")
    try:
        sub.mkdir(parents=True)
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    (sub / os.fsdecode(b"\xff.jpg")).write_bytes(_encoded(_u8((12, 16, 3)), "JPEG"))
    (sub / os.fsdecode(b"\xfe.jpg")).write_bytes(b"garbage")
    before = _tree(src)
    result = _run("batch", src, "-o", out, "--weights", weights)
    _no_traceback(result)
    assert result.exit_code == EXIT_FAILURES and "not an image" in result.output
    assert [os.fsencode(p.relative_to(out)) for p in _finals(out)] == [b"\xe9t\xe9/\xff.jpg"]
    assert _tree(src) == before
    _readable(result.output)  # the summary names the failed file readably


@pytest.mark.parametrize("command", ["bad-file", "missing", "output-is-input", "batch"])
def test_control_characters_in_file_names(tmp_path, weights, command):
    """A newline in a file name must not split the one-line message (shown as \\n)."""
    folder = tmp_path / "in"
    folder.mkdir()
    bad = folder / "two\nlines.jpg"
    bad.write_bytes(b"not a photo")
    before = _tree(folder)
    if command == "batch":
        result = _run("batch", folder, "-o", tmp_path / "out", "--weights", weights)
        _no_traceback(result)
        assert result.exit_code == EXIT_FAILURES
        assert _tree(folder) == before
        assert "two\nlines" not in result.output and "two\\nlines.jpg" in result.output, result.output
        return
    code = EXIT_OUTPUT if command == "output-is-input" else EXIT_INPUT
    if command == "bad-file":
        args = [bad]
    elif command == "missing":
        args = [folder / "miss\ning.jpg"]
    else:
        args = [bad, "-o", bad, "--overwrite"]
    result = _run(*args, "--weights", weights)
    assert _tree(folder) == before  # first what matters most: nothing lost or written
    assert "\\n" in _refused(result, code)


@pytest.mark.parametrize("command", ["bad-file", "closing-tag", "wrote", "batch"])
def test_square_brackets_in_file_names(tmp_path, weights, command):
    """Names like 'photo [edited].jpg' are common; they are file names, not console markup."""
    folder = tmp_path / "in"
    folder.mkdir()
    bad = folder / "photo [edited].jpg"
    bad.write_bytes(b"not a photo")
    good = folder / "photo [copy].png"
    good.write_bytes(_encoded(_u8((12, 16, 3)), "PNG"))
    before = _tree(folder)
    if command == "bad-file":
        result = _run(bad, "--weights", weights)
        assert _tree(folder) == before
        _refused(result, EXIT_INPUT, "photo [edited].jpg")
    elif command == "closing-tag":  # a folder 'album [' holding ']x.jpg': the path reads 'album [/]x.jpg'
        result = _run(folder / "album [" / "]x.jpg", "--weights", weights)
        assert _tree(folder) == before
        _refused(result, EXIT_INPUT, "album [/]x.jpg")
    elif command == "wrote":
        result = _run(good, "--weights", weights)
        assert (folder / "photo [copy]_deblurred.png").is_file() and _sha(good) == before[good.name]
        assert "photo [copy]_deblurred.png" in _ok(result).replace("\n", ""), result.output
    else:
        result = _run("batch", folder, "-o", tmp_path / "out", "--weights", weights)
        assert _tree(folder) == before
        _no_traceback(result)
        assert result.exit_code == EXIT_FAILURES
        assert [p.name for p in _finals(tmp_path / "out")] == ["photo [copy].png"]
        assert "photo [edited].jpg" in result.output, result.output


def _invoke_with_deadline(args: list[object], seconds: float = 60):
    """Run the CLI in a worker thread so that a hang fails the test instead of the suite."""
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.update(result=_run(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the command hung"
    return box["result"]


def test_symlink_loops_in_a_batch_folder(tmp_path, weights):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "a.png").write_bytes(_encoded(_u8((12, 16, 3), 1), "PNG"))
    (src / "sub" / "b.jpg").write_bytes(_encoded(_u8((12, 16, 3), 2), "JPEG"))
    os.symlink(src, src / "sub" / "loop")  # folder loops: in/sub/loop -> in
    os.symlink(src / "sub", src / "sub" / "again")
    result = _invoke_with_deadline(["batch", src, "-o", out, "--weights", weights])
    _ok(result)
    assert [p.relative_to(out).as_posix() for p in _finals(out)] == ["a.png", "sub/b.jpg"]
    done = _tree(out)
    # a file link loop (x -> y -> x) is a bad file: reported, the batch still completes
    os.symlink(src / "y.png", src / "x.png")
    os.symlink(src / "x.png", src / "y.png")
    before = _tree(src)
    result = _invoke_with_deadline(["batch", src, "-o", out, "--weights", weights])
    _no_traceback(result)
    assert result.exit_code == EXIT_FAILURES, result.output
    assert "x.png" in result.output and "y.png" in result.output and "symbolic links" in result.output
    assert _tree(out) == done  # the finished outputs were skipped, no temp file left
    assert _tree(src) == before


def _denied(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


@pytest.mark.parametrize("command", ["image", "batch"])
def test_unwritable_output_under_a_file(tmp_path, weights, command):
    src = tmp_path / "photo.png"
    src.write_bytes(_encoded(_u8((12, 16, 3)), "PNG"))
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    before = _tree(tmp_path)
    if command == "image":
        result = _run(src, "-o", blocker / "out.jpg", "--weights", weights)
    else:
        result = _run("batch", tmp_path, "-o", blocker / "out", "--weights", weights)
    assert _tree(tmp_path) == before
    _refused(result, EXIT_OUTPUT, "file.txt")


def test_unwritable_output_folder_permission_denied(tmp_path, weights, monkeypatch):
    src = tmp_path / "in" / "photo.png"
    src.parent.mkdir()
    src.write_bytes(_encoded(_u8((12, 16, 3)), "PNG"))
    locked = tmp_path / "locked"
    locked.mkdir()
    before = _tree(tmp_path / "in")
    if os.geteuid() != 0:  # root ignores mode bits; the monkeypatch below simulates it for everyone
        locked.chmod(0o500)
        try:
            _refused(_run(src, "-o", locked / "out.jpg", "--weights", weights), EXIT_OUTPUT, "ermission denied")
        finally:
            locked.chmod(0o700)
    monkeypatch.setattr(fsutil, "tempfile", SimpleNamespace(mkstemp=_denied))
    _refused(_run(src, "-o", locked / "out.jpg", "--weights", weights), EXIT_OUTPUT, "Permission denied")
    # issue 12 item 7: the batch's output folder is probed while planning, before any weights
    # are loaded, so the whole batch is refused with one line (it used to fail file by file).
    _refused(_run("batch", tmp_path / "in", "-o", locked, "--weights", weights), EXIT_OUTPUT, "Permission denied")
    assert list(locked.iterdir()) == []
    assert _tree(tmp_path / "in") == before


@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink", "dotted"])
def test_output_equal_to_input_is_refused(tmp_path, weights, spelling):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    src = folder / "photo.jpg"
    src.write_bytes(_encoded(_u8((12, 16, 3)), "JPEG"))
    target = {
        "same": src,
        "symlink": folder / "alias.jpg",
        "hardlink": folder / "twin.jpg",
        "dotted": folder / "sub" / ".." / "photo.jpg",
    }[spelling]
    if spelling == "symlink":
        target.symlink_to(src)
    elif spelling == "hardlink":
        os.link(src, target)
    before = _tree(folder)
    for extra in ([], ["--overwrite"]):
        _refused(_run(src, "-o", target, "--weights", weights, *extra), EXIT_OUTPUT, "input")
    assert _tree(folder) == before


def _fail_midway_8bit(monkeypatch):
    def save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\xff\xd8\xff\xe0 first bytes of a JPEG, then the disk was full")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", save)


def _fail_midway_16bit(monkeypatch):
    def write(path, *args, **kwargs):
        Path(path).write_bytes(b"\x89PNG\r\n\x1a\n first bytes of a PNG")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from deblur_cli.files import encode16

    monkeypatch.setitem(encode16.WRITERS, "PNG", write)


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("deep", [False, True], ids=["8bit", "16bit"])
def test_disk_full_midway(tmp_path, weights, monkeypatch, deep, existing):
    src = tmp_path / "in" / "photo.png"
    src.parent.mkdir()
    pixels = np.random.default_rng(4).integers(0, 65536 if deep else 256, (12, 16), dtype=np.uint16 if deep else np.uint8)
    Image.fromarray(pixels).save(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / ("sharp.png" if deep else "sharp.jpg")
    if existing:
        out.write_bytes(b"an earlier result the user wants to keep")
    before_in, before_out = _tree(src.parent), _tree(out_dir)
    (_fail_midway_16bit if deep else _fail_midway_8bit)(monkeypatch)
    extra = ["--overwrite"] if existing else []
    _refused(_run(src, "-o", out, "--weights", weights, *extra), EXIT_OUTPUT, "No space left on device")
    assert _tree(out_dir) == before_out  # the existing output is unchanged, nothing else appeared
    assert _tree(src.parent) == before_in


def test_disk_full_in_a_batch(tmp_path, weights, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.jpg").write_bytes(_encoded(_u8((12, 16, 3), i), "JPEG"))
    before = _tree(src)
    _fail_midway_8bit(monkeypatch)
    result = _run("batch", src, "-o", out, "--weights", weights)
    _no_traceback(result)
    assert result.exit_code == EXIT_FAILURES and result.output.count("No space left on device") == 3
    assert _tree(out) == {} and _tree(src) == before


# ============================================================================ real processes


def _env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONIOENCODING"}  # a user's defaults
    return {
        **env,
        "PYTHONPATH": path,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        W.ENV_CACHE_DIR: str(tmp_path / "cache"),
    }


@pytest.mark.parametrize("case", ["truncated-jpeg-non-utf8-name", "markup-in-path", "pickled-weights"])
def test_real_process_prints_one_line_error(tmp_path, weights, case):
    marker = tmp_path / "PWNED"
    if case == "markup-in-path":  # a missing file under 'album [': fails before torch is even imported
        src = tmp_path / "album [" / "]x.jpg"
        spec, code, needles = str(weights), EXIT_INPUT, ["no such file", "album [/]x.jpg"]
    elif case == "truncated-jpeg-non-utf8-name":
        src = _bytes_name(tmp_path, b"cut-\xff.jpg")
        src.write_bytes(HOSTILE_FILES["truncated-jpeg"][1]())
        spec, code, needles = str(weights), EXIT_INPUT, ["cut-\\xff.jpg", "corrupt or truncated"]
    else:  # a plain pickle (not torch's zip format) whose unpickling calls exec()
        src = _photo(tmp_path)
        spec, code, needles = str(tmp_path / "model.pth"), EXIT_WEIGHTS, ["refusing to load", "model.pth"]
        Path(spec).write_bytes(pickle.dumps({"model": {}, "extra": _Exec(marker)}))
    before = _tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "deblur_cli", os.fsencode(src), "--weights", spec, "--threads", "1"],
        capture_output=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
    )
    stdout, stderr = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stdout + stderr
    assert proc.returncode == code, stderr
    assert _tree(tmp_path) == before and not marker.exists()
    assert stdout.strip() == ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), f"expected one line, got: {stderr!r}"
    for needle in needles:
        assert needle in lines[0]


# A stand-in for a slow disk: the Nth write (of an image or a checkpoint) stops halfway,
# leaving a half-written file, and tells the test where; the test then sends SIGKILL.
_STALL_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    marker, stall_on, what = Path(os.environ["STALL_MARKER"]), int(os.environ["STALL_ON"]), os.environ["STALL_WHAT"]
    calls = 0

    def then_stall(path):
        # count this write; on the chosen one cut the file in half and hang until killed
        global calls
        calls += 1
        if calls == stall_on:
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.truncate(size // 2)
                os.fsync(f.fileno())
            # written then renamed: the test polls for the marker and kills at once, so it must
            # never see the marker before its content
            part = marker.with_name(marker.name + ".part")
            part.write_text(os.fsdecode(path))
            part.replace(marker)
            time.sleep(300)

    if what == "image":
        from deblur_cli.files import image_io
        real_encode = image_io._encode

        def encode(samples, tmp, *args):
            real_encode(samples, tmp, *args)
            then_stall(tmp)

        image_io._encode = encode
    else:
        import torch
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            then_stall(f)

        torch.save = save

    from deblur_cli.cli import main
    sys.argv[0] = "deblur"
    main()
    """
)


def _start(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start ``cmd`` with its stderr in a file (a pipe nobody reads could fill and block it)."""
    log = open(cwd / "stderr.log", "wb")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.log.close()  # type: ignore[attr-defined]


def _poll(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    """Wait (polling fast) until ``ready()``; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            tail = Path(proc.log.name).read_text(errors="replace")[-2000:]  # type: ignore[attr-defined]
            pytest.fail(f"the process ended (code {proc.returncode}) before it could be killed:\n{tail}")
        assert time.monotonic() < deadline, "timed out waiting for the process"
        time.sleep(0.002)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _batch_inputs(src: Path, n: int = 12) -> None:
    for i in range(n):
        ext = "png" if i % 2 else "jpg"
        pixels = _u8((256, 320, 3), seed=i)
        path = src / f"s{i % 3}" / f"{i:02d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_encoded(pixels, "PNG" if ext == "png" else "JPEG"))


def _all_decode(paths: list[Path]) -> None:
    for p in paths:
        with Image.open(p) as im:
            im.load()  # a half-written file would raise here


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("moment", ["after-first-output", "while-writing"])
def test_batch_sigkill_midway_then_rerun(tmp_path, weights, moment):
    src, out = tmp_path / "in", tmp_path / "out"
    _batch_inputs(src)
    inputs = _tree(src)
    args = ["batch", str(src), "-o", str(out), "--weights", str(weights), "--threads", "1", "--precision", "fp32"]
    env, marker = _env(tmp_path), tmp_path / "stalled"
    if moment == "after-first-output":  # the plain command, killed as soon as one output exists
        cmd = [sys.executable, "-m", "deblur_cli", *args]
        ready = lambda: out.is_dir() and len(_finals(out)) >= 1  # noqa: E731
    else:  # the third output stops halfway through its write; kill it there
        cmd = [sys.executable, "-c", _STALL_SCRIPT, *args]
        env.update(STALL_MARKER=str(marker), STALL_ON="3", STALL_WHAT="image")
        ready = marker.exists
    proc = _start(cmd, env, tmp_path)
    try:
        _poll(proc, ready)
        _kill(proc)
    finally:
        _stop(proc)
    present = _finals(out)
    assert 1 <= len(present) < 12, [p.name for p in present]
    _all_decode(present)  # nothing half-written under a final name
    if moment == "while-writing":
        half = Path(marker.read_text())
        assert half.name.startswith(TMP_PREFIX) and half.exists()  # the half-written file is hidden
        with pytest.raises(Exception), Image.open(half) as im:
            im.load()
        assert len(present) == 2
    kept = {p: (p.stat().st_mtime_ns, _sha(p)) for p in present}
    rerun = _run(*args)
    _ok(rerun)
    finals = _finals(out)
    assert {p.relative_to(out).as_posix() for p in finals} == set(inputs)  # every output exists
    _all_decode(finals)
    assert not _temps(out), "stale temp files of the killed run remain"
    for p, stamp in kept.items():  # finished outputs were skipped, not redone
        assert (p.stat().st_mtime_ns, _sha(p)) == stamp
    assert _tree(src) == inputs


def _pairs(root: Path, n: int = 4, size: int = 48) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sharp = (rng.random((size, size, 3)) > 0.5).astype(np.float32)
        blur = (sharp + np.roll(sharp, 1, 1) + np.roll(sharp, -1, 1)) / 3
        Image.fromarray((sharp * 255).astype(np.uint8)).save(root / "sharp" / f"{i}.png")
        Image.fromarray((blur * 255).astype(np.uint8)).save(root / "blur" / f"{i}.png")
    return root


_TRAIN_TOML = """\
steps = 100000
batch_size = 2
crop = 32
workers = 0
checkpoint_every = 1
log_every = 1
val_every = 100000
val_fraction = 0.0
keep_checkpoints = 3

[model]
widths = [4, 8, 16]
kernel_size = 3
blocks_per_group = 1
"""


def _log_steps(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return [(r["step"], r["time"]) for r in rows if "loss" in r]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_train_sigkill_while_checkpointing_resumes(tmp_path):
    data, run = _pairs(tmp_path / "data"), tmp_path / "run"
    config = tmp_path / "tiny.toml"
    config.write_text(_TRAIN_TOML)
    marker = tmp_path / "stalled"
    env = {**_env(tmp_path), "STALL_MARKER": str(marker), "STALL_ON": "5", "STALL_WHAT": "checkpoint"}
    args = ["train", "--data", str(data), "--output", str(run), "--config", str(config), "--device", "cpu", "--threads", "1"]
    proc = _start([sys.executable, "-c", _STALL_SCRIPT, *args], env, tmp_path)
    try:
        _poll(proc, marker.exists)  # the 5th checkpoint (step 5) is half written
        _kill(proc)
    finally:
        _stop(proc)
    folder = run / "checkpoints"
    half = Path(marker.read_text())
    assert half.parent == folder and half.name.startswith(TMP_PREFIX)
    with pytest.raises(Exception):
        torch.load(half, weights_only=True)  # what a non-atomic writer would have left as step 5
    finals = sorted(folder.glob("step_*.pt"))
    assert [p.name for p in finals] == [f"step_{s:08d}.pt" for s in (2, 3, 4)]
    for p in finals:  # every checkpoint under its final name loads
        assert torch.load(p, map_location="cpu", weights_only=True)["step"] == int(p.stem[5:])
    last = finals[-1]
    stamp = (last.stat().st_ino, last.stat().st_mtime_ns)
    started = time.time()
    result = _run("train", "--data", data, "--output", run, "--resume", "--steps", "6", "--device", "cpu")
    text = _ok(result)
    assert "trained to step 6" in text
    assert (last.stat().st_ino, last.stat().st_mtime_ns) == stamp  # step 4 was resumed, not redone
    assert [p.name for p in sorted(folder.glob("step_*.pt"))] == [f"step_{s:08d}.pt" for s in (4, 5, 6)]
    logged = _log_steps(run)
    assert [s for s, _ in logged] == [1, 2, 3, 4, 5, 6]  # continuous, the killed run's step 5 replaced
    assert all(t < started for s, t in logged if s <= 4) and all(t >= started for s, t in logged if s > 4)


# ============================================================================ weights and downloads


def _photo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "photo.jpg"
    src.write_bytes(_encoded(_u8((12, 16, 3)), "JPEG"))
    return src


def _registry(folder: Path, entries: list[dict], default: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.json").write_text(json.dumps({"default": default, "weights": entries}))


def _entry(name: str, file: str, sha: str, **extra) -> dict:
    return {"name": name, "file": file, "sha256": sha, "config": TINY.to_dict(), "licence": "MIT",
            "provenance": "test", "description": "tiny", **extra}


def test_flipped_byte_in_registered_weights_is_refused(tmp_path, weights, monkeypatch):
    bundled = tmp_path / "bundled"
    blob = bytearray(weights.read_bytes())
    sha = hashlib.sha256(blob).hexdigest()
    blob[len(blob) // 2] ^= 0x10  # one bit of one tensor value
    _registry(bundled, [_entry("tiny", "tiny.safetensors", sha)], default="tiny")
    (bundled / "tiny.safetensors").write_bytes(bytes(blob))
    monkeypatch.setattr(W.registry, "weights_dir", lambda: bundled)
    photos = tmp_path / "photos"
    _photo(photos)
    before = _tree(photos)
    for extra in ([], ["--weights", "tiny"]):
        _refused(_run(photos / "photo.jpg", *extra), EXIT_WEIGHTS, "sha256", sha, "tampered")
    _refused(_run("batch", photos, "-o", tmp_path / "out"), EXIT_WEIGHTS, "sha256")
    _refused(_run("weights", "download", "tiny"), EXIT_WEIGHTS, "sha256")
    verify = _run("weights", "verify")
    _no_traceback(verify)
    assert verify.exit_code == EXIT_WEIGHTS and "FAILED" in verify.output
    assert _tree(photos) == before
    assert not (tmp_path / "out").exists() or _tree(tmp_path / "out") == {}


class _Exec:
    """Pickles as a call to exec(): what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').write('pwned')"

    def __reduce__(self):
        return (exec, (self.code,))


@pytest.mark.parametrize("kind", ["torch-zip", "raw-pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "model.pth"
    state = AttentiveDeblurNet(TINY).state_dict()
    if kind == "torch-zip":
        torch.save({"model": state, "extra": _Exec(marker)}, evil)
    else:
        evil.write_bytes(pickle.dumps({"model": state, "extra": _Exec(marker)}))
    photos = tmp_path / "photos"
    _photo(photos)
    before = _tree(photos)
    _refused(_run(photos / "photo.jpg", "--weights", evil), EXIT_WEIGHTS, "refusing to load", "safetensors")
    assert not marker.exists(), "the pickle's code ran"
    assert _tree(photos) == before
    # control: the payload is live, so the check above can fail
    if kind == "torch-zip":
        torch.load(evil, weights_only=False)
    else:
        pickle.loads(evil.read_bytes())
    assert marker.read_text() == "pwned"


@pytest.fixture
def server(weights, hostile_server):
    return hostile_server(weights.read_bytes())


@pytest.fixture
def short_timeout(monkeypatch):
    # `deblur weights download` has no timeout option; 30 s is too long for a test
    monkeypatch.setitem(W.download.__kwdefaults__, "timeout", 0.5)


def _cache_files(tmp_path: Path) -> list[Path]:
    """Files in the download cache (the record of written outputs lives beside it)."""
    cache = tmp_path / "cache" / "downloads"
    return [p for p in cache.rglob("*") if not p.is_dir()] if cache.exists() else []


@pytest.mark.parametrize(
    "route, message",
    [
        pytest.param("error", "HTTP 500", id="http-500"),
        pytest.param("silent", "timed out", id="no-response"),
        pytest.param("stall", "timed out", id="stalls-midway"),
        pytest.param("short", "cut short", id="cut-short"),
        pytest.param("registry-tampered", "corrupt or tampered with", id="wrong-checksum"),
    ],
)
def test_download_failures_leave_no_partial_file(tmp_path, weights, server, short_timeout, monkeypatch, route, message):
    if route == "registry-tampered":  # a registered URL whose sha256 is known; the body is altered
        bundled = tmp_path / "bundled"
        url = f"{server.base}/tampered/tiny.safetensors"
        _registry(bundled, [_entry("remote", "remote.safetensors", _sha(weights), url=url)])
        monkeypatch.setattr(W.registry, "weights_dir", lambda: bundled)
        result = _run("weights", "download", "remote")
    else:
        url = f"{server.base}/{route}/tiny.safetensors"
        result = _run("weights", "download", url)
    _refused(result, EXIT_WEIGHTS, message, url)
    assert _cache_files(tmp_path) == []


def test_download_control_and_failed_url_weights_leave_photo_alone(tmp_path, weights, server, short_timeout):
    url = f"{server.base}/ok/tiny.safetensors"
    _ok(_run("weights", "download", url))  # control: the server and the cache work
    [cached] = _cache_files(tmp_path)
    assert _sha(cached) == _sha(weights)
    photos = tmp_path / "photos"
    _photo(photos)
    before = _tree(photos)
    _refused(_run(photos / "photo.jpg", "--weights", f"{server.base}/short/x.safetensors"), EXIT_WEIGHTS, "cut short")
    assert _tree(photos) == before and _cache_files(tmp_path) == [cached]


# ============================================================================ issue 12: the hostile trial
# Items 3, 4, 5, 6, 8, 9, 10, 14, 15, 16 of issue 12 (1, 2, 7, 12, 13 are in test_cli.py),
# then the cases found by trying to break every command after it.


def _tiff(path: Path, samples: np.ndarray, **tags) -> Path:
    """A one-page grey TIFF of ``samples`` (float32 -> mode F, int32 -> mode I)."""
    from PIL import TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, value in tags.items():
        info[int(tag)] = value
    Image.fromarray(samples).save(path, tiffinfo=info)
    return path


def _png16(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int64)


@pytest.mark.parametrize("case", ["float-0-1", "float-0-255", "int32-full-range", "int32-negative", "float-with-range-tags", "float-nan"])
def test_32bit_tiff_samples_are_read_in_their_declared_range(tmp_path, identity, case):
    """Item 3: float TIFFs holding 0..255 and int32 TIFFs came out almost white (clipped), exit 0."""
    ramp = np.linspace(0.0, 1.0, 12 * 16, dtype=np.float64).reshape(12, 16)
    src, out = tmp_path / "deep.tif", tmp_path / "out.tif"
    if case == "float-0-1":
        _tiff(src, ramp.astype(np.float32))
    elif case == "float-0-255":
        _tiff(src, (ramp * 255).astype(np.float32))
    elif case == "int32-full-range":
        _tiff(src, np.round(ramp * (2**31 - 1)).astype(np.int32))
    elif case == "int32-negative":
        _tiff(src, (np.round(ramp * 1000) - 500).astype(np.int32))
    elif case == "float-with-range-tags":  # SMinSampleValue / SMaxSampleValue say 0..255
        _tiff(src, (ramp * 255).astype(np.float32), **{"340": 0.0, "341": 255.0})
    else:
        bad = ramp.astype(np.float32)
        bad[3, 4] = np.nan
        _tiff(src, bad)
    before = _sha(src)
    if case in ("float-0-255", "int32-negative"):
        _refused(_run(src, "-o", out, "--weights", identity), EXIT_INPUT, "deep.tif", "outside", "rescale")
        assert not out.exists() and _sha(src) == before
        return
    if case == "float-nan":
        _refused(_run(src, "-o", out, "--weights", identity), EXIT_INPUT, "NaN")
        return
    _deblur_ok(src, out, identity)
    got = _png16(out)  # written as 16-bit grey: the ramp, not white
    assert got.dtype == np.int64 and got.shape == (12, 16)
    assert np.abs(got - np.round(ramp * 65535)).max() <= 2, (got.min(), got.max())


def _html_server(hostile_server, weights: Path):
    """A server that answers an HTML page where weights should be, until ``fix()``."""
    server = hostile_server(b"<!doctype html><html><body>Sign in to continue</body></html>\n")
    server.fix = lambda: setattr(server, "body", weights.read_bytes())
    return server


def test_weights_url_answering_html_is_never_cached(tmp_path, weights, hostile_server, short_timeout):
    """Item 4: an HTML page was cached and reused forever; `weights download` said "saved"."""
    server = _html_server(hostile_server, weights)
    url = f"{server.base}/ok/model.safetensors"
    _refused(_run("weights", "download", url), EXIT_WEIGHTS, "not usable weights", "not valid safetensors", url)
    assert _cache_files(tmp_path) == []
    photos = tmp_path / "photos"
    src = _photo(photos)
    before = _tree(photos)
    _refused(_run(src, "--weights", url), EXIT_WEIGHTS, "not usable weights")
    assert _cache_files(tmp_path) == [] and _tree(photos) == before
    server.fix()  # the same URL now serves the weights: they are fetched, not a stale page
    _ok(_run(src, "--weights", url))
    [cached] = _cache_files(tmp_path)
    assert _sha(cached) == _sha(weights) and server.hits["ok"] == 3


def test_poisoned_cache_entry_is_fetched_again(tmp_path, weights, hostile_server, short_timeout):
    """Item 4: a page cached by an older version is not trusted: it is checked and replaced."""
    server = hostile_server(weights.read_bytes())
    url = f"{server.base}/ok/model.safetensors"
    poisoned = W.downloads_dir() / W._url_filename(url)
    poisoned.parent.mkdir(parents=True)
    poisoned.write_bytes(b"<html>502 Bad Gateway</html>")
    _ok(_run("weights", "download", url))
    assert _sha(poisoned) == _sha(weights) and server.hits["ok"] == 1


def _tampered_header(src: Path, dst: Path, **changes) -> Path:
    """``src`` with its stored architecture config changed (tensors untouched)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta[W.META_CONFIG])
    config.update(changes)
    save_file(state, str(dst), metadata={**meta, W.META_CONFIG: json.dumps(config)})
    return dst


def test_weights_url_with_wrong_shapes_is_never_cached(tmp_path, weights, hostile_server, short_timeout):
    """Item 4: a real safetensors file whose tensors do not fit its config is not kept either."""
    wrong = _tampered_header(weights, tmp_path / "wrong.safetensors", widths=[8, 8, 16])
    server = hostile_server(wrong.read_bytes())
    url = f"{server.base}/ok/wrong.safetensors"
    _refused(_run("weights", "download", url), EXIT_WEIGHTS, "not usable weights", "do not fit the architecture")
    assert _cache_files(tmp_path) == []


@pytest.mark.parametrize(
    "changes, needle",
    [
        pytest.param({"widths": [100000, 8, 16]}, "widths=100000, over the limit", id="widths-100000"),
        pytest.param({"num_scales": 1000}, "num_scales=1000, over the limit", id="num-scales-1000"),
        pytest.param({"kernel_size": 15, "widths": [2048, 2048, 2048], "blocks_per_group": 32}, "parameters, over the limit", id="too-many-parameters"),
        pytest.param({"kernel_size": "5"}, "kernel_size", id="kernel-as-text"),
        pytest.param({"reduction": 10**30}, "reduction", id="huge-reduction"),
    ],
)
def test_tampered_architecture_is_refused_before_anything_is_built(tmp_path, weights, monkeypatch, changes, needle):
    """Item 5: widths=100000 tried to allocate ~360 GB; num_scales=1000 was an internal error."""
    bad = _tampered_header(weights, tmp_path / "bad.safetensors", **changes)
    built = []
    real_init = AttentiveDeblurNet.__init__
    monkeypatch.setattr(AttentiveDeblurNet, "__init__", lambda self, *a, **k: built.append(1) or real_init(self, *a, **k))
    src = _photo(tmp_path / "photos")
    before = _tree(src.parent)
    _refused(_run(src, "--weights", bad), EXIT_WEIGHTS, needle, "bad.safetensors")
    _refused(_run("attention-map", src, "-o", tmp_path / "maps", "--weights", bad), EXIT_WEIGHTS, needle)
    assert built == [] and _tree(src.parent) == before and not (tmp_path / "maps").exists()


def _sharp_photos(folder: Path, n: int = 3, size: tuple[int, int] = (40, 48)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(_u8((*size, 3), seed=10 + i)).save(folder / f"p{i}.png")
    return folder


def test_make_pairs_refuses_a_huge_upscale_before_writing(tmp_path):
    """Item 6: --crop 5000 on small photos upscaled them ~100x silently, for minutes."""
    photos = _sharp_photos(tmp_path / "sharp")
    before = _tree(photos)
    _refused(_run("make-pairs", photos, tmp_path / "pairs", "--crop", 5000), EXIT_USAGE, "--crop 5000", "upscale", "--crop 160")
    assert not (tmp_path / "pairs").exists() and _tree(photos) == before
    _ok(_run("make-pairs", photos, tmp_path / "pairs", "--crop", 64))  # up to 4x is allowed


def test_interrupted_make_pairs_resumes(tmp_path, monkeypatch):
    """Item 6: the partial folder of an interrupted run blocked every rerun."""
    from deblur_cli.data import make_pairs as mp

    photos = _sharp_photos(tmp_path / "sharp", n=4)
    out, fresh = tmp_path / "pairs", tmp_path / "fresh"
    real = mp.synthesize
    calls = []

    def interrupted(*args, **kwargs):  # Ctrl-C while the 3rd photo is being blurred
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(mp, "synthesize", interrupted)
    result = _run("make-pairs", photos, out, "--seed", 3)
    _no_traceback(result)
    assert result.exit_code == 130 and "interrupted" in result.output
    done = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _finals(out) if p.suffix == ".png"}
    assert len(done) == 4 and not _temps(out)  # two photos' pairs, complete
    monkeypatch.setattr(mp, "synthesize", real)
    _refused(_run("make-pairs", photos, out, "--seed", 4), EXIT_OUTPUT, "other settings")
    _ok(_run("make-pairs", photos, out, "--seed", 3))
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done} == done  # not redone
    _ok(_run("make-pairs", photos, fresh, "--seed", 3))
    assert _tree(out) == _tree(fresh)  # the resumed set is the one an uninterrupted run makes


#: The commands that take --threads, for the tests of that option.
THREAD_COMMANDS = ["image", "batch", "attention-map", "evaluate", "video"]


def _command_args(command: str, src: Path, tmp_path: Path) -> list:
    """Arguments that run ``command`` on the photo ``src`` (``evaluate``/``video`` on missing data in tmp_path)."""
    return {
        "image": [src],
        "batch": ["batch", src.parent],
        "attention-map": ["attention-map", src],
        "evaluate": ["evaluate", "--data", tmp_path],
        "video": ["video", tmp_path / "clip.mp4"],
    }[command]


@pytest.mark.parametrize("command", THREAD_COMMANDS)
@pytest.mark.parametrize("threads", ["-1", "0"])
def test_bad_thread_count_is_a_usage_error(tmp_path, weights, command, threads):
    """Item 8: --threads -1 ended in "internal error" (exit 1) after the weights were loaded."""
    args = _command_args(command, _photo(tmp_path / "photos"), tmp_path)
    _refused(_run(*args, "--weights", weights, "--threads", threads), EXIT_USAGE, "--threads")



@pytest.mark.parametrize("name", ["maps[/x]", "maps[red]", "maps [bold]x[/bold]"])
def test_attention_map_prints_the_paths_it_wrote(tmp_path, weights, name):
    """Item 9: markup in -o was an internal error after writing, or printed paths that do not exist."""
    src = _photo(tmp_path / "photos")
    out = tmp_path / name
    text = _ok(_run("attention-map", src, "-o", out, "--blocks", "enc1", "--weights", weights))
    listed = [Path(line.strip()) for line in text.splitlines() if line.startswith("  ")]
    assert listed and all(p.is_file() for p in listed), text
    assert sorted(listed) == sorted(_finals(out)) and str(out) in text


def test_make_pairs_prints_its_folder_with_markup_characters(tmp_path):
    """Item 9: make-pairs printed its output folder as markup."""
    photos = _sharp_photos(tmp_path / "sharp", n=1)
    for name in ("pairs[/x]", "pairs[red]"):
        text = _ok(_run("make-pairs", photos, tmp_path / name))
        assert f"to {tmp_path / name}" in text


def _process(args: list[object], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deblur_cli", *[os.fspath(a) if isinstance(a, Path) else str(a) for a in args]],
        capture_output=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        pytest.param(["PHOTO", "--quality", "0"], "--quality", id="quality-0"),
        pytest.param(["PHOTO", "--no-such-option"], "--no-such-option", id="unknown-option"),
        pytest.param(["batch"], "Missing argument", id="missing-argument"),
        pytest.param(["PHOTO", "--tile", "big"], "--tile", id="not-a-number"),
        pytest.param(["weights", "nonsense"], "nonsense", id="unknown-command"),
    ],
)
def test_usage_errors_are_one_line_in_a_real_process(tmp_path, weights, args, needle):
    """Item 10: click's usage errors were 5-line boxes; the README promises one line."""
    src = _photo(tmp_path / "photos")
    proc = _process([src if a == "PHOTO" else a for a in args], tmp_path)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == EXIT_USAGE, stderr
    assert proc.stdout == b"" and "Traceback" not in stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error:") and needle in stderr, repr(stderr)
    assert "--help" in stderr  # where to look next


def test_no_blank_lines_when_stderr_is_not_a_terminal(tmp_path, weights):
    """Item 10: every run started with 2 blank lines (spinners) when stderr was a file or pipe."""
    src = _photo(tmp_path / "photos")
    proc = _process([src, "--weights", weights, "--threads", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wrote "), lines
    proc = _process(["batch", src.parent, "--weights", weights, "--threads", "1"], tmp_path)
    assert proc.returncode == 0 and all(line.strip() for line in proc.stderr.decode().splitlines()), proc.stderr


def test_bare_command_still_shows_help(tmp_path):
    """Item 10's one-line errors leave `deblur` with no arguments showing the help."""
    proc = _process([], tmp_path)
    assert proc.returncode in (0, 2) and b"Usage" in proc.stdout + proc.stderr and b"batch" in proc.stdout + proc.stderr


def test_batch_over_an_empty_folder_says_so(tmp_path, weights):
    """Item 14: an empty folder (or hidden files only) ended silently with an empty table."""
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / ".DS_Store").write_bytes(b"\0")
    _refused(_run("batch", folder, "--weights", weights), EXIT_INPUT, "no images", "empty")
    assert not (tmp_path / "empty_deblurred").exists()


def test_batch_lists_unsupported_files_as_skipped(tmp_path, weights):
    """Item 14: HEIC, AVIF and text files were silently ignored (HEIC and AVIF are read since
    issue 27; JPEG XL and Photoshop files stand in for the formats deblur does not read)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("IMG_1.JXL", "layers.psd", "notes.txt"):
        (folder / name).write_bytes(b"\0" * 16)
    _refused(_run("batch", folder, "--weights", weights), EXIT_INPUT, "no supported images", "3 other file(s)", "IMG_1.JXL")
    _photo(folder)
    before = _tree(folder)
    text = _ok(_run("batch", folder, "--weights", weights))
    for name in ("IMG_1.JXL", "layers.psd", "notes.txt"):
        assert any(name in line and "not a supported image" in line for line in text.splitlines()), text
    assert "skipped (not a supported image)" in text and _tree(folder) == before
    assert [p.name for p in _finals(tmp_path / "in_deblurred")] == ["photo.jpg"]


def test_what_an_output_cannot_keep_is_said(tmp_path, weights):
    """Item 15: alpha written to JPEG/BMP and frames after the first were dropped silently."""
    rgba = tmp_path / "logo.png"
    Image.fromarray(_u8((12, 16, 4))).save(rgba)
    anim = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (10, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(anim, save_all=True, append_images=frames[1:])
    for out in ("logo.jpg", "logo.bmp"):
        text = _ok(_run(rgba, "-o", tmp_path / out, "--weights", weights))
        assert "note:" in text and "transparency" in text and "dropped" in text, text
    text = _ok(_run(rgba, "-o", tmp_path / "logo.webp", "--weights", weights))
    assert "note:" not in text  # WebP keeps alpha: nothing to say
    text = _ok(_run(anim, "--weights", weights))
    assert "first of its 3 frames" in text, text
    batch = tmp_path / "batch"
    batch.mkdir()
    for f in (rgba, anim):
        (batch / f.name).write_bytes(f.read_bytes())
    text = _run("batch", batch, "--weights", weights).output
    assert "anim.gif" in text and "first of its 3 frames" in text, text


def test_library_returns_notes_instead_of_printing(tmp_path, capsys):
    """Item 15: the library hands the notes to the caller; it prints nothing itself."""
    rgba = tmp_path / "a.png"
    Image.fromarray(_u8((6, 8, 4))).save(rgba)
    loaded = image_io.load_image(rgba)
    assert image_io.dropped_on_save(loaded, tmp_path / "a.png") == []
    [note] = image_io.dropped_on_save(loaded, tmp_path / "a.jpg")
    assert "transparency" in note and "JPEG" in note
    assert capsys.readouterr() == ("", "")


def test_hostile_inputs_doc_links_resolve():
    """Item 16: the doc linked to an "Open problems" section that did not exist."""
    text = (REPO / "docs" / "hostile-inputs.md").read_text(encoding="utf-8")
    anchors = {
        "-".join("".join(c for c in line.lstrip("#").strip().lower() if c.isalnum() or c in " -").split())
        for line in text.splitlines()
        if line.startswith("#")
    }
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, links - anchors


# ----------------------------------------------------------------------------- found by the trial


def test_seed_below_zero_is_a_usage_error(tmp_path):
    """make-pairs --seed -1 ended in "internal error: ValueError" (numpy refuses negative seeds)."""
    photos = _sharp_photos(tmp_path / "sharp", n=1)
    _refused(_run("make-pairs", photos, tmp_path / "pairs", "--seed", -1), EXIT_USAGE, "seed")
    assert not (tmp_path / "pairs").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_output_onto_a_fifo_or_device_is_refused_even_with_overwrite(tmp_path, weights):
    """`-o fifo.png --overwrite` replaced the FIFO with a file; as root `-o /dev/null
    --overwrite` would have replaced the device node the same way (rename onto it)."""
    src = _photo(tmp_path / "photos")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    link = tmp_path / "null.png"
    link.symlink_to(os.devnull)
    for target in (fifo, link):
        _refused(_run(src, "-o", target, "--overwrite", "--weights", weights), EXIT_OUTPUT, "not a regular file")
    assert fifo.is_fifo() and link.is_symlink() and not _temps(tmp_path)


def test_earlier_output_folders_are_not_walked_as_photos(tmp_path, weights):
    """`batch in -o in/x`, then `batch in -o in/y`: the second run deblurred in/x's results
    again as if they were photos (it now skips folders marked as deblur's output)."""
    src = tmp_path / "in"
    _photo(src)
    _ok(_run("batch", src, "-o", src / "x", "--weights", weights))
    assert (src / "x" / "photo.jpg").is_file()
    _ok(_run("batch", src, "-o", src / "y", "--weights", weights))
    assert sorted(p.relative_to(src / "y").as_posix() for p in _finals(src / "y")) == [".deblur-output", "photo.jpg"]


def test_ctrl_c_while_writing_one_image_leaves_nothing(tmp_path, weights, monkeypatch):
    """Ctrl-C in the middle of writing: one line, exit 130, no output, no temp file."""
    src = _photo(tmp_path / "photos")
    real = image_io._encode

    def half_then_ctrl_c(samples, tmp, *args):
        real(samples, tmp, *args)
        with open(tmp, "r+b") as f:
            f.truncate(os.path.getsize(tmp) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(image_io, "_encode", half_then_ctrl_c)
    before = _tree(src.parent)
    _refused(_run(src, "--weights", weights), 130, "interrupted")
    assert _tree(src.parent) == before


def test_output_name_over_the_file_name_limit(tmp_path, weights):
    """A 250-byte photo name: `deblur NAME` (adds _deblurred: 264 bytes) was "internal error:
    OSError: File name too long"; a batch in place died in its loader thread with a
    traceback, deblurred nothing, and exited 0."""
    folder = tmp_path / "in"
    folder.mkdir()
    long_src = folder / ("a" * 250 + ".png")
    long_src.write_bytes(_encoded(_u8((12, 16, 3)), "PNG"))
    (folder / "ok.png").write_bytes(_encoded(_u8((12, 16, 3), 1), "PNG"))
    before = _tree(folder)
    # refused while planning: before the weights are read (this file is no weights at all;
    # a weights name that names nothing is said first, since issue 27)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not weights")
    _refused(_run(long_src, "--weights", junk), EXIT_OUTPUT, "File name too long")
    assert _tree(folder) == before
    result = _run("batch", folder, "-o", folder, "--weights", weights)
    _no_traceback(result)
    assert result.exit_code == EXIT_FAILURES, result.output
    assert "Traceback" not in result.output and "File name too long" in result.output
    assert (folder / "ok_deblurred.png").is_file() and not _temps(folder)
    assert all(_sha(folder / name) == sha for name, sha in before.items())


def test_a_failure_in_the_batch_loader_thread_fails_one_file(tmp_path, weights, monkeypatch):
    """Whatever escapes the decode stage is one failed file, not a dead thread and an empty,
    successful batch."""
    from deblur_cli.pipeline import batch_run

    src = tmp_path / "in"
    _batch_inputs(src, n=3)
    real = batch_run.BatchRun.prepare

    def flaky(self, s, d):
        if s.name == "01.png":
            raise RuntimeError("disk went away")
        return real(self, s, d)

    monkeypatch.setattr(batch_run.BatchRun, "prepare", flaky)
    result = _run("batch", src, "-o", tmp_path / "out", "--weights", weights)
    _no_traceback(result)
    assert result.exit_code == EXIT_FAILURES and "disk went away" in result.output, result.output
    assert len(_finals(tmp_path / "out")) == 2


def test_reader_leaving_the_pipe_early_is_quiet(tmp_path):
    """`deblur weights list | head -0`: no traceback or "Exception ignored" when the reader leaves."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "deblur_cli", "weights", "list"],
            stdout=write_end, stderr=subprocess.PIPE, env=_env(tmp_path), cwd=tmp_path, timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode in (0, EXIT_FAILURES) and proc.stderr == b"", proc.stderr


# ============================================================================ open problems, fixed


@pytest.mark.parametrize("command", ["image", "batch", "evaluate", "video"])
@pytest.mark.parametrize("tile", ["1", "63"])
def test_tile_below_the_engines_floor_is_a_usage_error(tmp_path, weights, command, tile):
    """Open problem 1: `--tile 1` was rounded up to 16 px, and a 12-megapixel photo would have
    taken 47,000 passes; the floor is the engine's own smallest tile (engine.MIN_TILE)."""
    from deblur_cli.network.engine import MIN_TILE

    src = _photo(tmp_path / "photos")
    before = _tree(tmp_path / "photos")
    args = {
        "image": [src, "-o", tmp_path / "out.png"],
        "batch": ["batch", src.parent, "-o", tmp_path / "out"],
        "evaluate": ["evaluate", "--data", tmp_path],
        "video": ["video", tmp_path / "clip.mp4", "-o", tmp_path / "out.mp4"],
    }[command]
    _refused(_run(*args, "--weights", weights, "--tile", tile), EXIT_USAGE, "--tile", f"{MIN_TILE}")
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out").exists()
    assert _tree(tmp_path / "photos") == before
    if command == "image":  # the floor itself is accepted
        _ok(_run(*args, "--weights", weights, "--tile", str(MIN_TILE)))
        assert (tmp_path / "out.png").is_file()


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".gif"])
def test_video_of_a_still_image_is_refused(tmp_path, weights, suffix):
    """Open problem 2: `deblur video photo.png` wrote a one-frame video."""
    pytest.importorskip("av")
    src = tmp_path / f"photo{suffix}"
    Image.fromarray(_u8((32, 48, 3))).save(src)
    disguised = tmp_path / "photo.mp4"  # FFmpeg goes by the content, so does the check
    disguised.write_bytes(src.read_bytes())
    for given in (src, disguised):
        before = _sha(given)
        _refused(_run("video", given, "-o", tmp_path / "out.mp4", "--weights", weights), EXIT_INPUT, "is a still image, not a video")
        assert _sha(given) == before
    assert not (tmp_path / "out.mp4").exists() and not _temps(tmp_path)


def test_video_of_an_animated_gif_is_still_planned(tmp_path):
    """The still-image check leaves animated GIFs alone: they are short videos."""
    pytest.importorskip("av")
    from deblur_cli.tools import video

    frames = [Image.fromarray(_u8((32, 48, 3), seed=i)) for i in range(3)]
    src = tmp_path / "anim.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0)
    plan = video.plan_video(src, tmp_path / "out.mp4")
    assert (plan.width, plan.height) == (48, 32)


def test_score_of_a_missing_file_is_an_input_error(tmp_path):
    """Open problem 3: `deblur score missing.png` printed "0 of 0 above threshold" and a
    failed line, exit 1; it now has the one input check of `deblur image`."""
    src = _photo(tmp_path / "photos")
    missing = tmp_path / "missing.png"
    text = _refused(_run("score", missing), EXIT_INPUT, "no such file: ", "missing.png")
    assert text == _refused(_run("image", missing), EXIT_INPUT)  # the same words
    result = _run("score", src, missing)  # checked before any photo is scored: no score line
    _refused(result, EXIT_INPUT, "missing.png")
    assert "photo.jpg" not in result.output
