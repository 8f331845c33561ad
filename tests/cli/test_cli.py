"""The command line as a user runs it (Typer's CliRunner, in-process)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from deblur_cli import __version__
from deblur_cli.cli import app
from deblur_cli.errors import EXIT_FAILURES, EXIT_INPUT, EXIT_OUTPUT, EXIT_USAGE, EXIT_WEIGHTS
from deblur_cli.network.model import AttentiveDeblurNet, ModelConfig
from deblur_cli.weights import save_weights

TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)
runner = CliRunner()


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def weights(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_weights(AttentiveDeblurNet(TINY), path)
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.jpg"
    Image.fromarray((rng.random((30, 41, 3)) * 255).astype(np.uint8)).save(path, quality=90)
    return path


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result) -> str:
    text = result.output.strip()
    assert "Traceback" not in text
    assert text.startswith("error:"), text
    return text


def test_version_and_help():
    assert __version__ in _run("--version").output
    result = _run("--help")
    assert result.exit_code == 0 and "batch" in result.output and "attention-map" in result.output


def test_help_does_not_import_torch():
    code = "import sys; from deblur_cli.cli import app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_image_as_first_argument_writes_default_output(photo, weights):
    before = _sha(photo)
    result = _run(photo, "--weights", weights, "--precision", "fp32")
    assert result.exit_code == 0, result.output
    out = photo.with_name("photo_deblurred.jpg")
    with Image.open(out) as im:
        assert im.size == (41, 30)
    assert _sha(photo) == before


def test_explicit_image_command_with_output_and_format(photo, weights, tmp_path):
    target = tmp_path / "sharp.png"
    result = _run("image", photo, "-o", target, "--weights", weights, "--tile", "64", "--tile-overlap", "8")
    assert result.exit_code == 0, result.output
    with Image.open(target) as im:
        assert im.format == "PNG" and im.size == (41, 30)


def test_existing_output_is_not_overwritten_without_flag(photo, weights, tmp_path):
    target = tmp_path / "sharp.jpg"
    target.write_bytes(b"keep me")
    result = _run(photo, "-o", target, "--weights", weights)
    assert result.exit_code == EXIT_OUTPUT and "--overwrite" in _one_line_error(result)
    assert target.read_bytes() == b"keep me"
    assert _run(photo, "-o", target, "--weights", weights, "--overwrite").exit_code == 0
    assert target.read_bytes() != b"keep me"


@pytest.mark.parametrize("content", [None, b"", b"this is not an image", "truncated"])
def test_bad_inputs_give_one_line_errors(tmp_path, weights, content):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        Image.new("RGB", (64, 64), "red").save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif content is not None:
        path.write_bytes(content)
    before = path.read_bytes() if path.exists() else None
    result = _run(path, "--weights", weights)
    assert result.exit_code == EXIT_INPUT
    _one_line_error(result)
    assert not (tmp_path / "bad_deblurred.jpg").exists()
    if before is not None:
        assert path.read_bytes() == before
    assert not list(tmp_path.glob(".deblur-tmp-*"))


def test_output_equal_to_input_is_refused(photo, weights):
    before = _sha(photo)
    result = _run(photo, "-o", photo, "--weights", weights, "--overwrite")
    assert result.exit_code == EXIT_OUTPUT
    assert "input" in _one_line_error(result)
    assert _sha(photo) == before


def test_unwritable_output_folder(photo, weights, tmp_path):
    # a missing folder is made since issue 27 (item 15); one under a regular file cannot be
    (tmp_path / "file.txt").write_text("x")
    result = _run(photo, "-o", tmp_path / "file.txt" / "sub" / "out.jpg", "--weights", weights)
    assert result.exit_code == EXIT_OUTPUT
    _one_line_error(result)


def test_fp16_on_cpu_is_a_usage_error(photo, weights):
    result = _run(photo, "--weights", weights, "--precision", "fp16", "--device", "cpu")
    assert result.exit_code == EXIT_USAGE
    assert "fp16" in _one_line_error(result)


def test_weights_with_flipped_byte_are_refused(tmp_path, photo, weights, monkeypatch):
    from deblur_cli import weights as wmod

    folder = tmp_path / "bundled"
    folder.mkdir()
    blob = bytearray(weights.read_bytes())
    sha = hashlib.sha256(blob).hexdigest()
    blob[-10] ^= 0x01
    (folder / "tiny.safetensors").write_bytes(bytes(blob))
    (folder / "registry.json").write_text(
        '{"default": "tiny", "weights": [{"name": "tiny", "file": "tiny.safetensors", "sha256": "%s", '
        '"config": %s, "licence": "MIT", "provenance": "test", "description": ""}]}'
        % (sha, __import__("json").dumps(TINY.to_dict()))
    )
    monkeypatch.setattr(wmod.registry, "weights_dir", lambda: folder)
    result = _run(photo)
    assert result.exit_code == EXIT_WEIGHTS
    assert "sha256" in _one_line_error(result)
    verify = _run("weights", "verify")
    assert verify.exit_code == EXIT_WEIGHTS and "FAILED" in verify.output


def test_no_trained_weights_is_explained(photo, tmp_path, monkeypatch):
    from deblur_cli import weights as wmod

    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "registry.json").write_text('{"default": null, "weights": []}')
    monkeypatch.setattr(wmod.registry, "weights_dir", lambda: folder)
    result = _run(photo)
    assert result.exit_code == EXIT_WEIGHTS
    assert "no trained weights" in _one_line_error(result)
    assert not photo.with_name("photo_deblurred.jpg").exists()


def _folder(root: Path) -> list[Path]:
    rng = np.random.default_rng(1)
    files = [root / "a.png", root / "sub" / "b.jpg", root / "sub" / "deeper" / "c.png"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)).save(f)
    (root / "sub" / "broken.jpg").write_bytes(b"not an image")
    return files


def test_batch_mirrors_tree_reports_failures_and_resumes(tmp_path, weights):
    src, dst = tmp_path / "in", tmp_path / "out"
    _folder(src)
    result = _run("batch", src, "-o", dst, "--weights", weights)
    assert result.exit_code == EXIT_FAILURES, result.output
    assert "broken.jpg" in result.output
    outs = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert outs == ["a.png", "sub/b.jpg", "sub/deeper/c.png"]
    mtimes = {p: p.stat().st_mtime_ns for p in dst.rglob("*") if p.is_file()}
    (dst / "sub" / "b.jpg").unlink()  # as if the first run had been interrupted
    again = _run("batch", src, "-o", dst, "--weights", weights)
    assert again.exit_code == EXIT_FAILURES
    assert (dst / "sub" / "b.jpg").exists()
    for p, m in mtimes.items():
        if p.name != "b.jpg":
            assert p.stat().st_mtime_ns == m  # skipped, untouched


def test_batch_missing_folder(tmp_path, weights):
    result = _run("batch", tmp_path / "nope", "--weights", weights)
    assert result.exit_code == EXIT_INPUT
    _one_line_error(result)


# ----------------------------------------------------------------------------- one output rule set
# issue 12 items 1, 2, 7, 12, 13 and the disagreeing behaviours of issue 13.


def _photo(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)).save(path, quality=90)
    return path


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("slash", ["", "/"])
def test_output_into_an_existing_folder_keeps_the_input_name(photo, weights, tmp_path, slash):
    # issue 12 item 12 / issue 13: the CLI used to refuse what the pipeline supports.
    folder = tmp_path / "existing"
    folder.mkdir()
    result = _run(photo, "-o", f"{folder}{slash}", "--weights", weights)
    assert result.exit_code == 0, result.output
    assert list(_files(folder)) == ["photo.jpg"]


def test_several_inputs_into_a_new_folder(tmp_path, weights):
    # issue 12 item 13: `deblur a.jpg b.jpg -o outdir/` (the folder is created).
    a, b = _photo(tmp_path / "a.jpg", 1), _photo(tmp_path / "sub" / "b.png", 2)
    before = _files(tmp_path)
    result = _run(a, b, "-o", f"{tmp_path / 'outdir'}/", "--weights", weights)
    assert result.exit_code == 0, result.output
    assert list(_files(tmp_path / "outdir")) == ["a.jpg", "b.png"]
    assert all(_files(tmp_path)[k] == v for k, v in before.items())  # inputs untouched


def test_several_inputs_without_output_like_a_shell_glob(tmp_path, weights):
    # issue 12 item 13: `deblur *.jpg` writes each result next to its input.
    a, b = _photo(tmp_path / "a.jpg", 1), _photo(tmp_path / "b.jpg", 2)
    result = _run(a, b, a, "--weights", weights)  # a repeated input is done once
    assert result.exit_code == 0, result.output
    images = sorted(k for k in _files(tmp_path) if k.endswith(".jpg"))
    assert images == ["a.jpg", "a_deblurred.jpg", "b.jpg", "b_deblurred.jpg"]


def test_options_may_come_before_the_input(photo, weights, tmp_path):
    # issue 12 item 13: `deblur -o x.jpg a.jpg`.
    target = tmp_path / "x.jpg"
    result = _run("-o", target, "--weights", weights, photo)
    assert result.exit_code == 0, result.output
    assert target.is_file()


def test_several_inputs_need_a_folder_and_distinct_names(tmp_path, weights):
    a, b = _photo(tmp_path / "one" / "a.jpg", 1), _photo(tmp_path / "two" / "a.jpg", 2)
    before = _files(tmp_path)
    result = _run(a, b, "-o", tmp_path / "out.jpg", "--weights", weights)
    assert result.exit_code == EXIT_USAGE and "folder" in _one_line_error(result)
    result = _run(a, b, "-o", f"{tmp_path / 'out'}/", "--weights", weights)
    assert result.exit_code == EXIT_OUTPUT and "also the output" in _one_line_error(result)
    assert _files(tmp_path) == before  # nothing written, no folder created


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_batch_output_inside_the_input_tree_never_replaces_photos(tmp_path, weights, overwrite):
    # issue 12 item 2: `deblur batch in -o in/sub --overwrite` replaced in/sub/p1.jpg.
    src = tmp_path / "in"
    _photo(src / "p1.jpg", 1)
    _photo(src / "sub" / "p1.jpg", 2)
    before = _files(src)
    result = _run("batch", src, "-o", src / "sub", "--weights", weights, *overwrite)
    assert result.exit_code == EXIT_OUTPUT and "inside the input folder" in _one_line_error(result)
    assert _files(src) == before
    # a new folder inside the tree is fine, and reruns (resume, --overwrite) still work
    for extra in ([], ["--overwrite"]):
        again = _run("batch", src, "-o", src / "sharp", "--weights", weights, *extra)
        assert again.exit_code == 0, again.output
    assert sorted(k for k in _files(src / "sharp") if not k.startswith(".")) == ["p1.jpg", "sub/p1.jpg"]
    assert {k: v for k, v in _files(src).items() if not k.startswith("sharp/")} == before


def _dataset(root: Path) -> Path:
    for name, seed in (("a", 1), ("b", 2)):
        _photo(root / "blur" / f"{name}.png", seed)
        _photo(root / "sharp" / f"{name}.png", seed + 10)
    return root


@pytest.mark.parametrize("flag", ["--json", "--csv"])
def test_evaluate_reports_never_replace_a_dataset_image(tmp_path, weights, flag):
    # issue 12 item 1: `evaluate --data ds --json ds/sharp/a.png` turned the image into JSON.
    ds = _dataset(tmp_path / "ds")
    before = _files(ds)
    for extra in ([], ["--overwrite"]):
        result = _run("evaluate", "--data", ds, flag, ds / "sharp" / "a.png", "--weights", weights, *extra)
        assert result.exit_code == EXIT_OUTPUT and "input" in _one_line_error(result)
    assert _files(ds) == before
    report = tmp_path / "report.out"
    report.write_text("keep me")
    result = _run("evaluate", "--data", ds, flag, report, "--weights", weights)
    assert result.exit_code == EXIT_OUTPUT and "--overwrite" in _one_line_error(result)
    assert report.read_text() == "keep me"
    assert _run("evaluate", "--data", ds, flag, report, "--weights", weights, "--overwrite").exit_code == 0
    assert report.read_text() != "keep me"


@pytest.mark.parametrize("command", ["image", "batch", "attention-map", "evaluate", "make-pairs"])
def test_unwritable_outputs_are_refused_before_weights_are_loaded(tmp_path, command):
    # issue 12 item 7: every command checks its output location first. The weights file is no
    # weights at all, so reading it would be exit 5; an unwritable output must win with exit 4.
    # (A weights name that names nothing is said first since issue 27: it costs nothing to check.)
    photo = _photo(tmp_path / "in" / "p.jpg")
    ds = _dataset(tmp_path / "ds")
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not weights")
    missing = ["--weights", junk]
    args = {
        "image": [photo, "-o", blocker / "out.jpg", *missing],
        "batch": ["batch", photo.parent, "-o", blocker / "out", *missing],
        "attention-map": ["attention-map", photo, "-o", blocker / "maps", "--blocks", "enc1", "--weights", weights_file(tmp_path)],
        "evaluate": ["evaluate", "--data", ds, "--json", blocker / "r.json", *missing],
        "make-pairs": ["make-pairs", photo.parent, blocker / "pairs"],
    }[command]
    before = _files(tmp_path)
    result = _run(*args)
    assert result.exit_code == EXIT_OUTPUT, result.output
    assert "file.txt" in _one_line_error(result)
    assert _files(tmp_path) == before


def weights_file(tmp_path: Path) -> Path:
    """attention-map needs the architecture to name its outputs, so it gets real weights."""
    path = tmp_path / "w" / "tiny.safetensors"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        save_weights(AttentiveDeblurNet(TINY), path)
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ["image", "attention-map", "evaluate"])
def test_missing_cuda_is_one_exit_code_everywhere(tmp_path, weights, command):
    from deblur_cli.errors import EXIT_RESOURCE

    photo = _photo(tmp_path / "p.jpg")
    args = {
        "image": [photo],
        "attention-map": ["attention-map", photo, "-o", tmp_path / "maps", "--blocks", "enc1"],
        "evaluate": ["evaluate", "--data", _dataset(tmp_path / "ds")],
    }[command]
    result = _run(*args, "--weights", weights, "--device", "cuda")
    assert result.exit_code == EXIT_RESOURCE and "CUDA" in _one_line_error(result)


def test_weights_name_without_safetensors_is_one_exit_code(tmp_path, weights):
    result = _run("weights", "export", tmp_path, tmp_path / "w.pth")
    assert result.exit_code == EXIT_OUTPUT and ".safetensors" in _one_line_error(result)
    assert not (tmp_path / "w.pth").exists()


def test_memory_error_maps_to_the_resource_exit_code():
    import typer

    from deblur_cli.cli.app import handled_errors
    from deblur_cli.errors import EXIT_RESOURCE

    with pytest.raises(typer.Exit) as caught, handled_errors():
        raise MemoryError
    assert caught.value.exit_code == EXIT_RESOURCE


def _entries(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("command", ["image", "batch", "attention-map", "evaluate", "make-pairs"])
def test_unwritable_output_folder_is_probed_before_weights(tmp_path, monkeypatch, command):
    # issue 12 item 7: a folder that exists but cannot be written (read-only mount, ACL, /sys;
    # simulated for root too by denying temp files) fails before any weights are read.
    from types import SimpleNamespace

    from deblur_cli.files import fsutil

    photo = _photo(tmp_path / "in" / "p.jpg")
    ds = _dataset(tmp_path / "ds")
    locked = tmp_path / "locked"
    locked.mkdir()
    junk = tmp_path / "junk.safetensors"  # exists (a weights name must name something), never read
    junk.write_bytes(b"not weights")
    missing = ["--weights", junk]
    args = {
        "image": [photo, "-o", locked / "out.jpg", *missing],
        "batch": ["batch", photo.parent, "-o", locked, *missing],
        "attention-map": ["attention-map", photo, "-o", locked, *missing],
        "evaluate": ["evaluate", "--data", ds, "--json", locked / "r.json", *missing],
        "make-pairs": ["make-pairs", photo.parent, locked / "pairs"],
    }[command]
    before = _entries(tmp_path)

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fsutil, "tempfile", SimpleNamespace(mkstemp=denied))
    result = _run(*args)
    assert result.exit_code == EXIT_OUTPUT, result.output
    assert "Permission denied" in _one_line_error(result)
    assert _entries(tmp_path) == before  # not even a folder was created
