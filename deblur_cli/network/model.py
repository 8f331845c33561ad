"""The attentive multi-scale encoder-decoder deblurring network.

Architecture facts come from ``../shared/REFERENCE.md`` (the paper plus its
authors' release): three scales with shared weights, an encoder of three groups
(conv + 3 residual attention blocks each), a mirrored decoder with additive
skips, spatial attention (SA) in encoder and decoder, channel attention (CA).

Every variant of the paper's ablations is expressible through
:class:`ModelConfig`. The forward pass can return the attention maps of every
block at every scale without hooks (``return_attention=True``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Combination = Literal["serial", "parallel_add", "parallel_concat"]
COMBINATIONS: tuple[str, ...] = ("serial", "parallel_add", "parallel_concat")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the network. The defaults are the paper's configuration."""

    widths: tuple[int, int, int] = (32, 64, 128)
    kernel_size: int = 5
    blocks_per_group: int = 3
    num_scales: int = 3
    share_weights: bool = True
    encoder_spatial_attention: bool = True
    decoder_spatial_attention: bool = True
    channel_attention: bool = True
    combination: Combination = "serial"
    global_residual: bool = False
    reduction: int = 16

    def __post_init__(self) -> None:
        if len(self.widths) != 3 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be three positive integers, got {self.widths!r}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size}")
        if self.blocks_per_group < 0:
            raise ValueError("blocks_per_group must be >= 0")
        if self.num_scales < 1:
            raise ValueError("num_scales must be >= 1")
        if self.combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {COMBINATIONS}, got {self.combination!r}")
        if self.reduction < 1:
            raise ValueError("reduction must be >= 1")

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (4 inside a scale x 2 per extra scale)."""
        return 4 * 2 ** (self.num_scales - 1)

    @property
    def blocks_per_side(self) -> int:
        return 3 * self.blocks_per_group

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        if "widths" in d:
            d["widths"] = tuple(d["widths"])
        return cls(**d)


#: A lighter variant for CPU users: half width, 3x3 kernels, global residual.
LITE_CONFIG = ModelConfig(widths=(16, 32, 64), kernel_size=3, global_residual=True)

#: The paper's widths with 3x3 kernels and a global residual: trainable on a CPU, and its
#: kernels zero-padded to 5x5 initialise the paper network exactly (``deblur train --init``).
K3_CONFIG = ModelConfig(kernel_size=3, global_residual=True)

#: The presets of this architecture (``attentive``, :mod:`.attentive`): ``paper`` is the
#: paper's network, ``lite`` a CPU variant, ``k3`` above. Looked up through
#: :func:`deblur_cli.network.architectures.preset`, which knows every architecture's.
MODEL_PRESETS: dict[str, ModelConfig] = {"paper": ModelConfig(), "lite": LITE_CONFIG, "k3": K3_CONFIG}


@dataclass
class BlockAttention:
    """Attention produced by one residual attention block at one scale.

    ``spatial``: (N, 1, H, W) in [0, 1] or None when the block has no SA.
    ``channel``: (N, C) in [0, 1] or None when the block has no CA.
    """

    spatial: torch.Tensor | None
    channel: torch.Tensor | None


@dataclass
class ScaleAttention:
    """Attention of every block at one scale, keyed 'enc1'..'enc9', 'dec1'..'dec9'."""

    scale: int  # 0 = coarsest
    blocks: dict[str, BlockAttention] = field(default_factory=dict)


def _hidden(channels: int, reduction: int) -> int:
    return max(1, channels // reduction)


class SpatialAttention(nn.Module):
    """Per-pixel MLP (two 1x1 convs, C -> C/r -> 1, ReLU then sigmoid) giving a 1xHxW map."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x))))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global average pool, C -> C/r -> C MLP, sigmoid; returns (N, C, 1, 1)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(pooled))))


class ResidualAttentionBlock(nn.Module):
    """RAB: x -> conv -> ReLU -> conv -> attention (SA and/or CA) -> + x.

    ``combination`` decides how SA and CA meet when both are on: "serial" (SA
    first, CA pooled over the SA-weighted features, as in the release),
    "parallel_add" (both on the same features, results added) or
    "parallel_concat" (both on the same features, concatenated, 1x1 conv back to C).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        spatial: bool,
        channel: bool,
        combination: Combination,
        reduction: int,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.sa = SpatialAttention(channels, reduction) if spatial else None
        self.ca = ChannelAttention(channels, reduction) if channel else None
        both = spatial and channel
        self.combination = combination if both else "serial"
        self.fuse = (
            nn.Conv2d(2 * channels, channels, 1) if self.combination == "parallel_concat" else None
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, BlockAttention]:
        y = self.conv2(F.relu(self.conv1(x)))
        s = self.sa(y) if self.sa is not None else None
        if self.combination == "serial":
            if s is not None:
                y = y * s
            c = self.ca(y) if self.ca is not None else None
            if c is not None:
                y = y * c
        else:
            assert s is not None and self.ca is not None
            c = self.ca(y)
            if self.combination == "parallel_add":
                y = y * s + y * c
            else:
                assert self.fuse is not None
                y = self.fuse(torch.cat([y * s, y * c], dim=1))
        att = BlockAttention(spatial=s, channel=c.flatten(1) if c is not None else None)
        return x + y, att


class EncoderDecoder(nn.Module):
    """One scale's network: 3 encoder groups, 3 decoder groups, additive skips."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w1, w2, w3 = cfg.widths
        k = cfg.kernel_size
        pad = k // 2

        def blocks(ch: int, spatial: bool) -> nn.ModuleList:
            return nn.ModuleList(
                ResidualAttentionBlock(
                    ch, k, spatial, cfg.channel_attention, cfg.combination, cfg.reduction
                )
                for _ in range(cfg.blocks_per_group)
            )

        enc_sa, dec_sa = cfg.encoder_spatial_attention, cfg.decoder_spatial_attention
        self.in_conv = nn.Conv2d(6, w1, k, padding=pad)
        self.enc1 = blocks(w1, enc_sa)
        self.down2 = nn.Conv2d(w1, w2, k, stride=2, padding=pad)
        self.enc2 = blocks(w2, enc_sa)
        self.down3 = nn.Conv2d(w2, w3, k, stride=2, padding=pad)
        self.enc3 = blocks(w3, enc_sa)
        self.dec3 = blocks(w3, dec_sa)
        self.up3 = nn.ConvTranspose2d(w3, w2, 4, stride=2, padding=1)
        self.dec2 = blocks(w2, dec_sa)
        self.up2 = nn.ConvTranspose2d(w2, w1, 4, stride=2, padding=1)
        self.dec1 = blocks(w1, dec_sa)
        self.out_conv = nn.Conv2d(w1, 3, k, padding=pad)

    @staticmethod
    def _run(
        group: nn.ModuleList, x: torch.Tensor, prefix: str, start: int, sink: dict | None
    ) -> torch.Tensor:
        for i, block in enumerate(group):
            x, att = block(x)
            if sink is not None:
                sink[f"{prefix}{start + i}"] = att
        return x

    def forward(self, x: torch.Tensor, sink: dict | None = None) -> torch.Tensor:
        n = len(self.enc1)
        e1 = self._run(self.enc1, F.relu(self.in_conv(x)), "enc", 1, sink)
        e2 = self._run(self.enc2, F.relu(self.down2(e1)), "enc", 1 + n, sink)
        e3 = self._run(self.enc3, F.relu(self.down3(e2)), "enc", 1 + 2 * n, sink)
        d = self._run(self.dec3, e3, "dec", 1, sink)
        d = F.relu(self.up3(d)) + e2
        d = self._run(self.dec2, d, "dec", 1 + n, sink)
        d = F.relu(self.up2(d)) + e1
        d = self._run(self.dec1, d, "dec", 1 + 2 * n, sink)
        return self.out_conv(d)


class AttentiveDeblurNet(nn.Module):
    """Multi-scale coarse-to-fine deblurring network (SRN-style recurrence over scales).

    Input: blurry RGB, (N, 3, H, W) in [0, 1], H and W multiples of
    ``config.size_multiple``. Output: list of per-scale predictions, coarsest
    first and finest (full resolution) last.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        count = 1 if self.config.share_weights else self.config.num_scales
        self.nets = nn.ModuleList(EncoderDecoder(self.config) for _ in range(count))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases, as in the release."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _net(self, scale: int) -> EncoderDecoder:
        net = self.nets[0 if self.config.share_weights else scale]
        assert isinstance(net, EncoderDecoder)
        return net

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[ScaleAttention]]:
        cfg = self.config
        h, w = x.shape[-2:]
        m = cfg.size_multiple
        if h % m or w % m:
            raise ValueError(f"input size {h}x{w} is not a multiple of {m}; pad it first")
        outputs: list[torch.Tensor] = []
        attention: list[ScaleAttention] = []
        prev: torch.Tensor | None = None
        for s in range(cfg.num_scales):
            factor = 2 ** (cfg.num_scales - 1 - s)
            size = (h // factor, w // factor)
            inp = x if factor == 1 else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            if prev is None:
                prev_up = inp
            else:
                # The release stops gradients through the upsampled previous output.
                prev_up = F.interpolate(prev.detach(), size=size, mode="bilinear", align_corners=False)
            sink: dict | None = {} if return_attention else None
            out = self._net(s)(torch.cat([inp, prev_up], dim=1), sink)
            if cfg.global_residual:
                out = out + inp
            outputs.append(out)
            if sink is not None:
                attention.append(ScaleAttention(scale=s, blocks=sink))
            prev = out
        if return_attention:
            return outputs, attention
        return outputs


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_model(config: ModelConfig | None = None) -> AttentiveDeblurNet:
    return AttentiveDeblurNet(config)
