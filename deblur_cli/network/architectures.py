"""The architecture registry: every network class deblur can build, save, load and size.

Each architecture is one :class:`Architecture` record, registered by its own module with
:func:`register` when that module is imported. The modules are named in
:data:`ARCHITECTURE_MODULES` (one line per architecture) and imported on the first lookup,
so importing this registry does not import torch.

Everything outside the architecture's own module asks the registry instead of knowing the
network's inside: weights files (:mod:`deblur_cli.weights.formats`) store the architecture's
name and config and read them back through :meth:`Architecture.read_config` (or, for raw
state dicts without a config, :meth:`Architecture.infer_config`); the engine sizes its tiles
with :meth:`Architecture.bytes_per_pixel`; training builds the network with :func:`build`
and picks presets with :func:`preset`.

The contract an architecture keeps
----------------------------------
- **config**: a frozen dataclass with ``to_dict() -> dict`` (JSON values) and a
  ``size_multiple: int`` attribute or property (input height and width must be multiples
  of it; the engine and the ONNX export pad to it).
- **network**: ``network(config)`` returns a ``torch.nn.Module`` with random weights and a
  ``config`` attribute; ``forward(x)`` takes ``N x 3 x H x W`` float RGB in [0, 1] and
  returns a list of per-scale outputs, coarsest first, the last one ``N x 3 x H x W``
  (a one-scale network returns a list of one).
- **read_config(value, where)**: a config from a stored dict (a weights file's header, the
  registry, a checkpoint), its types and bounds checked; raises ``WeightsError`` naming
  ``where``. Bounds keep a tampered header from asking for hundreds of gigabytes.
- **infer_config(state)**: the config of a raw state dict saved without one; raises
  ``ValueError`` (or ``KeyError``) when the tensors are not this network's.
- **bytes_per_pixel(config, precision)**: peak activation memory of one forward pass per
  input pixel (``precision`` is ``fp32``, ``bf16`` or ``fp16``); tiles are sized by it.
- **describe(config)**: a few words for ``deblur weights list``.
- optional: ``identity_start(model) -> bool`` (training's identity start; False when this
  config cannot start as the identity), ``growable`` (config fields that ``train --init``
  may grow, e.g. ``kernel_size``), ``attention(config)`` (an :class:`AttentionLayout` when
  the network can return attention maps with ``forward(x, return_attention=True)``).

Preset names are unique across architectures, so ``--model NAME`` needs no architecture.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover - typing only; the registry itself does not import torch
    from torch import nn

#: The module of each architecture, imported on the first lookup (it calls :func:`register`).
#: Adding an architecture: one new module, and its name here.
ARCHITECTURE_MODULES: tuple[str, ...] = (
    "deblur_cli.network.attentive",
)
#: Files and checkpoints that name no architecture were written before there was a choice.
DEFAULT_ARCHITECTURE = "attentive"


class NetworkConfig(Protocol):
    """What every architecture's config offers (a frozen dataclass of its own type)."""

    @property
    def size_multiple(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AttentionLayout:
    """Where a network's attention maps are: blocks ``enc1..encN`` and ``dec1..decN`` at each
    of ``scales`` scales (0 coarsest), which sides have spatial maps, whether there is
    channel attention."""

    blocks_per_side: int
    scales: int
    encoder_spatial: bool
    decoder_spatial: bool
    channel: bool


@dataclass(frozen=True)
class Architecture:
    """One registered network: its class, config, presets and what the rest of deblur asks
    of it (see the module docstring for the contract of each field)."""

    name: str  # stored in weights files and checkpoints; lower case
    help: str  # one line
    config_type: type
    network: Callable[[Any], nn.Module]
    presets: Mapping[str, Any]  # name -> config; the first is the default
    read_config: Callable[[Any, str], Any]
    infer_config: Callable[[Mapping[str, Any]], Any]
    bytes_per_pixel: Callable[[Any, str], float]
    describe: Callable[[Any], str]
    identity_start: Callable[[nn.Module], bool] | None = None
    growable: tuple[str, ...] = ()
    attention: Callable[[Any], AttentionLayout] | None = None

    @property
    def default_config(self) -> Any:
        return next(iter(self.presets.values()))


_REGISTRY: dict[str, Architecture] = {}
_loaded = False


def register(arch: Architecture) -> Architecture:
    """Add ``arch`` (called by its module at import). ValueError on a name or preset clash."""
    if arch.name in _REGISTRY and _REGISTRY[arch.name] is not arch:
        raise ValueError(f"architecture {arch.name!r} is registered twice")
    taken = {p: a.name for a in _REGISTRY.values() if a is not arch for p in a.presets}
    clash = sorted(set(arch.presets) & set(taken))
    if clash:
        raise ValueError(f"architecture {arch.name!r}: preset {clash[0]!r} belongs to {taken[clash[0]]!r}")
    if not arch.presets:
        raise ValueError(f"architecture {arch.name!r} has no preset")
    _REGISTRY[arch.name] = arch
    return arch


def _load() -> dict[str, Architecture]:
    global _loaded
    if not _loaded:
        for module in ARCHITECTURE_MODULES:
            importlib.import_module(module)
        _loaded = True
    return _REGISTRY


def names() -> list[str]:
    """The registered architectures, in registration order."""
    return list(_load())


def get(name: str | None) -> Architecture:
    """The architecture called ``name`` (None: :data:`DEFAULT_ARCHITECTURE`); KeyError naming
    the known ones otherwise."""
    registry = _load()
    key = DEFAULT_ARCHITECTURE if name is None else name
    try:
        return registry[key]
    except (KeyError, TypeError):
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(registry)}") from None


def of(config: NetworkConfig) -> Architecture:
    """The architecture whose config type ``config`` is; TypeError for anything else."""
    for arch in _load().values():
        if type(config) is arch.config_type:
            return arch
    raise TypeError(f"{type(config).__name__} is no registered architecture's config")


def config_of(model: nn.Module) -> NetworkConfig:
    """The config of a registered architecture's network (its ``config``); TypeError for
    a module that is not one."""
    config: Any = getattr(model, "config", None)
    of(config)  # TypeError unless it is a registered architecture's config
    return config


def build(config: NetworkConfig) -> nn.Module:
    """The network ``config`` describes, with random weights, on CPU."""
    return of(config).network(config)


def presets() -> dict[str, NetworkConfig]:
    """Every preset of every architecture: name -> config."""
    return {name: config for arch in _load().values() for name, config in arch.presets.items()}


def preset(name: str) -> NetworkConfig:
    """The config of the preset called ``name``; ValueError naming the known ones."""
    found = presets()
    try:
        return found[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; choose from {', '.join(found)}") from None
