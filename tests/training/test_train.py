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
from deblur_cli.network.model import ModelConfig
from deblur_cli.training import (
    SeededSamples,
    StepSampler,
    TrainConfig,
    build_config,
    checkpoint_paths,
    export_weights,
    load_latest_checkpoint,
    plan_train,
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
                val_every=3, val_samples=2, val_fraction=0.25, warmup_steps=2)
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


def test_synthesis_preset_expands_and_table_keys_win(tmp_path):
    from deblur_cli.synthesis import SYNTHESIS_PRESETS, SynthesisConfig

    f = tmp_path / "cfg.toml"
    f.write_text('[synthesis]\npreset = "k3-v2"\nnone_prob = 0.3\n')
    cfg = build_config(f)
    assert "preset" not in cfg.synthesis  # saved run configs hold every value, not a name
    syn = cfg.synthesis_config()
    assert syn.none_prob == 0.3 and syn.none_prob != SYNTHESIS_PRESETS["k3-v2"]["none_prob"]
    assert syn.strength_beta == SYNTHESIS_PRESETS["k3-v2"]["strength_beta"] != SynthesisConfig().strength_beta
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.synthesis_config() == syn
    with pytest.raises(UsageError, match="unknown synthesis preset 'k4'"):
        build_config(None, synthesis={"preset": "k4"})


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
    cfg = _cfg(steps=60, batch_size=1, lr=1e-2, val_fraction=0.0, checkpoint_every=60, log_every=1, warmup_steps=0,
               min_lr_ratio=1.0, grad_clip=0.0, loss="mse_grad", grad_weight=0.0, optimizer="adam",
               betas=(0.9, 0.999), model=ModelConfig(widths=(8, 8, 8), kernel_size=3, blocks_per_group=1))
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
    _, _, _ = export_weights(tmp_path / "run", tmp_path / "s3raw.safetensors", step=3, raw=True)
    state3, _ = load_state(str(tmp_path / "s3.safetensors"))
    raw3, _ = load_state(str(tmp_path / "s3raw.safetensors"))
    ckpt3 = torch.load(tmp_path / "run" / "checkpoints" / "step_00000003.pt", weights_only=True)
    assert step == 3 and all(torch.equal(state3[k], ckpt3["ema"]["model"][k]) for k in state3)  # EMA by default
    assert all(torch.equal(raw3[k], ckpt3["model"][k]) for k in raw3)
    assert any(not torch.equal(raw3[k], state3[k]) for k in raw3)
    with pytest.raises(WeightsError, match="step 4"):
        export_weights(tmp_path / "run", tmp_path / "s4.safetensors", step=4)
    assert not (tmp_path / "s4.safetensors").exists()


# ----------------------------------------------------------------------------- the CPU recipe

TINY_RES = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1, global_residual=True)


def test_untrained_network_with_identity_start_returns_its_input(tmp_path):
    data = _pairs(tmp_path / "data")
    _, model = train(_cfg(model=TINY_RES, steps=1, lr=1e-9, ema_decay=0.0), data, tmp_path / "run")
    from deblur_cli.network.model import AttentiveDeblurNet
    from deblur_cli.training import identity_start

    fresh = AttentiveDeblurNet(TINY_RES)
    identity_start(fresh)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x)[-1], x)
        assert (model(x)[-1] - x).abs().max() < 1e-3  # one step at lr 1e-9 stays at the identity


def test_identity_start_needs_a_global_residual():
    from deblur_cli.network.model import AttentiveDeblurNet
    from deblur_cli.training import identity_start

    with pytest.raises(UsageError, match="global_residual"):
        identity_start(AttentiveDeblurNet(TINY))


def test_init_zero_pads_3x3_weights_into_a_5x5_network(tmp_path):
    from deblur_cli.errors import WeightsError
    from deblur_cli.network.model import AttentiveDeblurNet
    from deblur_cli.training import load_initial_weights
    from deblur_cli.weights import save_weights

    small = AttentiveDeblurNet(TINY_RES)
    save_weights(small, tmp_path / "k3.safetensors")
    big = AttentiveDeblurNet(ModelConfig(widths=(4, 8, 16), kernel_size=5, blocks_per_group=1, global_residual=True))
    load_initial_weights(big, str(tmp_path / "k3.safetensors"))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert (small(x)[-1] - big(x)[-1]).abs().max() < 1e-5
    with pytest.raises(WeightsError, match="global_residual"):
        load_initial_weights(AttentiveDeblurNet(TINY), str(tmp_path / "k3.safetensors"))
    other = AttentiveDeblurNet(ModelConfig(widths=(4, 8, 16), kernel_size=1, blocks_per_group=1, global_residual=True))
    with pytest.raises(WeightsError, match="kernel_size"):
        load_initial_weights(other, str(tmp_path / "k3.safetensors"))  # larger kernels never shrink


def test_train_init_starts_from_given_weights(tmp_path):
    from deblur_cli.network.model import AttentiveDeblurNet
    from deblur_cli.weights import load_state, save_weights

    data = _pairs(tmp_path / "data")
    start = AttentiveDeblurNet(TINY_RES)
    save_weights(start, tmp_path / "start.safetensors")
    train(_cfg(model=TINY_RES, steps=1, lr=1e-12, ema_decay=0.0, checkpoint_every=1), data, tmp_path / "run",
          init=str(tmp_path / "start.safetensors"))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "step_00000001.pt", weights_only=True)
    ref, _ = load_state(str(tmp_path / "start.safetensors"))
    assert all(torch.allclose(ckpt["model"][k], ref[k], atol=1e-6) for k in ref)
    assert not all(torch.equal(ckpt["model"]["nets.0.out_conv.weight"], torch.zeros_like(ref["nets.0.out_conv.weight"])) for _ in [0])


def test_time_budget_stops_with_a_checkpoint(tmp_path):
    data = _pairs(tmp_path / "data")
    result, _ = train(_cfg(steps=50, checkpoint_every=100), data, tmp_path / "run", time_budget=1e-6)
    assert result.stopped_by_budget and result.step == 1
    assert [p.name for p in checkpoint_paths(tmp_path / "run")] == ["step_00000001.pt"]
    result, _ = train(_cfg(steps=3), data, tmp_path / "run", resume=True)
    assert result.step == 3 and not result.stopped_by_budget


def test_log_records_cpu_hours_and_validation(tmp_path):
    data = _pairs(tmp_path / "data")
    extra = _pairs(tmp_path / "other", n=2, smooth=True)
    train(_cfg(val_extra=(str(extra),)), data, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    vals = [x for x in lines if "val_psnr" in x]
    assert [v["step"] for v in vals] == [0, 3, 6]  # step 0: the starting weights
    assert all(v["other_input_psnr"] > 20 and v["other_psnr"] > 0 for v in vals)  # smooth blobs: high input PSNR
    hours = [x["cpu_hours"] for x in lines]
    assert all(h >= 0 for h in hours) and hours == sorted(hours)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    from deblur_cli.training import lr_factor

    f = lr_factor(TrainConfig(model=TINY, steps=100, warmup_steps=10, min_lr_ratio=0.01, crop=32))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.505)
    assert f(100) == pytest.approx(0.01) and f(500) == pytest.approx(0.01)
    poly = lr_factor(TrainConfig(model=TINY, steps=100, warmup_steps=0, schedule="poly", min_lr_ratio=0.0, crop=32))
    assert poly(0) == 1.0 and poly(100) == 0.0 and 0.0 < poly(50) < 1.0


def test_ema_tracks_the_weights():
    from deblur_cli.training import EMA

    net = torch.nn.Linear(2, 2)
    ema = EMA(net, decay=0.9)
    before = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    for _ in range(200):
        ema.update(net)
    assert torch.allclose(ema.model.weight, net.weight, atol=1e-6)
    ema2 = EMA(torch.nn.Linear(2, 2), decay=0.9)
    ema2.model.weight.data.copy_(before)
    ema2.updates = 1000
    ema2.update(net)
    assert torch.allclose(ema2.model.weight, 0.9 * before + 0.1 * net.weight)


def test_recipes_paper_and_cpu():
    paper = build_config(None, recipe="paper")
    assert (paper.loss, paper.optimizer, paper.lr, paper.batch_size, paper.crop) == ("mse_grad", "adam", 1e-4, 16, 256)
    assert paper.model == ModelConfig() and paper.ema_decay == 0 and paper.schedule == "poly"
    cpu = build_config(None)
    assert (cpu.loss, cpu.optimizer, cpu.schedule, cpu.model.widths) == ("charbonnier_fft", "adamw", "cosine", (16, 32, 64))
    with pytest.raises(UsageError, match="recipe"):
        build_config(None, recipe="fast")
    with pytest.raises(UsageError, match="synthesis"):
        build_config(None, synthesis={"nonsense": 1})


def test_parse_duration():
    from deblur_cli.training.config import parse_duration

    assert parse_duration("9m30s") == 570 and parse_duration("2h") == 7200 and parse_duration("90") == 90
    for bad in ("", "soon", "-5", "0s"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_export_half_writes_float16(tmp_path):
    from safetensors import safe_open

    data = _pairs(tmp_path / "data")
    train(_cfg(steps=3), data, tmp_path / "run")
    path, _, _ = export_weights(tmp_path / "run", tmp_path / "h.safetensors", dtype=torch.float16)
    with safe_open(str(path), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}


def test_bad_data_or_run_folder_leaves_nothing_behind(tmp_path):
    from deblur_cli.errors import DataError, OutputError

    with pytest.raises(DataError):
        train(_cfg(), tmp_path / "missing", tmp_path / "run1")
    assert not (tmp_path / "run1").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        train(_cfg(), _pairs(tmp_path / "data"), tmp_path / "afile" / "run")
    with pytest.raises(UsageError, match="nothing to resume"):
        train(_cfg(), _pairs(tmp_path / "data"), tmp_path / "run2", resume=True)
    assert not (tmp_path / "run2").exists()


@pytest.mark.parametrize("name", ["lite-cpu.toml", "k3-cpu.toml", "k3-v2-cpu.toml", "paper-gpu.toml"])
def test_shipped_recipes_parse(name):
    root = Path(__file__).resolve().parents[2] / "weights"
    cfg = build_config(root / name)
    assert cfg.crop % cfg.model.size_multiple == 0
    expected = {"lite-cpu.toml": ("mse_grad", (16, 32, 64), 3), "k3-cpu.toml": ("charbonnier_fft", (32, 64, 128), 3),
                "k3-v2-cpu.toml": ("charbonnier_fft", (32, 64, 128), 3),
                "paper-gpu.toml": ("charbonnier_fft", (32, 64, 128), 5)}[name]
    assert (cfg.loss, cfg.model.widths, cfg.model.kernel_size) == expected


def test_resume_through_the_library_refuses_a_contradicting_config(tmp_path):
    """Issue 27 item 7: `train(cfg, resume=True)` used the saved config and dropped cfg's other fields silently."""
    data = _pairs(tmp_path / "data")
    train(_cfg(steps=3), data, tmp_path / "run")
    with pytest.raises(UsageError, match=r"crop 48 \(the run's: 32\)"):
        train(_cfg(crop=48), data, tmp_path / "run", resume=True)
    with pytest.raises(UsageError, match=r"batch_size 4 \(the run's: 2\)"):
        train(_cfg(batch_size=4), data, tmp_path / "run", resume=True)
    plan = plan_train(_cfg(lr=0.25), data, tmp_path / "run", resume=True)
    assert plan.cfg.lr == 0.25 and set(plan.notes) == {"lr is now 0.25 (was 0.001)", "steps is now 6 (was 3)"}
