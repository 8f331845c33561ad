"""Milliseconds per synthesised training pair, on one thread (synthesis must stay cheap next to a training step).

    python bench/synthesis_speed.py --crop 128 --pairs 300
    python bench/synthesis_speed.py --crop 128 --pairs 300 --set trajectory_weights=0.4,0.2,0.25,0.15

Crops (with ``SynthesisConfig.margin`` of context) are cut from the photos of ``--photos``
(decoded once, beforehand), through ``deblur_cli.data.datasets.SharpFolderDataset``, so the figure is
what a training data worker pays per sample. ``--set FIELD=VALUE`` overrides a field (comma = tuple);
``--varied`` uses ``deblur_cli.synthesis.VARIED``. Reports CPU time per pair (process time), the
number to compare on a shared machine, and wall time.
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import torch

from deblur_cli import synthesis
from deblur_cli.data.datasets import SharpFolderDataset
from deblur_cli.synthesis import SynthesisConfig

ROOT = Path(__file__).resolve().parent.parent


def _value(text: str):
    parts = [ast.literal_eval(p) for p in text.split(",")]
    return tuple(parts) if len(parts) > 1 else parts[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "photos" / "train")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--varied", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(1)
    fields = dict(getattr(synthesis, "VARIED", {})) if args.varied else {}
    for item in args.set:
        key, _, val = item.partition("=")
        fields[key] = _value(val)
    cfg = SynthesisConfig(**fields)
    ds = SharpFolderDataset(args.photos, crop=args.crop, cfg=cfg, samples_per_epoch=args.pairs, seed=0)
    for i in range(len(ds.photos)):  # decode every photo first: not part of the synthesis cost
        ds._photo(i)
    ds[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(args.pairs):
        ds[i]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"{args.pairs} pairs of {args.crop}x{args.crop}: {1000 * cpu / args.pairs:.1f} ms CPU, "
          f"{1000 * wall / args.pairs:.1f} ms wall per pair ({'varied' if args.varied else 'default'} {fields or ''})")


if __name__ == "__main__":
    main()
