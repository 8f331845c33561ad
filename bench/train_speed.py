"""Training steps per second on this machine, by precision, memory format, compilation and threads.

    python bench/train_speed.py --config weights/k3-v4-cpu.toml --data MIX_DIR [--steps 12]

Times the two halves of a training step separately, so the slower one is seen:

* **the optimiser step** (forward, loss, backward, clipping, AdamW, EMA) on fixed random batches
  of the recipe's crop and batch size, for each variant: bf16 autocast or fp32, ``channels_last``
  or not, ``torch.compile`` (inductor) or eager, 1 or 2 threads. The first steps (warm-up and
  compilation) are not counted; the median of the rest is reported.
* **the data**: seconds to synthesise one batch from the photo folder (``--data``) in this
  process, i.e. what one data-loader worker must deliver per step; on a 2-core machine a
  worker competes with the training threads for the same cores.

Run it on an otherwise idle machine (pause a training run with ``kill -STOP``); the README of
bench/ quotes its table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import torch

from deblur_cli.training.config import build_config
from deblur_cli.training.losses import training_loss
from deblur_cli.training.optim import build_training, use_bf16


def time_steps(cfg, threads: int, compiled: bool, steps: int, warmup: int = 3) -> float:
    """Median seconds per optimiser step of ``cfg`` on random batches."""
    torch.set_num_threads(threads)
    dev = torch.device("cpu")
    model, optimizer, _, ema = build_training(cfg, dev, None)
    net = torch.compile(model) if compiled else model
    bf16 = use_bf16(cfg, dev)
    gen = torch.Generator().manual_seed(0)
    blur = torch.rand(cfg.batch_size, 3, cfg.crop, cfg.crop, generator=gen)
    sharp = torch.rand(cfg.batch_size, 3, cfg.crop, cfg.crop, generator=gen)
    if cfg.channels_last:
        blur = blur.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            outputs = net(blur)
        loss = training_loss(cfg.loss, outputs, sharp, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_data(cfg, data: Path, batches: int) -> float:
    """Seconds to synthesise one batch of ``cfg`` from the photo folder ``data`` (one process)."""
    from deblur_cli.training.data import SeededSamples, open_datasets

    torch.set_num_threads(1)
    train_ds, _ = open_datasets(data, cfg)
    samples = SeededSamples(train_ds, cfg.seed)
    start = time.perf_counter()
    for k in range(batches * cfg.batch_size):
        samples[k]
    return (time.perf_counter() - start) / batches


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True, help="a training TOML (its model, crop, batch, loss)")
    ap.add_argument("--data", type=Path, help="a sharp-photo folder: also time the data synthesis")
    ap.add_argument("--steps", type=int, default=12, help="timed steps per variant (after 3 warm-up steps)")
    ap.add_argument("--variants", default="bf16-cl,bf16,fp32-cl,fp32,bf16-cl-compile", help="comma-separated")
    ap.add_argument("--threads", default="2,1", help="comma-separated thread counts")
    args = ap.parse_args(argv)
    cfg = build_config(args.config)
    print(f"crop {cfg.crop}, batch {cfg.batch_size}, loss {cfg.loss}")
    print("| variant | threads | s/step | steps/s | steps per CPU-hour |\n|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        for variant in args.variants.split(","):
            parts = set(variant.split("-"))
            vcfg = replace(cfg, bf16="bf16" in parts, channels_last="cl" in parts)
            try:
                sec = time_steps(vcfg, threads, "compile" in parts, args.steps)
            except Exception as e:  # noqa: BLE001 - a variant that cannot run here is reported, not fatal
                print(f"| {variant} | {threads} | failed: {str(e).splitlines()[0][:60]} | | |")
                continue
            print(f"| {variant} | {threads} | {sec:.3f} | {1 / sec:.2f} | {3600 / (sec * threads):.0f} |", flush=True)
    if args.data:
        per_batch = time_data(cfg, args.data, batches=4)
        print(f"data: {per_batch:.3f} s to synthesise one batch of {cfg.batch_size} in one process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
