"""Issue 21 ("100 new hostile cases"), end to end: the silent wrong results, resources, late
failures and rough edges. The data-loss cases are in tests/cli/test_nothing_lost.py;
docs/hostile-inputs.md lists every case with its test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from deblur_cli.errors import EXIT_OK, EXIT_USAGE
from deblur_cli.network.limits import available_cores
from tests.cli.test_hostile import (  # noqa: F401 - _isolated: a private cache, no proxies
    REPO,
    THREAD_COMMANDS,
    _command_args,
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


@pytest.mark.parametrize("command", THREAD_COMMANDS)
def test_more_threads_than_cores_is_a_usage_error(tmp_path, weights, command):
    args = _command_args(command, _photo(tmp_path / "photos" / "p.png"), tmp_path)
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
    # weights that are no weights at all: the output's limit is found before they are read (exit 4, not 5)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not weights")
    before = _tree(tmp_path)
    _refused(_run(src, "-o", tmp_path / "wide.jpg", "--weights", junk), 4, "at most 65,500 px on a side", "write PNG or TIFF")
    assert _tree(tmp_path) == before


# ============================================================================ rough edges


def test_bare_deblur_prints_the_help_once(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deblur_cli"], capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=60)
    text = proc.stdout + proc.stderr
    assert text.count("Usage: deblur") == 1, text
    assert proc.returncode == EXIT_USAGE and "Traceback" not in text


@pytest.mark.parametrize(
    "args, needle",
    [
        pytest.param([""], 'an empty argument ("")', id="deblur-empty"),
        pytest.param(["{photo}", "-o", ""], 'an empty argument ("") after -o', id="empty-o"),
        pytest.param(["{photo}", "--weights", ""], 'an empty argument ("") after --weights', id="empty-weights"),
    ],
)
def test_empty_arguments_are_named(tmp_path, args, needle):
    photo = _photo(tmp_path / "p.png")
    before = _tree(tmp_path)
    _refused(_run(*[str(photo) if a == "{photo}" else a for a in args]), EXIT_USAGE, needle)
    assert _tree(tmp_path) == before


def test_empty_weights_through_the_library_is_a_usage_error():
    from deblur_cli.errors import UsageError
    from deblur_cli.weights import resolve

    with pytest.raises(UsageError, match="empty"):
        resolve("")


def test_a_dangling_output_symlink_is_called_what_it_is(tmp_path, weights):
    photo = _photo(tmp_path / "p.png")
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    _refused(_run(photo, "-o", f"{tmp_path / 'out'}/", "--weights", weights), 4, "is a broken symbolic link")
    _refused(_run("batch", tmp_path, "-o", tmp_path / "out", "--weights", weights), 4, "is a broken symbolic link")


def test_an_unfilled_torch_message_is_not_shown(tmp_path, monkeypatch):
    import torch

    from deblur_cli.errors import WeightsError
    from deblur_cli.weights.formats import read_weights

    def broken(*args, **kwargs):
        raise RuntimeError("PytorchStreamReader failed: expected %ld got %ld1220000000000")

    (tmp_path / "w.pth").write_bytes(b"PK")
    monkeypatch.setattr(torch, "load", broken)
    with pytest.raises(WeightsError) as caught:
        read_weights(tmp_path / "w.pth")
    assert "%ld" not in caught.value.message and "do not match the data" in caught.value.message


def test_batch_says_where_the_results_went(tmp_path, weights):
    src = tmp_path / "photos"
    _photo(src / "a.png")
    text = "".join(_ok(_run("batch", src, "--weights", weights)).splitlines())  # Rich may wrap the long path
    assert f"wrote 1 file(s) to {tmp_path / 'photos_deblurred'}" in text


def test_several_images_are_summed_up_as_deblur_image(tmp_path, weights):
    a, b = _photo(tmp_path / "a.png", 1), _photo(tmp_path / "b.png", 2)
    text = _ok(_run(a, b, "-o", f"{tmp_path / 'out'}/", "--weights", weights))
    assert "deblur image" in text and "deblur batch" not in text
    assert "wrote 2 file(s)" in text


def test_help_names_the_weights_and_the_pixel_limit():
    from deblur_cli.files.bundled import registered_names

    default, names = registered_names()
    text = " ".join(_run("image", "--help").output.replace("│", " ").split())
    assert names and all(n in text for n in names) and f"[default: {default}]" in text
    assert "[default: 200_000_000]" in text


def test_weights_list_fits_80_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = _run("weights", "list")
    assert result.exit_code == EXIT_OK
    lines = result.output.splitlines()
    assert len(lines) <= 15 and "…" not in result.output and all(len(line) <= 80 for line in lines)
    assert "(default)" in result.output


def test_demo_outputs_do_not_dirty_the_checkout():
    proc = subprocess.run(["git", "check-ignore", "sharp.jpg", "docs/sample/blurry_deblurred.jpg"], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.split() == ["sharp.jpg", "docs/sample/blurry_deblurred.jpg"]


def test_readme_gives_the_sample_its_real_size():
    with Image.open(REPO / "docs" / "sample" / "blurry.jpg") as im:
        width, height = im.size
    assert f"resized to {width} x {height} px" in (REPO / "README.md").read_text()
