from __future__ import annotations

import itertools

import pytest
import torch

from deblur_cli.network.model import (
    COMBINATIONS,
    LITE_CONFIG,
    AttentiveDeblurNet,
    ModelConfig,
    count_parameters,
)


def test_default_parameter_count_matches_paper():
    assert count_parameters(AttentiveDeblurNet()) == 6_907_057


def _expected_params(cfg: ModelConfig) -> int:
    """Independent count from the architecture description in REFERENCE.md."""
    k = cfg.kernel_size
    conv = lambda i, o, k: i * o * k * k + o  # noqa: E731
    total = conv(6, cfg.widths[0], k) + conv(cfg.widths[0], cfg.widths[1], k) + conv(cfg.widths[1], cfg.widths[2], k)
    total += conv(cfg.widths[2], cfg.widths[1], 4) + conv(cfg.widths[1], cfg.widths[0], 4) + conv(cfg.widths[0], 3, k)
    for side_sa in (cfg.encoder_spatial_attention, cfg.decoder_spatial_attention):
        for c in cfg.widths:
            h = max(1, c // cfg.reduction)
            rab = 2 * conv(c, c, k)
            if side_sa:
                rab += conv(c, h, 1) + conv(h, 1, 1)
            if cfg.channel_attention:
                rab += conv(c, h, 1) + conv(h, c, 1)
            if side_sa and cfg.channel_attention and cfg.combination == "parallel_concat":
                rab += conv(2 * c, c, 1)
            total += cfg.blocks_per_group * rab
    return total * (1 if cfg.share_weights else cfg.num_scales)


VARIANTS = [
    ModelConfig(),
    LITE_CONFIG,
    ModelConfig(share_weights=False),
    ModelConfig(encoder_spatial_attention=False, decoder_spatial_attention=False, channel_attention=False),
    ModelConfig(encoder_spatial_attention=False),
    ModelConfig(decoder_spatial_attention=False),
    ModelConfig(channel_attention=False),
    *[ModelConfig(combination=c) for c in COMBINATIONS],
    ModelConfig(global_residual=True),
]


@pytest.mark.parametrize("cfg", VARIANTS, ids=lambda c: repr(c)[12:60])
def test_parameter_count_of_every_variant(cfg):
    assert count_parameters(AttentiveDeblurNet(cfg)) == _expected_params(cfg)


SMALL = dict(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)
SMALL_VARIANTS = [
    ModelConfig(**SMALL, share_weights=s, encoder_spatial_attention=e, decoder_spatial_attention=d,
                channel_attention=c, combination=comb, global_residual=g)
    for s, e, d, c, comb, g in itertools.product(
        (True, False), (True, False), (True, False), (True, False), COMBINATIONS, (True, False))
    if comb == "serial" or (e and d and c)
]


@pytest.mark.parametrize("cfg", SMALL_VARIANTS)
def test_output_shapes_every_variant(cfg):
    model = AttentiveDeblurNet(cfg)
    x = torch.rand(2, 3, 32, 48)
    outs, att = model(x, return_attention=True)
    assert [o.shape for o in outs] == [(2, 3, 8, 12), (2, 3, 16, 24), (2, 3, 32, 48)]
    assert len(att) == cfg.num_scales
    names = [f"enc{i}" for i in range(1, 4)] + [f"dec{i}" for i in range(1, 4)]
    assert sorted(att[-1].blocks) == sorted(names)
    for name, block in att[-1].blocks.items():
        has_sa = cfg.encoder_spatial_attention if name.startswith("enc") else cfg.decoder_spatial_attention
        assert (block.spatial is not None) == has_sa
        assert (block.channel is not None) == cfg.channel_attention


def test_attention_maps_shapes_and_range():
    cfg = ModelConfig(widths=(16, 16, 16), kernel_size=3)
    outs, att = AttentiveDeblurNet(cfg)(torch.rand(1, 3, 64, 32), return_attention=True)
    fine = att[-1].blocks
    assert len(fine) == 18
    assert fine["enc1"].spatial.shape == (1, 1, 64, 32)
    assert fine["enc5"].spatial.shape == (1, 1, 32, 16)
    assert fine["enc9"].spatial.shape == (1, 1, 16, 8)
    assert fine["dec1"].spatial.shape == (1, 1, 16, 8)
    assert fine["dec9"].channel.shape == (1, 16)
    for b in fine.values():
        assert b.spatial.min() >= 0 and b.spatial.max() <= 1


def test_input_must_be_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of 16"):
        AttentiveDeblurNet(ModelConfig(**SMALL))(torch.rand(1, 3, 20, 32))


def test_global_residual_with_zero_output_conv_is_identity():
    model = AttentiveDeblurNet(ModelConfig(**SMALL, global_residual=True))
    torch.nn.init.zeros_(model.nets[0].out_conv.weight)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(model(x)[-1], x)


def test_config_round_trip_and_validation():
    cfg = ModelConfig(widths=(8, 16, 32), combination="parallel_add")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig(kernel_size=4)
    with pytest.raises(ValueError):
        ModelConfig(combination="sideways")
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"width": 3})


def test_presets_live_next_to_the_model() -> None:
    from deblur_cli.network.architectures import preset
    from deblur_cli.network.model import LITE_CONFIG, MODEL_PRESETS, ModelConfig

    assert MODEL_PRESETS["paper"] == ModelConfig() and MODEL_PRESETS["lite"] == LITE_CONFIG
    assert preset("lite") is LITE_CONFIG
    with pytest.raises(ValueError, match="unknown model preset .huge.*paper"):
        preset("huge")
