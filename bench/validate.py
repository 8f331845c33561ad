"""Score weights on the three validation sets and give the landing verdict.

    python bench/validate.py lite
    python bench/validate.py ../shared/warmstart/lite-trial.safetensors --json /tmp/lite-trial.json
    python bench/validate.py lite --data bench/data/val            # one set only (no verdict)

The sets: ``bench/data/val`` (the project's synthesis on the 7 validation photos),
``bench/data/val_independent`` (``bench/independent_blur.py`` on the same photos) and
``bench/data/val_cross`` (``bench/independent_blur.py`` on photos of Debian packages that no
training photo comes from). For each set it prints the mean input and output PSNR, the mean
gain, the gain per strength class (from the set's ``pairs.tsv``), the worst per-image gain with
its name, and SSIM / MS-SSIM. Scoring is ``deblur_cli.tools.evaluate.evaluate`` with
``deblur_cli.network.engine.Engine`` (the same path as ``deblur evaluate``).

Two verdicts:

* per set, "no harm" (issue 10's bundling rule): every class at or above its input and no image
  worse by more than 0.3 dB;
* overall, the landing rule (issue 18, ``landing_verdict``): weights land only if their mean
  gain is positive on each of the three sets and no image of any set loses more than 0.3 dB.
  When a set is not scored (``--data``), the verdict is "no" with that reason.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import valsets  # noqa: E402

from deblur_cli.tools.evaluate import EvalReport, evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SET_NAMES: tuple[str, ...] = ("val", "val_independent", "val_cross")
SETS: dict[str, Path] = {name: ROOT / "bench" / "data" / name for name in SET_NAMES}
METRICS = ("input_psnr", "psnr", "gain", "input_ssim", "ssim", "input_ms_ssim", "ms_ssim")
WORST_ALLOWED_DB = -0.3
LANDING_RULE = (
    "mean gain > 0 dB on each of " + ", ".join(SET_NAMES) + f" and no image of any set below {WORST_ALLOWED_DB:+.1f} dB"
)


def summarise(report: EvalReport, manifest: dict[str, valsets.PairRow]) -> dict:
    """Figures of one set from per-image scores; classes come from ``manifest`` (``unknown`` if absent)."""
    rows = []
    for s in report.images:
        meta = manifest.get(s.name)
        rows.append({
            "name": s.name,
            "class": meta.cls if meta else "unknown",
            "input_psnr": s.input_psnr,
            "psnr": s.psnr,
            "gain": s.psnr - s.input_psnr,
            "input_ssim": s.input_ssim,
            "ssim": s.ssim,
            "input_ms_ssim": s.input_ms_ssim,
            "ms_ssim": s.ms_ssim,
        })
    if not rows:
        raise ValueError("no pairs were scored")
    order = [c for c in (*valsets.CLASSES, "unknown") if any(r["class"] == c for r in rows)]
    per_class = {
        c: {
            "count": sum(r["class"] == c for r in rows),
            "input_psnr": _mean(r["input_psnr"] for r in rows if r["class"] == c),
            "psnr": _mean(r["psnr"] for r in rows if r["class"] == c),
            "gain": _mean(r["gain"] for r in rows if r["class"] == c),
        }
        for c in order
    }
    worst = min(rows, key=lambda r: r["gain"])
    out = {
        "count": len(rows),
        **{k: _mean(r[k] for r in rows) for k in METRICS},
        "per_class": per_class,
        "worst": {"name": worst["name"], "class": worst["class"], "gain": worst["gain"]},
        "images": rows,
    }
    out["no_harm"] = all(v["gain"] >= 0 for v in per_class.values()) and worst["gain"] >= WORST_ALLOWED_DB
    return out


def landing_verdict(results: dict[str, dict], required: tuple[str, ...] = SET_NAMES) -> dict:
    """The landing rule of issue 18 over ``results`` (set name -> ``summarise`` output).

    Lands only if every ``required`` set was scored, each scored set's mean gain is positive and
    no image of any scored set has a gain below ``WORST_ALLOWED_DB``. Returns ``{"lands": bool,
    "rule": str, "reasons": [str, ...]}`` (the reasons it does not land, empty when it does)."""
    reasons = [f"{name}: not scored" for name in required if name not in results]
    for name, s in results.items():
        if not s["gain"] > 0:
            reasons.append(f"{name}: mean gain {s['gain']:+.2f} dB is not positive")
        losers = [r for r in s.get("images", []) if r["gain"] < WORST_ALLOWED_DB]
        if losers or s["worst"]["gain"] < WORST_ALLOWED_DB:
            count = max(len(losers), 1)
            reasons.append(
                f"{name}: {count} image(s) below {WORST_ALLOWED_DB:+.1f} dB, worst {s['worst']['name']} "
                f"{s['worst']['gain']:+.2f} dB"
            )
    return {"lands": not reasons, "rule": LANDING_RULE, "reasons": reasons}


def format_verdict(verdict: dict) -> str:
    if verdict["lands"]:
        return f"landing rule ({verdict['rule']}): LANDS"
    return f"landing rule ({verdict['rule']}): does NOT land\n" + "\n".join(f"  - {r}" for r in verdict["reasons"])


def _mean(values) -> float:
    vals = list(values)
    return float(np.mean(vals)) if vals else math.nan


def score_sets(deblur: Callable[[np.ndarray], np.ndarray], sets: dict[str, Path]) -> dict[str, dict]:
    """Evaluate ``deblur`` on every set and summarise each."""
    return {name: summarise(evaluate(deblur, path), valsets.read_manifest(path)) for name, path in sets.items()}


def format_summary(name: str, s: dict) -> str:
    classes = "  ".join(f"{c} {v['gain']:+.2f}" for c, v in s["per_class"].items())
    return (
        f"{name} ({s['count']} pairs): input {s['input_psnr']:.2f} dB -> {s['psnr']:.2f} dB, gain {s['gain']:+.2f} dB\n"
        f"  per class: {classes}\n"
        f"  worst: {s['worst']['name']} {s['worst']['gain']:+.2f} dB ({s['worst']['class']})\n"
        f"  SSIM {s['input_ssim']:.4f} -> {s['ssim']:.4f}   MS-SSIM {s['input_ms_ssim']:.4f} -> {s['ms_ssim']:.4f}"
        f"   no harm: {'yes' if s['no_harm'] else 'NO'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="registered weights name or a weights file path")
    ap.add_argument("--data", type=Path, action="append", help="a set folder (repeatable; default: all three sets)")
    ap.add_argument("--json", type=Path, help="write all figures (and per-image rows) to this file")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    import torch

    from deblur_cli.methods import InferenceOptions

    from deblur_cli.network.engine import Engine
    from deblur_cli.weights import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    sets = {p.name: p for p in args.data} if args.data else SETS
    model, _ = load_model(args.weights)
    deblurrer = Engine(model, InferenceOptions(device=args.device, precision=args.precision))
    results = score_sets(deblurrer.run, sets)
    for name, s in results.items():
        print(format_summary(name, s))
    verdict = landing_verdict(results)
    print(format_verdict(verdict))
    if args.json:
        doc = {"weights": args.weights, "precision": args.precision, "sets": results, "landing": verdict}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
