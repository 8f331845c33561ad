"""Issue 21 ("100 new hostile cases"), end to end: the silent wrong results, resources, late
failures and rough edges. The data-loss cases are in tests/cli/test_nothing_lost.py;
docs/hostile-inputs.md lists every case with its test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deblur_cli.errors import EXIT_INPUT, EXIT_OK, EXIT_USAGE
from deblur_cli.network.limits import available_cores
from tests.cli.test_hostile import (  # noqa: F401 - _isolated: a private cache, no proxies
    REPO,
    _encoded,
    _env,
    _isolated,
    _ok,
    _refused,
    _run,
    _tree,
    _u8,
    identity,
    weights,
)


def _photo(path: Path, seed: int = 0, size=(40, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".tif": "TIFF", ".webp": "WEBP"}.get(path.suffix, "JPEG")
    path.write_bytes(_encoded(_u8((*size, 3), seed), fmt))
    return path


# ============================================================================ item 7


def test_stdin_without_o_has_no_place_for_its_result(tmp_path, weights):
    src = _photo(tmp_path / "img.jpg")
    before = set(os.listdir("/dev"))
    with open(src, "rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "deblur_cli", "/dev/stdin", "--weights", str(weights)],
            stdin=stdin, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
        )
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "not a file in a folder of yours" in proc.stderr and "-o" in proc.stderr
    assert set(os.listdir("/dev")) == before
    with open(src, "rb") as stdin:  # with -o it works
        proc = subprocess.run(
            [sys.executable, "-m", "deblur_cli", "/dev/stdin", "-o", "out.png", "--weights", str(weights)],
            stdin=stdin, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
        )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert (tmp_path / "out.png").is_file()


@pytest.mark.parametrize("command", ["batch", "video"])
def test_system_folders_need_o_for_other_commands_too(tmp_path, weights, command):
    args = ["batch", "/proc/self/fd"] if command == "batch" else ["video", "/dev/stdin"]
    if command == "video":
        pytest.importorskip("av")
    result = _run(*args, "--weights", weights)
    _refused(result, EXIT_USAGE, "not a file in a folder of yours")


# ============================================================================ item 10


@pytest.mark.parametrize("command", ["image", "batch", "attention-map", "evaluate", "video"])
def test_more_threads_than_cores_is_a_usage_error(tmp_path, weights, command):
    src = _photo(tmp_path / "photos" / "p.png")
    args = {
        "image": [src],
        "batch": ["batch", src.parent],
        "attention-map": ["attention-map", src],
        "evaluate": ["evaluate", "--data", tmp_path],
        "video": ["video", tmp_path / "clip.mp4"],
    }[command]
    before = _tree(tmp_path)
    too_many = str(available_cores() + 1)
    _refused(_run(*args, "--weights", weights, "--threads", too_many), EXIT_USAGE, "--threads", "CPU cores")
    assert _tree(tmp_path) == before


# ============================================================================ item 5


def test_what_metadata_an_output_cannot_hold_is_a_note(tmp_path, weights):
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[270] = "x" * 70_000
    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    src = tmp_path / "big-exif.png"
    Image.fromarray(_u8((24, 32, 3))).save(src, exif=exif.tobytes(), pnginfo=info)
    text = " ".join(_ok(_run(src, "-o", tmp_path / "out.jpg", "--weights", weights)).split())
    assert "note: " in text and "its EXIF (" in text and "at most 65,533 bytes" in text
    assert "gamma (gAMA) is dropped: JPEG cannot store it" in text
    text = " ".join(_ok(_run(src, "-o", tmp_path / "out.png", "--weights", weights)).split())
    assert "note:" not in text


def test_lossless_webp_in_gives_lossless_webp_out(tmp_path, weights):
    from deblur_cli.files.metadata import _webp_is_lossless

    src = tmp_path / "p.webp"
    Image.fromarray(_u8((24, 32, 3))).save(src, lossless=True)
    _ok(_run(src, "--weights", weights))
    assert _webp_is_lossless(tmp_path / "p_deblurred.webp")


# ============================================================================ item 11


def test_a_jpeg_too_wide_fails_while_planning(tmp_path, weights):
    src = tmp_path / "wide.png"
    Image.new("L", (70_000, 2)).save(src)
    before = _tree(tmp_path)
    # missing weights: the output's limit is found first (exit 4, not 5), in seconds
    _refused(_run(src, "-o", tmp_path / "wide.jpg", "--weights", tmp_path / "missing.safetensors"), 4, "at most 65,500 px on a side", "write PNG or TIFF")
    assert _tree(tmp_path) == before
