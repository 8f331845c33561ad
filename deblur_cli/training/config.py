"""Training configuration: one frozen dataclass, recipe presets, TOML + option merging.

Two recipes are registered:

- ``cpu`` (the default): identity start, Charbonnier + FFT loss, AdamW with warm-up and
  cosine decay, gradient clipping, EMA weights, bf16 autocast where the hardware has it.
  It is what trains the bundled weights on a 2-core CPU (see weights/README.md).
- ``paper``: the paper's own recipe (REFERENCE.md): Adam 1e-4, polynomial decay 0.3,
  multi-scale MSE + 2.5 x gradient loss, 256x256 crops, batch 16, Xavier start.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deblur_cli.errors import UsageError, WeightsError
from deblur_cli.network import architectures
from deblur_cli.network.architectures import NetworkConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

LOSSES: tuple[str, ...] = ("charbonnier_fft", "mse_grad", "psnr")
OPTIMIZERS: tuple[str, ...] = ("adamw", "adam")
SCHEDULES: tuple[str, ...] = ("cosine", "poly")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the ``cpu`` recipe.

    Learning rates are peak values; ``warmup_steps`` ramp linearly up to them, then
    ``schedule`` decays over ``horizon`` steps (default: ``steps``) to ``min_lr_ratio`` x peak.
    ``ema_decay`` 0 turns EMA off; otherwise the EMA weights are validated and exported.
    ``synthesis`` holds overrides of :class:`deblur_cli.synthesis.SynthesisConfig` fields
    for on-the-fly blurring of sharp photo folders; its ``preset`` key names a mix of
    :data:`deblur_cli.synthesis.SYNTHESIS_PRESETS` to start from.
    """

    model: NetworkConfig = field(default_factory=lambda: architectures.preset("lite"))
    recipe: str = "cpu"
    steps: int = 100_000
    batch_size: int = 8
    crop: int = 128
    loss: str = "charbonnier_fft"
    fft_weight: float = 0.05
    grad_weight: float = 2.5  # mse_grad only
    charbonnier_eps: float = 1e-3
    optimizer: str = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.9)
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 300
    horizon: int | None = None
    min_lr_ratio: float = 0.01
    lr_power: float = 0.3  # poly schedule only
    grad_clip: float = 0.5  # max global gradient norm; 0 = off
    ema_decay: float = 0.999
    identity_init: bool = True  # with a global residual: zero the output conv, so the untrained network returns its input
    bf16: bool = True  # autocast on CUDA and on CPUs with native bf16
    channels_last: bool = True
    seed: int = 0
    workers: int = 1
    blur_folder: str = "blur"
    synthesis: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 250
    keep_checkpoints: int = 40
    log_every: int = 10
    val_every: int = 250
    val_samples: int = 64
    val_fraction: float = 0.0
    val_data: str | None = None
    val_extra: tuple[str, ...] = ()  # more validation pair folders, logged as <folder name>_psnr

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "crop", "checkpoint_every", "log_every", "val_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop % self.model.size_multiple:
            raise UsageError(f"crop must be a multiple of {self.model.size_multiple}, got {self.crop}")
        if not 0 <= self.val_fraction < 1:
            raise UsageError("val_fraction must be in [0, 1)")
        if self.workers < 0:
            raise UsageError("workers must be >= 0")
        for name, allowed in (("loss", LOSSES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise UsageError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise UsageError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise UsageError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.warmup_steps < 0 or self.grad_clip < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise UsageError("warmup_steps and grad_clip must be >= 0, min_lr_ratio in [0, 1]")
        if self.horizon is not None and self.horizon < 1:
            raise UsageError(f"horizon must be >= 1, got {self.horizon}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "val_extra", tuple(str(v) for v in self.val_extra))
        from deblur_cli.synthesis import expand_synthesis_preset

        object.__setattr__(self, "synthesis", expand_synthesis_preset(self.synthesis))
        self.synthesis_config()  # validate the overrides now, not in a worker

    @property
    def lr_horizon(self) -> int:
        return self.horizon or self.steps

    def synthesis_config(self):
        """The blur model for sharp-photo folders: SynthesisConfig with this run's overrides."""
        from deblur_cli.synthesis import SynthesisConfig

        known = {f.name for f in dataclasses.fields(SynthesisConfig)}
        unknown = set(self.synthesis) - known
        if unknown:
            raise UsageError(f"unknown synthesis options: {', '.join(sorted(unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.synthesis.items()}
        return SynthesisConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = {"architecture": architectures.of(self.model).name, **self.model.to_dict()}
        d["betas"] = list(self.betas)
        d["val_extra"] = list(self.val_extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        recipe = d.get("recipe", "cpu")
        if recipe not in RECIPES:
            raise UsageError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
        merged = {**RECIPES[recipe], **d}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(merged) - known
        if unknown:
            raise UsageError(f"unknown training options: {', '.join(sorted(unknown))}")
        if "model" in merged:
            merged["model"] = model_config_from(merged["model"])
        try:
            return cls(**merged)
        except TypeError as e:
            raise UsageError(f"invalid training options: {e}") from None


#: Recipe presets: values that differ from the dataclass defaults (the ``cpu`` recipe).
RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {},
    "paper": {
        "model": "paper",
        "batch_size": 16,
        "crop": 256,
        "loss": "mse_grad",
        "optimizer": "adam",
        "lr": 1e-4,
        "betas": (0.9, 0.999),
        "schedule": "poly",
        "warmup_steps": 0,
        "min_lr_ratio": 0.0,
        "grad_clip": 0.0,
        "ema_decay": 0.0,
        "identity_init": False,
        "bf16": False,
        "channels_last": False,
        "workers": 2,
        "checkpoint_every": 500,
        "keep_checkpoints": 3,
        "val_every": 500,
        "val_samples": 16,
        "val_fraction": 0.05,
    },
}


def model_config_from(spec: dict[str, Any] | str | NetworkConfig) -> NetworkConfig:
    """A preset name, a dict (an optional ``preset``, else the ``architecture``'s default,
    plus overrides of its fields), or a config."""
    if not isinstance(spec, (str, dict)):
        return spec
    spec = {"preset": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("preset", None)
    architecture = spec.pop("architecture", None)
    try:
        base = architectures.preset(name) if name is not None else architectures.get(architecture).default_config
        arch = architectures.of(base)
    except (KeyError, ValueError) as e:
        raise UsageError(str(e.args[0])) from None
    if architecture is not None and architecture != arch.name:
        raise UsageError(f"model preset {name!r} is a {arch.name} network, not {architecture!r}")
    try:
        return arch.read_config({**base.to_dict(), **spec}, "[model]")
    except WeightsError as e:
        raise UsageError(e.message.replace("invalid architecture config", "invalid model configuration")) from None


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML training config. Top-level keys are TrainConfig fields; ``[model]`` is a table."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot read config file {path}: {e}") from None


def given_settings(file: Path | None = None, **overrides: Any) -> dict[str, Any]:
    """What the user set: the config file's values, then the command-line overrides (None
    values are not set), with no recipe defaults filled in."""
    d: dict[str, Any] = load_config_file(file) if file else {}
    d.update({k: v for k, v in overrides.items() if v is not None})
    return d


def build_config(file: Path | None = None, *, resume_from: Path | None = None, **overrides: Any) -> TrainConfig:
    """Recipe preset < config file < command-line overrides (None values are ignored).
    ``resume_from``: a run folder whose saved config stands in for the recipe (what the
    user gives again must not contradict it, :func:`resumed_config`)."""
    given = given_settings(file, **overrides)
    if resume_from is None:
        return TrainConfig.from_dict(given)
    return resumed_config(saved_config(resume_from), given, f"the run in {resume_from}")[0]


#: What a resumed run cannot change, and why: its checkpoint holds weights of that network,
#: optimiser state of that optimiser, and its data stream (sample k drawn from seed and k,
#: cut to that crop, in batches of that size) is what makes a resumed run equal an
#: uninterrupted one. Every other field (steps, lr and its schedule's shape, clipping,
#: checkpoint and validation cadence, workers, bf16) takes effect from the next step.
RUN_DEFINING: dict[str, str] = {
    **dict.fromkeys(("model", "identity_init"), "the checkpoint holds weights of the run's network"),
    **dict.fromkeys(("recipe",), "a recipe sets the network, the loss and the optimiser of the run"),
    **dict.fromkeys(("optimizer", "betas", "weight_decay", "schedule", "ema_decay"), "the checkpoint holds the run's optimiser and schedule state"),
    **dict.fromkeys(("loss", "fft_weight", "grad_weight", "charbonnier_eps"), "the run is measured by its loss"),
    **dict.fromkeys(("crop", "batch_size", "seed", "synthesis", "blur_folder", "val_fraction"), "a resumed run sees exactly the data of an uninterrupted one"),
}


def _shown(name: str, value: Any) -> str:
    if name == "model":  # its preset's name where it is one
        named = [preset for preset, config in architectures.presets().items() if config == value]
        return named[0] if named else architectures.of(value).describe(value)
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def resumed_config(saved: TrainConfig, given: dict[str, Any], where: str = "the run") -> tuple[TrainConfig, tuple[str, ...]]:
    """The config of a resumed run: ``saved`` with the settings the user ``given`` again
    (:func:`given_settings`). A setting that contradicts the run (:data:`RUN_DEFINING`) is a
    UsageError naming each one; one that may change is applied, with a note saying so."""
    if "recipe" in given and given["recipe"] != saved.recipe:
        raise UsageError(f"recipe {given['recipe']} contradicts {where}, started with recipe {saved.recipe} "
                         f"({RUN_DEFINING['recipe']}); start a new --output, or leave it out to continue")
    cfg = TrainConfig.from_dict({**saved.to_dict(), **given})
    changed = [name for name in given if getattr(cfg, name) != getattr(saved, name)]
    refused = [name for name in changed if name in RUN_DEFINING]
    if refused:
        said = "; ".join(f"{name} {_shown(name, getattr(cfg, name))} (the run's: {_shown(name, getattr(saved, name))}): {RUN_DEFINING[name]}" for name in refused)
        raise UsageError(f"cannot change what defines {where} when resuming: {said}. Leave "
                         f"{'it' if len(refused) == 1 else 'them'} out to continue, or train a new --output (--init takes exported weights)")
    notes = tuple(f"{name} is now {_shown(name, getattr(cfg, name))} (was {_shown(name, getattr(saved, name))})" for name in changed)
    return cfg, notes


def saved_config(run_dir: Path) -> TrainConfig:
    """The config a run folder was started with (train_config.json)."""
    path = Path(run_dir) / "train_config.json"
    if not path.exists():
        raise UsageError(f"nothing to resume in {run_dir}: no train_config.json")
    return TrainConfig.from_dict(json.loads(path.read_text()))


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds, or units h/m/s combined (``9m30s``, ``2h``, ``1h15m``)."""
    import re

    t = text.strip().lower()
    try:
        seconds = float(t)
    except ValueError:
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", t)
        if not t or parts is None:
            raise UsageError(f"cannot read the duration {text!r}; use e.g. 9m30s, 2h or 600") from None
        seconds = sum(float(v) * _UNITS[u] for v, u in zip(parts.groups(), "hms") if v)
    if not seconds > 0:
        raise UsageError(f"the duration must be positive, got {text!r}")
    return seconds
