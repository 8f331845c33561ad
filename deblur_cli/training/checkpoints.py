"""Checkpoints of a run folder (save, load, prune), weight export, and initial weights.

A checkpoint ``RUN/checkpoints/step_XXXXXXXX.pt`` holds the model, the EMA model (when
EMA is on), optimizer, scheduler and every RNG state, so a resumed run continues exactly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deblur_cli.errors import UsageError, WeightsError
from deblur_cli.files.fsutil import atomic_path, make_folder
from deblur_cli.network import architectures
from deblur_cli.training.config import TrainConfig

CKPT_PREFIX = "step_"
CKPT_SUFFIX = ".pt"


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """Checkpoints in the run folder, newest (highest step) first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    steps = {p: checkpoint_step(p) for p in folder.glob(f"{CKPT_PREFIX}*{CKPT_SUFFIX}")}
    return sorted((p for p, s in steps.items() if s is not None), key=lambda p: steps[p] or 0, reverse=True)


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint file name stands for (``step_00001234.pt`` -> 1234), else None."""
    digits = path.stem[len(CKPT_PREFIX):]
    return int(digits) if path.stem.startswith(CKPT_PREFIX) and digits.isdigit() else None


def _numpy_state() -> dict[str, Any]:
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"keys": np.asarray(keys).tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}


def rng_state() -> dict[str, Any]:
    """Every global RNG's state, in a form torch.load(weights_only=True) accepts."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": {"key": list(random.getstate()[1]), "gauss": random.getstate()[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    n = rng["numpy"]
    np.random.set_state(("MT19937", np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate((3, tuple(rng["python"]["key"]), rng["python"]["gauss"]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], cfg: TrainConfig) -> Path:
    """Write checkpoints/step_XXXXXXXX.pt atomically and prune all but the newest ``keep_checkpoints``.

    ``state`` holds ``model``, ``optimizer``, ``scheduler``, optional ``ema`` (state dicts) and
    ``train_seconds`` (wall-clock seconds of training so far, across resumes).
    """
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{CKPT_PREFIX}{step:08d}{CKPT_SUFFIX}"
    payload = {
        "format": 2,
        "step": step,
        "architecture": architectures.of(cfg.model).name,
        "config": cfg.model.to_dict(),
        "train_config": json.dumps(cfg.to_dict()),
        "rng": rng_state(),
        **state,
    }
    with atomic_path(final, overwrite=True) as tmp:  # the run's own files
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


def load_checkpoint(run_dir: Path, step: int | None = None) -> tuple[dict[str, Any], Path]:
    """The newest loadable checkpoint, or that of ``step``; WeightsError when there is none."""
    if step is None:
        found = load_latest_checkpoint(run_dir)
    else:
        path = next((p for p in checkpoint_paths(run_dir) if checkpoint_step(p) == step), None)
        found = None if path is None else (torch.load(path, map_location="cpu", weights_only=True), path)
    if found is None:
        which = "loadable checkpoint" if step is None else f"checkpoint of step {step}"
        raise WeightsError(f"no {which} in {Path(run_dir) / 'checkpoints'}")
    return found


def export_weights(
    run_dir: Path,
    out: Path,
    dtype: torch.dtype | None = None,
    step: int | None = None,
    raw: bool = False,
    overwrite: bool = False,
) -> tuple[Path, int, str]:
    """Write a checkpoint's weights (its EMA weights when it has them, unless ``raw``) as a
    safetensors file usable with ``--weights``. Returns (path, step, sha256)."""
    from deblur_cli.weights import save_weights

    ckpt, path = load_checkpoint(Path(run_dir), step)
    which = "model" if raw or "ema" not in ckpt else "ema"
    where = f"checkpoint {path}"
    model = architectures.build(architectures.get(ckpt.get("architecture")).read_config(ckpt["config"], where))
    model.load_state_dict(ckpt["model"] if which == "model" else ckpt["ema"]["model"], strict=True)
    meta = {"deblur.step": str(ckpt["step"]), "deblur.checkpoint": path.name, "deblur.weights": which}
    make_folder(Path(out).parent)  # a missing folder of the output is made, as for every output file
    sha = save_weights(model, Path(out), metadata=meta, dtype=dtype, overwrite=overwrite)
    return Path(out), int(ckpt["step"]), sha


def identity_start(model: torch.nn.Module, required: bool = True) -> bool:
    """Make the untrained network return its input, as its architecture knows how (the
    attentive network: output convs zeroed, with the global residual). Where it cannot:
    UsageError when ``required``, else False."""
    arch = architectures.of(architectures.config_of(model))
    if arch.identity_start is not None and arch.identity_start(model):
        return True
    if required:
        raise UsageError("identity_init needs a model with global_residual = true")
    return False


def _fit_kernel(src: torch.Tensor, shape: torch.Size, key: str) -> torch.Tensor:
    """``src`` as-is, or a smaller odd conv kernel zero-padded at its centre to ``shape``.

    Zero-padding a k x k kernel to K x K ("same" padding both) computes the same function.
    """
    if src.shape == shape:
        return src
    same_channels = src.dim() == 4 and src.shape[:2] == shape[:2]
    if not same_channels or src.shape[2] > shape[2] or src.shape[3] > shape[3]:
        raise WeightsError(f"initial weights do not fit this model: {key} is {tuple(src.shape)}, need {tuple(shape)}")
    dh, dw = shape[2] - src.shape[2], shape[3] - src.shape[3]
    return F.pad(src, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


def load_initial_weights(model: torch.nn.Module, spec: str) -> str:
    """Copy weights ``spec`` (a registered name, file or URL) into ``model``, zero-padding smaller
    kernels into larger ones. Every tensor must be present and fit. Returns a description."""
    from deblur_cli.weights import load_state

    state, info = load_state(spec)
    arch = architectures.of(architectures.config_of(model))
    if architectures.of(info.config) is not arch:
        raise WeightsError(f"initial weights {spec} are a {architectures.of(info.config).name} network, not {arch.name}")
    mine, given = architectures.config_of(model).to_dict(), info.config.to_dict()
    ours = {**mine, **dict.fromkeys(arch.growable)}
    theirs = {**given, **dict.fromkeys(arch.growable)}
    if ours != theirs or any(given[k] > mine[k] for k in arch.growable):
        diff = sorted(k for k in ours if ours[k] != theirs[k]) or list(arch.growable)
        raise WeightsError(f"initial weights {spec} are another architecture ({', '.join(diff)} differ); "
                           "pick the matching --model or [model] table")
    target = model.state_dict()
    missing = sorted(set(target) - set(state))
    extra = sorted(set(state) - set(target))
    if missing or extra:
        raise WeightsError(
            f"initial weights {spec} do not fit this model (missing {len(missing)}, unexpected {len(extra)} tensors:"
            f" {', '.join((missing + extra)[:3])}); check the [model] widths, scales and attention options"
        )
    fitted = {k: _fit_kernel(state[k].float(), v.shape, k) for k, v in target.items()}
    model.load_state_dict(fitted, strict=True)
    return f"{info.source} ({arch.describe(info.config)})"
