"""The ``attentive`` architecture's registry record: the paper's network (:mod:`.model`) with
its presets, how its config is read back (types and bounds) or inferred from a raw state
dict, its memory model, its identity start and its attention layout.

See :mod:`deblur_cli.network.architectures` for what each part promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from deblur_cli.errors import WeightsError
from deblur_cli.network.architectures import Architecture, AttentionLayout, register
from deblur_cli.network.model import MODEL_PRESETS, AttentiveDeblurNet, ModelConfig

# Bounds on a config read from a file, checked before anything is built: a tampered header
# (widths=100000 asks for ~360 GB, num_scales=1000 for a 4 * 2**999 size multiple) must
# fail as bad weights, not as an allocation or an internal error. The paper's network is
# widths 32/64/128, 5x5 kernels, 3 blocks, 3 scales, ~6.5 M parameters.
MAX_WIDTH = 2048
MAX_KERNEL = 15
MAX_BLOCKS = 32
MAX_SCALES = 6
MAX_PARAMETERS = 500_000_000  # 2 GB as float32

#: Peak activation bytes per input pixel of one forward pass of the default config
#: (widths 32/64/128), rounded up from VmHWM measurements on CPU with channels_last
#: (fp32: 1245 B/px at 512^2, 814 at 1024^2; bf16: 732 and 623); see bench/speed.py.
#: fp16 on CUDA is assumed like bf16.
_BYTES_PER_PX_DEFAULT = {"fp32": 1100.0, "bf16": 850.0, "fp16": 850.0}
#: The part of it that does not depend on the widths (3- and 6-channel maps at every scale).
_FIXED_BYTES_PER_PX = 100.0


def approx_parameters(config: ModelConfig) -> int:
    """An upper estimate of the network's parameter count (convolutions dominate)."""
    k2 = config.kernel_size**2
    w1, w2, w3 = config.widths
    # per side: one conv per group plus two convs per residual block; decoder mirrors encoder
    convs = sum(w * w * k2 * (1 + 2 * config.blocks_per_group) for w in config.widths)
    transitions = (3 * w1 + w1 * w2 + w2 * w3 + w3 * w2 + w2 * w1 + w1 * 3) * k2 * 4
    per_scale = 2 * convs + transitions
    return per_scale * (1 if config.share_weights else config.num_scales)


def check_bounds(config: ModelConfig, where: str) -> ModelConfig:
    """WeightsError unless ``config`` is an architecture this program could build sensibly."""
    for name in ("kernel_size", "blocks_per_group", "num_scales", "reduction"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise WeightsError(f"{where}: architecture config has {name}={value!r}, not a whole number")
    limits = (
        ("widths", max(config.widths), MAX_WIDTH),
        ("kernel_size", config.kernel_size, MAX_KERNEL),
        ("blocks_per_group", config.blocks_per_group, MAX_BLOCKS),
        ("num_scales", config.num_scales, MAX_SCALES),
        ("reduction", config.reduction, max(MAX_WIDTH, 16)),
    )
    for name, value, limit in limits:
        if value > limit:
            raise WeightsError(f"{where}: architecture config has {name}={value}, over the limit of {limit}; the file is damaged or not deblur's")
    params = approx_parameters(config)
    if params > MAX_PARAMETERS:
        raise WeightsError(
            f"{where}: architecture config describes about {params:,} parameters, over the limit "
            f"of {MAX_PARAMETERS:,}; the file is damaged or not deblur's"
        )
    return config


def _check_types(value: Mapping[str, Any], where: str) -> None:
    """Each stored field has the JSON type of its ModelConfig default (whole numbers, flags, text)."""
    defaults = ModelConfig().to_dict()
    for name, given in value.items():
        if name not in defaults:
            continue  # from_dict names unknown keys
        default = defaults[name]
        if isinstance(default, list):
            ok = isinstance(given, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in given)
        elif isinstance(default, bool):
            ok = isinstance(given, bool)
        elif isinstance(default, int):
            ok = isinstance(given, int) and not isinstance(given, bool)
        else:
            ok = isinstance(given, type(default))
        if not ok:
            raise WeightsError(f"{where}: invalid architecture config: {name}={given!r} has the wrong type")


def read_config(value: Any, where: str) -> ModelConfig:
    """A ModelConfig from a stored dict, within :func:`check_bounds`; WeightsError naming ``where``."""
    if not isinstance(value, dict):
        raise WeightsError(f"{where}: architecture config must be an object")
    _check_types(value, where)
    try:
        config = ModelConfig.from_dict(value)
    except (TypeError, ValueError, OverflowError) as e:
        text = " ".join(str(e).split())[:200]
        raise WeightsError(f"{where}: invalid architecture config: {text}") from None
    return check_bounds(config, where)


def infer_config(state: Mapping[str, torch.Tensor]) -> ModelConfig:
    """The config of a raw state dict (no config stored), from its keys and shapes.

    What shapes cannot tell (serial vs parallel-add, global residual, number of
    shared-weight scales) takes the paper's defaults; files saved by deblur carry
    their config and never come here. KeyError, IndexError, ValueError or StopIteration
    when the tensors are not this network's.
    """
    nets = sorted({int(k.split(".")[1]) for k in state if k.startswith("nets.")})
    pre = "nets.0."
    widths = tuple(int(state[pre + k].shape[0]) for k in ("in_conv.weight", "down2.weight", "down3.weight"))
    blocks = len({k.split(".")[3] for k in state if k.startswith(pre + "enc1.")})
    # attention MLPs: (channels, hidden) pairs; hidden = max(1, channels // reduction)
    pairs = {
        (int(t.shape[1]), int(t.shape[0]))
        for k, t in state.items()
        if k.endswith((".ca.fc1.weight", ".sa.fc1.weight"))
    }
    kwargs: dict[str, Any] = dict(
        widths=widths,
        kernel_size=int(state[pre + "in_conv.weight"].shape[-1]),
        blocks_per_group=blocks,
        encoder_spatial_attention=any(".enc1." in k and ".sa." in k for k in state),
        decoder_spatial_attention=any(".dec1." in k and ".sa." in k for k in state),
        channel_attention=any(".ca." in k for k in state),
    )
    if len(nets) > 1:
        kwargs.update(share_weights=False, num_scales=len(nets))
    if any(".fuse." in k for k in state):
        kwargs["combination"] = "parallel_concat"
    candidates = [16, *range(1, max(widths) + 1)]
    kwargs["reduction"] = next(r for r in candidates if all(max(1, c // r) == h for c, h in pairs))
    return check_bounds(ModelConfig(**kwargs), "state dict")


def bytes_per_pixel(config: ModelConfig, precision: str) -> float:
    """Estimated peak activation memory of one forward pass, in bytes per input pixel.

    Scaled from the measurement of the default config: the peak is dominated by
    a handful of full-resolution feature maps of ``widths[0]`` channels (the
    coarser levels add a quarter and a sixteenth of theirs) plus a fixed part
    (inputs, per-scale outputs, interpolations); it does not grow with the
    number of blocks, because inference mode frees each block's intermediates.
    """

    def level_channels(c: ModelConfig) -> float:
        w1, w2, w3 = c.widths
        return w1 + w2 / 4 + w3 / 16

    ref = _BYTES_PER_PX_DEFAULT[precision]
    scale = level_channels(config) / level_channels(ModelConfig())
    return _FIXED_BYTES_PER_PX + (ref - _FIXED_BYTES_PER_PX) * scale


def describe(config: ModelConfig) -> str:
    k = config.kernel_size
    return f"widths {'/'.join(map(str, config.widths))}, {k}x{k} kernels"


def identity_start(model: torch.nn.Module) -> bool:
    """Zero every output conv so that, with the global residual, the network returns its
    input; False (nothing changed) for a config without the global residual."""
    assert isinstance(model, AttentiveDeblurNet)
    if not model.config.global_residual:
        return False
    with torch.no_grad():
        for net in model.nets:
            conv = net.out_conv
            assert isinstance(conv, torch.nn.Conv2d)
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
    return True


def attention(config: ModelConfig) -> AttentionLayout:
    return AttentionLayout(
        blocks_per_side=config.blocks_per_side,
        scales=config.num_scales,
        encoder_spatial=config.encoder_spatial_attention,
        decoder_spatial=config.decoder_spatial_attention,
        channel=config.channel_attention,
    )


ARCHITECTURE = register(
    Architecture(
        name="attentive",
        help="the paper's attentive multi-scale encoder-decoder (spatial and channel attention)",
        config_type=ModelConfig,
        network=AttentiveDeblurNet,
        presets=MODEL_PRESETS,
        read_config=read_config,
        infer_config=infer_config,
        bytes_per_pixel=bytes_per_pixel,
        describe=describe,
        identity_start=identity_start,
        growable=("kernel_size",),
        attention=attention,
    )
)
