"""`deblur weights export-onnx`: a dynamic-size graph that matches the engine, written only when checked."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deblur_cli.cli import app
from deblur_cli.errors import EXIT_OUTPUT, EXIT_USAGE, OutputError, UsageError
from deblur_cli.methods import InferenceOptions
from deblur_cli.network.engine import Engine
from deblur_cli.network.model import AttentiveDeblurNet
from deblur_cli.quality.metrics import psnr
from deblur_cli.tools import onnx_export
from deblur_cli.weights import save_weights
from tests.conftest import TINY

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
runner = CliRunner()


@pytest.fixture(scope="module")
def model() -> AttentiveDeblurNet:
    torch.manual_seed(0)
    return AttentiveDeblurNet(TINY)


@pytest.fixture(scope="module")
def exported(model: AttentiveDeblurNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exported once, through the command as a user runs it."""
    folder = tmp_path_factory.mktemp("onnx")
    weights = folder / "tiny.safetensors"
    save_weights(model, weights)
    out = folder / "tiny.onnx"
    result = runner.invoke(app, ["weights", "export-onnx", str(weights), str(out)])
    assert result.exit_code == 0, result.output
    assert "opset 17" in result.output and "dB" in result.output
    return out


def test_graph_has_dynamic_height_and_width_and_the_stated_opset(exported: Path) -> None:
    graph = onnx.load(str(exported))
    onnx.checker.check_model(graph)
    assert any(o.domain in ("", "ai.onnx") and o.version == onnx_export.OPSET for o in graph.opset_import)
    (inp,) = graph.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "blurry" and dims == [1, 3, "height", "width"]


@pytest.mark.parametrize("size", [(16, 16), (45, 130), (96, 64)])
def test_onnxruntime_matches_the_engine_at_any_size(exported: Path, model: AttentiveDeblurNet, size: tuple[int, int]) -> None:
    rgb = onnx_export.sample_image(*size, seed=sum(size))
    reference = Engine(model, InferenceOptions(device="cpu", precision="fp32")).run(rgb)
    got = onnx_export.run_onnx(exported, rgb)
    assert got.shape == rgb.shape
    assert psnr(got, reference) >= 50.0
    assert psnr(got, rgb) < 40.0  # the network did something: not an identity graph


def test_a_failed_check_leaves_nothing(model: AttentiveDeblurNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "compare_with_torch", lambda *a: 31.0)
    with pytest.raises(OutputError, match="31.0 dB"):
        onnx_export.export_onnx(model, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_output_rules(exported: Path, model: AttentiveDeblurNet, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        onnx_export.check_onnx_output(tmp_path / "model.onx", overwrite=False)
    with pytest.raises(OutputError):
        onnx_export.check_onnx_output(exported, overwrite=False)
    before = exported.read_bytes()
    result = runner.invoke(app, ["weights", "export-onnx", "no-such-weights", str(exported)])
    assert result.exit_code != 0 and exported.read_bytes() == before
    weights = tmp_path / "w.safetensors"
    save_weights(model, weights)
    assert runner.invoke(app, ["weights", "export-onnx", str(weights), str(exported)]).exit_code == EXIT_OUTPUT
    assert runner.invoke(app, ["weights", "export-onnx", str(weights), str(tmp_path / "x.txt")]).exit_code == EXIT_USAGE


def test_missing_onnxruntime_is_a_clear_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UsageError, match=r"deblur-cli\[onnx\]"):
        onnx_export.require("onnxruntime")
    result = runner.invoke(app, ["weights", "export-onnx", "lite", str(tmp_path / "m.onnx")])
    assert result.exit_code == EXIT_USAGE and "deblur-cli[onnx]" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_sample_image_is_deterministic_and_textured() -> None:
    a, b = onnx_export.sample_image(40, 56), onnx_export.sample_image(40, 56)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (40, 56, 3) and a.std() > 0.1
