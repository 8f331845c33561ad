"""The method registry and the one inference-options value (deblur_cli.methods)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deblur_cli import api
from deblur_cli.cli import app
from deblur_cli.errors import EXIT_USAGE, UsageError
from deblur_cli.methods import InferenceOptions, Method, OptionError, get, names, register, registry
from deblur_cli.network.limits import MIN_TILE
from deblur_cli.network.model import AttentiveDeblurNet
from deblur_cli.weights import save_weights


@pytest.fixture
def weights(tmp_path, tiny_config):
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_weights(AttentiveDeblurNet(tiny_config), path)
    return path


def _image(h: int = 20, w: int = 28) -> np.ndarray:
    return np.random.default_rng(0).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize("name", names())
def test_every_registered_method_deblurs_through_the_one_deblurrer(name, weights):
    method = get(name)
    assert method.name == name and method.help and "\n" not in method.help
    d = api.Deblurrer(str(weights) if method.needs_weights else None, method=name, device="cpu", precision="fp32")
    ticks: list[tuple[int, int]] = []
    out = d.run(_image(), progress=lambda done, total: ticks.append((done, total)))
    assert out.shape == (20, 28, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert d.options.method == name and str(d.device) and d.precision
    assert (d.weights_info is not None) == method.needs_weights


def test_network_is_the_default_method():
    assert names()[0] == "network" == InferenceOptions().method
    assert get("network").needs_weights


def test_options_are_checked_once_where_built_and_name_the_field():
    cases = {"tile": dict(tile=MIN_TILE - 1), "tile_overlap": dict(tile_overlap=-1), "threads": dict(threads=0),
             "precision": dict(precision="fp8"), "device": dict(device="gpu"), "method": dict(method="magic")}
    for field, values in cases.items():
        with pytest.raises(OptionError) as caught:
            InferenceOptions(**values)
        assert caught.value.option == field and isinstance(caught.value, UsageError)
    assert "network" in str(pytest.raises(OptionError, InferenceOptions, method="magic").value)


def test_options_are_normalised():
    o = InferenceOptions(device=" CPU ", precision="FP32")
    assert (o.device, o.precision) == ("cpu", "fp32")
    assert InferenceOptions(device="cuda:1").device == "cuda:1"


def test_a_method_without_weights_refuses_them(monkeypatch):
    class Echo:
        device, precision, weights_info = "cpu", "fp32", None

        def run(self, rgb, progress=None):
            return rgb

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._load()))
    register(Method("echo", "returns its input", lambda options: Echo()))
    with pytest.raises(OptionError, match="uses no weights") as caught:
        InferenceOptions(weights="x.safetensors", method="echo")
    assert caught.value.option == "weights"
    options = InferenceOptions(method="echo")
    assert options.located() is options  # nothing to locate
    rgb = _image()
    assert np.array_equal(api.Deblurrer(method="echo").run(rgb), rgb)


def test_register_refuses_bad_names_and_help(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._load()))
    for bad in (Method("Net", "x", lambda o: None), Method("two words", "x", lambda o: None),
                Method("ok", "two\nlines", lambda o: None), Method("network", "again", lambda o: None)):
        with pytest.raises(ValueError):
            register(bad)  # type: ignore[arg-type]


def test_method_option_is_offered_and_checked_by_every_deblurring_command(tmp_path):
    runner = CliRunner()
    for command in ("image", "batch", "evaluate", "video", "serve"):
        page = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output.split())
        assert "--method" in page and "network: the trained attention network" in page, command
    result = runner.invoke(app, ["image", str(tmp_path / "a.png"), "--method", "magic"])
    assert result.exit_code == EXIT_USAGE and "--method" in result.output and "magic" in result.output
