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
from deblur_cli.model import AttentiveDeblurNet, ModelConfig
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
    result = _run("image", photo, "-o", target, "--weights", weights, "--tile", "16", "--tile-overlap", "8")
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
    result = _run(photo, "-o", tmp_path / "missing" / "out.jpg", "--weights", weights)
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
    monkeypatch.setattr(wmod, "weights_dir", lambda: folder)
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
    monkeypatch.setattr(wmod, "weights_dir", lambda: folder)
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
