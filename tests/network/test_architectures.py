"""The architecture registry: each architecture owns its config, presets, reading back,
bounds and memory model; weights files name their architecture; old files still load."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from deblur_cli.errors import WeightsError
from deblur_cli.network import architectures
from deblur_cli.network.model import AttentiveDeblurNet, ModelConfig
from deblur_cli.weights import load_model, save_weights
from deblur_cli.weights.formats import META_ARCHITECTURE, META_CONFIG, META_FORMAT, read_config


@pytest.mark.parametrize("name", architectures.names())
def test_every_architecture_keeps_the_contract(name):
    arch = architectures.get(name)
    assert arch.help and arch.presets and architectures.of(arch.default_config) is arch
    for preset, config in arch.presets.items():
        assert architectures.preset(preset) is config
        assert arch.read_config(config.to_dict(), "test") == config  # stored and read back
        assert arch.bytes_per_pixel(config, "fp32") > 0 and arch.describe(config)
    small = min(arch.presets.values(), key=lambda c: arch.bytes_per_pixel(c, "fp32"))
    net = architectures.build(small)
    assert net.config == small
    inferred = architectures.build(arch.infer_config(net.state_dict())).state_dict()  # a raw state dict's config
    assert {k: v.shape for k, v in inferred.items()} == {k: v.shape for k, v in net.state_dict().items()}
    m = small.size_multiple
    with torch.no_grad():
        outputs = net(torch.rand(1, 3, m, 2 * m))
    assert isinstance(outputs, list) and outputs[-1].shape == (1, 3, m, 2 * m)


def test_the_default_architecture_infers_its_config_from_tensors(tiny_config):
    arch = architectures.get(None)
    assert arch.name == architectures.DEFAULT_ARCHITECTURE
    assert arch.infer_config(AttentiveDeblurNet(tiny_config).state_dict()) == tiny_config


def test_weights_files_name_their_architecture(tmp_path, tiny_config):
    path = tmp_path / "w.safetensors"
    save_weights(AttentiveDeblurNet(tiny_config), path)
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()[META_ARCHITECTURE] == "attentive"
    assert read_config(path) == tiny_config


def test_files_without_an_architecture_name_still_load(tmp_path, tiny_config):
    net = AttentiveDeblurNet(tiny_config)
    path = tmp_path / "old.safetensors"
    meta = {META_FORMAT: "1", META_CONFIG: json.dumps(tiny_config.to_dict())}  # as written before names
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)
    model, info = load_model(str(path))
    assert info.config == tiny_config and isinstance(model, AttentiveDeblurNet)


def test_an_unknown_architecture_is_a_weights_error(tmp_path, tiny_config):
    net = AttentiveDeblurNet(tiny_config)
    path = tmp_path / "future.safetensors"
    meta = {META_FORMAT: "1", META_CONFIG: json.dumps(tiny_config.to_dict()), META_ARCHITECTURE: "transformer9"}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)
    with pytest.raises(WeightsError, match="transformer9.*upgrade deblur"):
        read_config(path)


def test_presets_are_unique_across_architectures(monkeypatch):
    monkeypatch.setattr(architectures, "_REGISTRY", dict(architectures._load()))
    clash = architectures.Architecture(
        name="other", help="x", config_type=dict, network=lambda c: torch.nn.Identity(),
        presets={"lite": {}}, read_config=lambda v, w: v, infer_config=lambda s: {},
        bytes_per_pixel=lambda c, p: 1.0, describe=lambda c: "",
    )
    with pytest.raises(ValueError, match="preset 'lite' belongs to 'attentive'"):
        architectures.register(clash)


def test_a_config_of_no_architecture_is_refused():
    with pytest.raises(TypeError):
        architectures.of({"widths": [1, 2, 3]})  # type: ignore[arg-type]
    assert architectures.of(ModelConfig()).name == "attentive"
