from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deblur_cli.errors import UsageError
from deblur_cli.model import ModelConfig
from deblur_cli.train import (
    SeededSamples,
    StepSampler,
    TrainConfig,
    build_config,
    checkpoint_paths,
    export_weights,
    load_latest_checkpoint,
    train,
)

TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)


def _pairs(root: Path, n: int = 4, size: int = 48, smooth: bool = False) -> Path:
    """A flat-layout dataset: blurry = box-blurred sharp (random squares, or smooth blobs)."""
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if smooth:
            low = Image.fromarray((rng.random((4, 4, 3)) * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
            sharp = np.asarray(low, dtype=np.float32) / 255
        else:
            sharp = (rng.random((size, size, 3)) > 0.5).astype(np.float32)
        blur = (sharp + np.roll(sharp, 1, 1) + np.roll(sharp, -1, 1)) / 3
        Image.fromarray((sharp * 255).astype(np.uint8)).save(root / "sharp" / f"{i}.png")
        Image.fromarray((blur * 255).astype(np.uint8)).save(root / "blur" / f"{i}.png")
    return root


def _cfg(**kw) -> TrainConfig:
    base = dict(model=TINY, steps=6, batch_size=2, crop=32, workers=0, checkpoint_every=3, log_every=1,
                val_every=3, val_samples=2, val_fraction=0.25)
    base.update(kw)
    return TrainConfig(**base)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_config_file_and_overrides(tmp_path):
    f = tmp_path / "cfg.toml"
    f.write_text('steps = 7\ncrop = 64\n[model]\npreset = "lite"\nwidths = [8, 16, 32]\n')
    cfg = build_config(f, steps=9, lr=None)
    assert cfg.steps == 9 and cfg.crop == 64 and cfg.model.widths == (8, 16, 32) and cfg.model.kernel_size == 3
    with pytest.raises(UsageError, match="unknown training options"):
        build_config(None, stepz=3)
    with pytest.raises(UsageError, match="multiple of 16"):
        build_config(None, crop=100)


def test_samples_are_a_pure_function_of_the_index():
    class Noise(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.rand(2) + i

    ds = SeededSamples(Noise(), seed=5)
    assert torch.equal(ds[17], ds[17])
    assert not torch.equal(ds[17], ds[18])
    sampler = iter(StepSampler(start_step=2, batch=3, rank=1, world=2))
    assert [next(sampler) for _ in range(6)] == [15, 16, 17, 21, 22, 23]


def test_tiny_model_overfits_tiny_dataset(tmp_path):
    data = _pairs(tmp_path / "data", n=1, size=32, smooth=True)
    cfg = _cfg(steps=60, batch_size=1, lr=1e-2, lr_power=0.0, val_fraction=0.0, checkpoint_every=60, log_every=1,
               grad_weight=0.0, model=ModelConfig(widths=(8, 8, 8), kernel_size=3, blocks_per_group=1))
    train(cfg, data, tmp_path / "run")
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if "loss" in line]
    assert losses[-1] < losses[0] / 10


def test_resume_matches_uninterrupted_run(tmp_path):
    data = _pairs(tmp_path / "data")
    _, full = train(_cfg(), data, tmp_path / "a")
    train(_cfg(), data, tmp_path / "b", stop_after=3)
    assert [int(p.stem[5:]) for p in checkpoint_paths(tmp_path / "b")] == [3]
    result, resumed = train(_cfg(), data, tmp_path / "b", resume=True)
    assert result.step == 6
    a, b = _state(full), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()
             if "loss" in line]
    assert steps == list(range(1, 7))  # continuous curve, no duplicates


def test_damaged_newest_checkpoint_falls_back(tmp_path):
    data = _pairs(tmp_path / "data")
    train(_cfg(keep_checkpoints=3), data, tmp_path / "run")
    newest = checkpoint_paths(tmp_path / "run")[0]
    newest.write_bytes(newest.read_bytes()[:100])  # as if cut while written by a non-atomic writer
    ckpt, path = load_latest_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 3 and path != newest
    result, _ = train(_cfg(keep_checkpoints=3), data, tmp_path / "run", resume=True)
    assert result.step == 6


def test_new_run_refuses_existing_checkpoints(tmp_path):
    data = _pairs(tmp_path / "data")
    train(_cfg(steps=3), data, tmp_path / "run")
    with pytest.raises(UsageError, match="--resume"):
        train(_cfg(steps=3), data, tmp_path / "run")


def test_export_weights_loads_for_inference(tmp_path):
    from deblur_cli.weights import load_model

    data = _pairs(tmp_path / "data")
    _, model = train(_cfg(steps=3), data, tmp_path / "run")
    path, step, sha = export_weights(tmp_path / "run", tmp_path / "w.safetensors")
    loaded, info = load_model(str(path))
    assert step == 3 and info.sha256 == sha and loaded.config == TINY
    x = torch.rand(1, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(x)[-1], model(x)[-1], atol=1e-6)


def _ddp_worker(rank: int, world: int, port: int, data: str, run: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    _, model = train(_cfg(steps=3, val_fraction=0.0), Path(data), Path(run), device="cpu")
    torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_two_processes_keep_identical_weights(tmp_path):
    data = _pairs(tmp_path / "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(data), str(tmp_path / "run"), str(tmp_path)), nprocs=2)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    init = {k: v for k, v in a.items()}
    assert len(init) > 0
    assert checkpoint_paths(tmp_path / "run")  # rank 0 wrote checkpoints


def test_export_a_chosen_step(tmp_path):
    from deblur_cli.errors import WeightsError
    from deblur_cli.weights import load_state

    data = _pairs(tmp_path / "data")
    train(_cfg(), data, tmp_path / "run")  # checkpoints at steps 3 and 6
    _, step, _ = export_weights(tmp_path / "run", tmp_path / "s3.safetensors", step=3)
    state3, _ = load_state(str(tmp_path / "s3.safetensors"))
    ckpt3 = torch.load(tmp_path / "run" / "checkpoints" / "step_00000003.pt", weights_only=True)
    assert step == 3 and all(torch.equal(state3[k], ckpt3["model"][k]) for k in state3)
    with pytest.raises(WeightsError, match="step 4"):
        export_weights(tmp_path / "run", tmp_path / "s4.safetensors", step=4)
    assert not (tmp_path / "s4.safetensors").exists()
