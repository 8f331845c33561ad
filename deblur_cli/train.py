"""Training: config, deterministic data feeding, checkpoints, resume, DDP.

Contract (see `deblur train --help`): ``train(TrainConfig, data, run_dir, resume)``.
Sample ``k`` of the run (k = global sample counter) is produced by seeding every
RNG from ``(seed, k)`` before the dataset is asked for it, so a resumed run sees
exactly the data an uninterrupted run would have seen.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from deblur_cli.errors import DataError, UsageError
from deblur_cli.fsutil import TMP_PREFIX, atomic_path
from deblur_cli.losses import multiscale_loss
from deblur_cli.model import LITE_CONFIG, AttentiveDeblurNet, ModelConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MODEL_PRESETS: dict[str, ModelConfig] = {"paper": ModelConfig(), "lite": LITE_CONFIG}
CKPT_PREFIX = "step_"
CKPT_SUFFIX = ".pt"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults follow REFERENCE.md (the paper)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 100_000
    batch_size: int = 16
    crop: int = 256
    lr: float = 1e-4
    lr_power: float = 0.3
    grad_weight: float = 2.5
    seed: int = 0
    workers: int = 2
    blur_folder: str = "blur"
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    val_every: int = 500
    val_samples: int = 16
    val_fraction: float = 0.05
    val_data: str | None = None
    bf16: bool = True  # autocast on CUDA only

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "crop", "checkpoint_every", "log_every", "val_every"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop % self.model.size_multiple:
            raise UsageError(f"crop must be a multiple of {self.model.size_multiple}, got {self.crop}")
        if not 0 <= self.val_fraction < 1:
            raise UsageError("val_fraction must be in [0, 1)")
        if self.workers < 0:
            raise UsageError("workers must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UsageError(f"unknown training options: {', '.join(sorted(unknown))}")
        if "model" in d:
            d["model"] = model_config_from(d["model"])
        return cls(**d)


def model_config_from(spec: dict[str, Any] | str | ModelConfig) -> ModelConfig:
    """A preset name, a dict with an optional ``preset`` key plus overrides, or a ModelConfig."""
    if isinstance(spec, ModelConfig):
        return spec
    if isinstance(spec, str):
        spec = {"preset": spec}
    spec = dict(spec)
    preset = spec.pop("preset", "paper")
    if preset not in MODEL_PRESETS:
        raise UsageError(f"unknown model preset {preset!r}; choose from {', '.join(MODEL_PRESETS)}")
    base = MODEL_PRESETS[preset].to_dict()
    base.update(spec)
    try:
        return ModelConfig.from_dict(base)
    except (TypeError, ValueError) as e:
        raise UsageError(f"invalid model configuration: {e}") from None


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML training config. Top-level keys are TrainConfig fields; ``[model]`` is a table."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot read config file {path}: {e}") from None


def build_config(file: Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults < config file < command-line overrides (None values are ignored)."""
    d: dict[str, Any] = load_config_file(file) if file else {}
    d.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(d)


# ----------------------------------------------------------------------------- data


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sample_seed(seed: int, k: int) -> int:
    """A well-mixed 63-bit seed for sample k of a run (SplitMix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + k + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 1


class SeededSamples(Dataset):
    """Wraps a dataset so item ``k`` is drawn with every RNG seeded from (seed, k).

    The wrapped index cycles through a per-epoch permutation, also seeded, so
    the stream of samples is a pure function of k.
    """

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base = base
        self.seed = seed
        self.n = len(base)  # type: ignore[arg-type]
        if self.n == 0:
            raise DataError("the training dataset is empty")

    def __len__(self) -> int:
        return 2**62

    def base_index(self, k: int) -> int:
        epoch, pos = divmod(k, self.n)
        perm = np.random.default_rng(sample_seed(self.seed, -1 - epoch)).permutation(self.n)
        return int(perm[pos])

    def __getitem__(self, k: int):
        _seed_all(sample_seed(self.seed, k))
        return self.base[self.base_index(k)]


class StepSampler(Sampler[int]):
    """Yields the global sample indices this rank needs from ``start_step`` on."""

    def __init__(self, start_step: int, batch: int, rank: int = 0, world: int = 1) -> None:
        self.start_step, self.batch, self.rank, self.world = start_step, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            step += 1

    def __len__(self) -> int:
        return 2**62


def open_datasets(data: Path, cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """Training dataset and an optional validation dataset (--val-data, or a held-out part of --data)."""
    from deblur_cli import datasets

    train_ds = datasets.open_training_dataset(Path(data), crop=cfg.crop, blur_folder=cfg.blur_folder, seed=cfg.seed)
    if cfg.val_data:
        val_pairs = datasets.find_pairs(Path(cfg.val_data), cfg.blur_folder)
        return train_ds, datasets.PairedDataset(val_pairs, crop=None, augment=False)
    if cfg.val_fraction <= 0:
        return train_ds, None
    return split_holdout(train_ds, cfg.val_fraction, cfg.seed)


def split_holdout(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out ``fraction`` of the photos or pairs (at least one, never all) for validation."""
    import copy

    from deblur_cli.datasets import PairedDataset, SharpFolderDataset

    items = ds.photos if isinstance(ds, SharpFolderDataset) else getattr(ds, "pairs", None)
    if items is None or len(items) < 2:
        return ds, None
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = min(len(items) - 1, max(1, round(fraction * len(items))))
    val_items = [items[i] for i in sorted(order[:n_val])]
    train_items = [items[i] for i in sorted(order[n_val:])]
    train_ds, val_ds = copy.copy(ds), copy.copy(ds)
    if isinstance(ds, SharpFolderDataset):
        train_ds.photos, val_ds.photos = train_items, val_items
        train_ds._cache, val_ds._cache = {}, {}
        train_ds._cached_bytes = val_ds._cached_bytes = 0
        val_ds.augment = False
        return train_ds, val_ds
    return PairedDataset(train_items, crop=ds.crop), PairedDataset(val_items, crop=ds.crop, augment=False)


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """Checkpoints in the run folder, newest (highest step) first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"{CKPT_PREFIX}*{CKPT_SUFFIX}") if checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step, reverse=True)


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint file name stands for (``step_00001234.pt`` -> 1234), else None."""
    digits = path.stem[len(CKPT_PREFIX):]
    return int(digits) if path.stem.startswith(CKPT_PREFIX) and digits.isdigit() else None


def _numpy_state() -> dict[str, Any]:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": {"key": list(random.getstate()[1]), "gauss": random.getstate()[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, optimizer, scheduler, cfg: TrainConfig) -> Path:
    """Write checkpoints/step_XXXXXXXX.pt atomically and prune old ones."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{CKPT_PREFIX}{step:08d}{CKPT_SUFFIX}"
    payload = {
        "format": 1,
        "step": step,
        "model": model.state_dict(),
        "config": cfg.model.to_dict(),
        "train_config": json.dumps(cfg.to_dict()),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_state(),
    }
    with atomic_path(final) as tmp:
        torch.save(payload, tmp)
    for old in checkpoint_paths(run_dir)[cfg.keep_checkpoints:]:
        old.unlink(missing_ok=True)
    return final


def load_latest_checkpoint(run_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """Newest checkpoint that loads; a damaged newest one falls back to the one before."""
    for path in checkpoint_paths(run_dir):
        try:
            return torch.load(path, map_location="cpu", weights_only=True), path
        except Exception:  # noqa: BLE001 - any damage means: try the previous one
            continue
    return None


# ----------------------------------------------------------------------------- loop


@dataclass
class TrainEvent:
    """Progress report for the CLI: kind is 'start', 'step', 'val', 'checkpoint' or 'done'."""

    kind: str
    step: int
    total: int
    loss: float | None = None
    lr: float | None = None
    steps_per_s: float | None = None
    val_psnr: float | None = None
    val_input_psnr: float | None = None
    path: Path | None = None
    message: str = ""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    last_loss: float | None
    val_psnr: float | None


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("CUDA was requested but is not available; use --device cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    return torch.device(name)


def _lr_lambda(total: int, power: float) -> Callable[[int], float]:
    return lambda step: max(0.0, 1.0 - step / total) ** power


@torch.no_grad()
def validate(model: AttentiveDeblurNet, val_ds: Dataset, device: torch.device, limit: int) -> tuple[float, float]:
    """Mean PSNR (dB, RGB in [0,1], no border crop) of outputs and of the blurry inputs."""
    from deblur_cli.metrics import psnr

    was_training = model.training
    model.eval()
    outs, ins = [], []
    m = model.config.size_multiple
    for i in range(min(limit, len(val_ds))):  # type: ignore[arg-type]
        blur, sharp = val_ds[i]
        h, w = (blur.shape[-2] // m) * m, (blur.shape[-1] // m) * m
        blur, sharp = blur[:, :h, :w], sharp[:, :h, :w]
        pred = model(blur[None].to(device))[-1][0].clamp(0, 1).float().cpu()
        outs.append(psnr(pred, sharp))
        ins.append(psnr(blur, sharp))
    model.train(was_training)
    finite = lambda xs: [min(x, 100.0) for x in xs]  # noqa: E731 - identical crops give inf
    return float(np.mean(finite(outs))), float(np.mean(finite(ins)))


def _restore(ckpt: dict[str, Any], model, optimizer, scheduler) -> int:
    model.load_state_dict(ckpt["model"], strict=True)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    rng = ckpt["rng"]
    torch.set_rng_state(rng["torch"])
    n = rng["numpy"]
    np.random.set_state(("MT19937", np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate((3, tuple(rng["python"]["key"]), rng["python"]["gauss"]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(ckpt["step"])


def _trim_log(log_path: Path, step: int) -> None:
    """Drop log lines past the resumed step so the loss curve stays continuous."""
    if not log_path.exists():
        return
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    with atomic_path(log_path) as tmp:
        tmp.write_text("".join(k + "\n" for k in kept))


def prepare_run_dir(run_dir: Path, cfg: TrainConfig, resume: bool) -> TrainConfig:
    """Create the run folder or, on resume, read its saved config (steps may be extended)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "train_config.json"
    if resume:
        if not cfg_path.exists():
            raise UsageError(f"nothing to resume in {run_dir}: no train_config.json")
        saved = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
        if cfg.steps != saved.steps:
            saved = dataclasses.replace(saved, steps=cfg.steps)
        cfg = saved
    elif checkpoint_paths(run_dir):
        raise UsageError(f"{run_dir} already holds checkpoints; pass --resume to continue or choose a new --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (run_dir / "checkpoints").glob(f"{TMP_PREFIX}*"):  # left by a run killed mid-save
        stale.unlink(missing_ok=True)
    with atomic_path(cfg_path) as tmp:
        tmp.write_text(json.dumps(cfg.to_dict(), indent=2))
    return cfg


def train(
    cfg: TrainConfig,
    data: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: Callable[[TrainEvent], None] | None = None,
    stop_after: int | None = None,
) -> tuple[TrainResult, AttentiveDeblurNet]:
    """Train (or resume) a run. ``stop_after`` ends early after that many steps of this call."""
    notify = progress or (lambda e: None)
    dev0 = _pick_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    dd = _init_distributed(dev0)
    dev = _pick_device(device, dd.local_rank)
    run_dir = Path(run_dir)
    if dd.main:
        cfg = prepare_run_dir(run_dir, cfg, resume)
    if dd.world > 1:
        dist.barrier()
        if not dd.main:
            cfg = TrainConfig.from_dict(json.loads((run_dir / "train_config.json").read_text()))

    _seed_all(cfg.seed)
    model = AttentiveDeblurNet(cfg.model).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.steps, cfg.lr_power))
    step = 0
    ckpt_path: Path | None = None
    if resume:
        found = load_latest_checkpoint(run_dir)
        if found is not None:
            step = _restore(found[0], model, optimizer, scheduler)
            ckpt_path = found[1]
            if dd.main:
                _trim_log(run_dir / "log.jsonl", step)
    net: torch.nn.Module = model
    if dd.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )

    train_ds, val_ds = open_datasets(data, cfg)
    loader = DataLoader(
        SeededSamples(train_ds, cfg.seed),
        batch_size=cfg.batch_size,
        sampler=StepSampler(step, cfg.batch_size, dd.rank, dd.world),
        num_workers=cfg.workers,
        persistent_workers=False,
        pin_memory=dev.type == "cuda",
        drop_last=True,
    )
    notify(TrainEvent("start", step, cfg.steps, path=run_dir, message=f"device {dev}, {dd.world} process(es)"))
    last_loss, val_psnr = None, None
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    use_bf16 = cfg.bf16 and dev.type == "cuda"
    log = open(run_dir / "log.jsonl", "a") if dd.main else None
    t_last, s_last = time.perf_counter(), step
    try:
        batches = iter(loader)
        model.train()
        while step < end:
            blur, sharp = next(batches)
            blur, sharp = blur.to(dev, non_blocking=True), sharp.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                outputs = net(blur)
            loss = multiscale_loss(outputs, sharp, cfg.grad_weight)
            if not torch.isfinite(loss):
                raise DataError(f"training diverged at step {step + 1} (loss {loss.item()}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            last_loss = float(loss.detach())
            if step % cfg.log_every == 0 or step == end:
                now = time.perf_counter()
                sps = (step - s_last) / max(now - t_last, 1e-9)
                t_last, s_last = now, step
                lr = scheduler.get_last_lr()[0]
                if log:
                    log.write(json.dumps({"step": step, "loss": last_loss, "lr": lr, "steps_per_s": sps, "time": time.time()}) + "\n")
                    log.flush()
                notify(TrainEvent("step", step, cfg.steps, loss=last_loss, lr=lr, steps_per_s=sps))
            if dd.main and val_ds is not None and (step % cfg.val_every == 0 or step == end):
                val_psnr, val_in = validate(model, val_ds, dev, cfg.val_samples)
                if log:
                    log.write(json.dumps({"step": step, "val_psnr": val_psnr, "val_input_psnr": val_in}) + "\n")
                    log.flush()
                notify(TrainEvent("val", step, cfg.steps, val_psnr=val_psnr, val_input_psnr=val_in))
            if dd.main and (step % cfg.checkpoint_every == 0 or step == end):
                ckpt_path = save_checkpoint(run_dir, step, model, optimizer, scheduler, cfg)
                notify(TrainEvent("checkpoint", step, cfg.steps, path=ckpt_path))
    finally:
        if log:
            log.close()
    if dd.world > 1:
        dist.barrier()
    notify(TrainEvent("done", step, cfg.steps, loss=last_loss, path=ckpt_path))
    return TrainResult(run_dir, step, ckpt_path, last_loss, val_psnr), model


def export_weights(
    run_dir: Path, out: Path, dtype: torch.dtype | None = None, step: int | None = None
) -> tuple[Path, int, str]:
    """Write a checkpoint's model (the newest loadable one, or that of ``step``) as a
    safetensors weights file. Returns (path, step, sha256)."""
    from deblur_cli.errors import WeightsError
    from deblur_cli.weights import save_weights

    run_dir = Path(run_dir)
    if step is None:
        found = load_latest_checkpoint(run_dir)
    else:
        path = next((p for p in checkpoint_paths(run_dir) if checkpoint_step(p) == step), None)
        found = None if path is None else (torch.load(path, map_location="cpu", weights_only=True), path)
    if found is None:
        which = "loadable checkpoint" if step is None else f"checkpoint of step {step}"
        raise WeightsError(f"no {which} in {run_dir / 'checkpoints'}")
    ckpt, path = found
    model = AttentiveDeblurNet(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"], strict=True)
    meta = {"deblur.step": str(ckpt["step"]), "deblur.checkpoint": path.name}
    sha = save_weights(model, Path(out), metadata=meta, dtype=dtype)
    return Path(out), int(ckpt["step"]), sha
