"""`deblur doctor` / deblur_cli.tools.doctor: the bug-report screen."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from deblur_cli import __version__
from deblur_cli.cli import app
from deblur_cli.errors import EXIT_FAILURES, EXIT_WEIGHTS
from deblur_cli.network.engine import cpu_has_native_bf16
from deblur_cli.network.model import AttentiveDeblurNet, ModelConfig
from deblur_cli.tools import doctor
from deblur_cli.weights import registry, save_weights

ROOT = Path(__file__).resolve().parents[2]
TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)
runner = CliRunner()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def own_registry(tmp_path, monkeypatch):
    """A registry of one tiny weights file in tmp_path, used instead of the bundled one."""
    torch.manual_seed(0)
    folder = tmp_path / "weights"
    folder.mkdir()
    path = folder / "tiny.safetensors"
    save_weights(AttentiveDeblurNet(TINY), path)
    entry = {
        "name": "tiny", "file": path.name, "sha256": _sha(path), "licence": "MIT", "provenance": "test",
        "config": {"widths": list(TINY.widths), "kernel_size": 3, "blocks_per_group": 1},
    }
    (folder / "registry.json").write_text(json.dumps({"default": "tiny", "weights": [entry]}))
    monkeypatch.setattr(registry, "weights_dir", lambda: folder)
    return path


def test_report_describes_this_installation(monkeypatch, tmp_path):
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    report = doctor.gather()
    assert report.version == __version__
    assert report.python.startswith(platform.python_version()) and sys.executable in report.python
    assert report.torch == torch.__version__ and report.torch_ok
    assert report.cuda == torch.version.cuda
    assert report.threads == 1
    assert report.cpu_bf16 == cpu_has_native_bf16()
    names = [d.name for d in report.devices]
    assert names[0] == "cpu" and report.devices[0].bf16 == cpu_has_native_bf16()
    expected_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert names[1:] == [f"cuda:{i}" for i in range(expected_gpus)]
    assert report.auto_device == ("cuda:0" if expected_gpus else "cpu")
    assert report.auto_precision == ("fp16" if expected_gpus else ("bf16" if cpu_has_native_bf16() else "fp32"))
    assert report.cache_dir == tmp_path / "cache"
    assert ("DEBLUR_CACHE_DIR", str(tmp_path / "cache")) in report.environment
    assert dict(report.libraries)["typer"] != "not installed"


def test_bundled_default_weights_pass_their_check():
    check = doctor.check_weights()
    registered = json.loads((ROOT / "weights" / "registry.json").read_text())
    assert check.spec == registered["default"]
    assert check.ok and check.path is not None
    assert check.sha256 == _sha(check.path) == check.expected


def test_corrupt_registered_weights_fail(own_registry):
    assert doctor.check_weights().ok
    data = bytearray(own_registry.read_bytes())
    data[-1] ^= 0xFF
    own_registry.write_bytes(bytes(data))
    check = doctor.check_weights()
    assert not check.ok and check.status == "FAILED"
    assert check.sha256 == _sha(own_registry) != check.expected
    assert "sha256" in check.message


def test_unregistered_file_missing_file_and_unfetched_url(own_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    plain = doctor.check_weights(str(own_registry))
    assert plain.ok and plain.expected is None and plain.sha256 == _sha(own_registry)
    missing = doctor.check_weights(str(tmp_path / "nope.safetensors"))
    assert not missing.ok and missing.path is None
    url = doctor.check_weights("http://127.0.0.1:9/w.safetensors")  # never contacted
    assert url.ok and url.path is None and "not downloaded" in url.message


def test_broken_registry_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / "registry.json").write_text("{not json")
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path)
    check = doctor.check_weights()
    assert not check.ok and "registry" in check.message


def test_report_without_torch_still_renders(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    report = doctor.gather()
    assert not report.torch_ok and not report.ok and "cannot be imported" in report.torch
    assert report.devices == () and report.threads is None
    assert not report.weights.ok and "torch" in report.weights.message
    assert dict(report.rows())["torch"].startswith("cannot be imported")


def test_rows_are_single_lines_with_unique_labels():
    rows = doctor.gather().rows()
    labels = [label for label, _ in rows]
    assert len(labels) == len(set(labels))
    assert all("\n" not in value for _, value in rows)
    assert {"deblur", "python", "torch", "threads", "weights", "sha256", "cache"} <= set(labels)


def test_cli_prints_the_report(monkeypatch, tmp_path):
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in (__version__, torch.__version__, platform.python_version(), str(tmp_path / "cache")):
        assert text in result.output
    check = doctor.check_weights()
    assert check.sha256 in result.output


def test_cli_exits_with_the_weights_code_on_corrupt_weights(own_registry):
    own_registry.write_bytes(b"corrupt")
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == EXIT_WEIGHTS
    assert "FAILED" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: weights tiny")


def test_cli_without_torch_exits_nonzero_after_the_report(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == EXIT_FAILURES
    assert "cannot be imported" in result.output and "Traceback" not in result.output
