"""Score weights on what they do to blur, to noise and to sharp photos, and give the landing verdict.

    python bench/validate.py k3-v3                                # every set and job (~10 min, 2 cores)
    python bench/validate.py FILE.safetensors --json out.json     # all figures and per-image rows
    python bench/validate.py FILE --jobs blur                     # blur alone only (checkpoint scoring)
    python bench/validate.py lite --data bench/data/val           # one folder only (no verdict)

Three jobs, each on the three validation photo sets (``val``: the project's synthesis on the 7
validation photos; ``val_independent``: ``bench/independent_blur.py`` on the same photos;
``val_cross``: ``bench/independent_blur.py`` on photos of Debian packages no training photo comes
from):

* **blur alone** (job ``blur``): the noise-free twins ``bench/data/<set>_clean`` (same crops,
  same blur, no noise, no JPEG, no sharpening; ``--clean`` of the generators), plus
  ``bench/data/uniform_shake`` (one curved camera-shake kernel per crop, 5-45 px, light noise;
  ``bench/uniform_shake.py``). The headline figure is the blur-alone gain on ``val_cross_clean``.
* **noise alone** (``noise``): each set's sharp crops with realistic sensor noise
  (``valsets.add_sensor_noise``, seeded per crop), scored against the clean crops.
* **do no harm** (``harm``): each set's sharp crops in; the PSNR of the output against them
  (mean and minimum). A sharp photo must come back unchanged.

The original sets (blur + noise + JPEG, job ``mixed``) are scored too, for continuity with the
figures of earlier weights. Scoring is ``deblur_cli.tools.evaluate`` (PSNR on RGB in [0, 1], no
border crop, capped at 100 dB) with the same engine as ``deblur evaluate``.

The landing rule (``landing_verdict``), against the bundled weights' figures (``--baseline``, by
default ``bench/data/scores/<default weights>.json``):

1. blur alone rises: the mean gain on ``val_cross_clean`` is above the baseline's;
2. no image of any set with a degraded input (mixed, blur, noise) is more than 0.3 dB below its input;
3. noise alone does not get worse: each noise set's mean gain is at most 0.05 dB below the baseline's;
4. do no harm does not get worse: the minimum PSNR over the harm sets is at most 0.1 dB below the
   baseline's.

``targets`` prints the goals of the next weights (blur alone +1.5 dB on ``val_cross_clean`` with every class
+0.5 dB, +1.0 dB on ``uniform_shake``, sharp crops back at 40 dB or more) met or not.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import valsets

from deblur_cli.tools.evaluate import EvalReport, evaluate

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
BASE_SETS: tuple[str, ...] = ("val", "val_independent", "val_cross")
JOBS: tuple[str, ...] = ("blur", "noise", "harm", "mixed")
UNIFORM = "uniform_shake"
HEADLINE = "val_cross_clean"
METRICS = ("input_psnr", "psnr", "gain", "input_ssim", "ssim", "input_ms_ssim", "ms_ssim")
WORST_ALLOWED_DB = -0.3
NOISE_TOLERANCE_DB = 0.05
HARM_TOLERANCE_DB = 0.1
TARGETS = {"headline_gain": 1.5, "headline_class_gain": 0.5, "uniform_gain": 1.0, "harm_min_psnr": 40.0}
LANDING_RULE = (
    f"blur-alone gain on {HEADLINE} above the baseline's; no image of a blur, noise or mixed set below "
    f"{WORST_ALLOWED_DB:+.1f} dB; noise-alone gain within {NOISE_TOLERANCE_DB} dB of the baseline's on each set; "
    f"minimum do-no-harm PSNR within {HARM_TOLERANCE_DB} dB of the baseline's"
)

# Kept under their old names: the three original (mixed) sets.
SET_NAMES = BASE_SETS
SETS: dict[str, Path] = {name: DATA / name for name in BASE_SETS}


def set_name(base: str, job: str) -> str:
    """The result key of one job on one base set (``val_cross`` + ``blur`` -> ``val_cross_clean``)."""
    return {"blur": f"{base}_clean", "noise": f"{base}_noise", "harm": f"{base}_harm", "mixed": base}[job]


def job_of(name: str) -> str:
    if name == UNIFORM or name.endswith("_clean"):
        return "blur"
    for job in ("noise", "harm"):
        if name.endswith(f"_{job}"):
            return job
    return "mixed"


def planned_sets(jobs: tuple[str, ...]) -> dict[str, tuple[str, Path]]:
    """Result name -> (job, folder with stored pairs or the base set a derived set is made from)."""
    plan: dict[str, tuple[str, Path]] = {}
    for job in jobs:
        for base in BASE_SETS:
            folder = DATA / (f"{base}_clean" if job == "blur" else base)
            plan[set_name(base, job)] = (job, folder)
        if job == "blur":
            plan[UNIFORM] = ("blur", DATA / UNIFORM)
    return plan


def summarise(report: EvalReport, manifest: dict[str, valsets.PairRow], job: str = "mixed") -> dict:
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
    key = "psnr" if job == "harm" else "gain"  # a sharp input has no finite input PSNR to gain over
    worst = min(rows, key=lambda r: r[key])
    out = {
        "job": job,
        "count": len(rows),
        **{k: _mean(r[k] for r in rows) for k in METRICS},
        "min_psnr": min(r["psnr"] for r in rows),
        "per_class": per_class,
        "worst": {"name": worst["name"], "class": worst["class"], "gain": worst["gain"], "psnr": worst["psnr"]},
        "images": rows,
    }
    if job == "harm":
        out["gain"] = math.nan
        out["no_harm"] = True
    else:
        out["no_harm"] = all(v["gain"] >= 0 for v in per_class.values()) and worst["gain"] >= WORST_ALLOWED_DB
    return out


def landing_verdict(results: dict[str, dict], baseline: dict[str, dict] | None = None) -> dict:
    """The landing rule (module docstring) over ``results`` (set name -> ``summarise`` output).

    ``baseline``: the same for the bundled weights. Returns ``{"lands": bool, "rule": str,
    "reasons": [str, ...]}`` (the reasons it does not land, empty when it does)."""
    reasons = []
    if HEADLINE not in results:
        reasons.append(f"{HEADLINE}: not scored")
    elif baseline is None or HEADLINE not in baseline:
        reasons.append("no baseline figures to compare with (--baseline)")
    elif not results[HEADLINE]["gain"] > baseline[HEADLINE]["gain"]:
        reasons.append(
            f"{HEADLINE}: blur-alone gain {results[HEADLINE]['gain']:+.3f} dB is not above the baseline's "
            f"{baseline[HEADLINE]['gain']:+.3f} dB"
        )
    for name, s in results.items():
        job = s.get("job", job_of(name))
        if job == "harm":
            continue
        losers = [r for r in s.get("images", []) if r["gain"] < WORST_ALLOWED_DB]
        if losers or s["worst"]["gain"] < WORST_ALLOWED_DB:
            reasons.append(
                f"{name}: {max(len(losers), 1)} image(s) below {WORST_ALLOWED_DB:+.1f} dB, worst "
                f"{s['worst']['name']} {s['worst']['gain']:+.2f} dB"
            )
        if job == "noise" and baseline and name in baseline and s["gain"] < baseline[name]["gain"] - NOISE_TOLERANCE_DB:
            reasons.append(f"{name}: noise-alone gain {s['gain']:+.2f} dB, baseline {baseline[name]['gain']:+.2f} dB")
    harm = _harm_min(results)
    base_harm = _harm_min(baseline or {})
    if harm is not None and base_harm is not None and harm < base_harm - HARM_TOLERANCE_DB:
        reasons.append(f"do no harm: minimum PSNR {harm:.2f} dB, baseline {base_harm:.2f} dB")
    return {"lands": not reasons, "rule": LANDING_RULE, "reasons": reasons}


def targets(results: dict[str, dict]) -> list[tuple[str, bool | None]]:
    """The goals of the next weights, each (description, met; None when not scored)."""
    head = results.get(HEADLINE)
    uniform = results.get(UNIFORM)
    harm = _harm_min(results)
    graded = [s for n, s in results.items() if s.get("job", job_of(n)) != "harm"]
    worst = min((s["worst"]["gain"] for s in graded), default=None)
    return [
        (f"blur alone on {HEADLINE} >= +{TARGETS['headline_gain']} dB", None if not head else head["gain"] >= TARGETS["headline_gain"]),
        (
            f"every class of {HEADLINE} >= +{TARGETS['headline_class_gain']} dB",
            None if not head else all(v["gain"] >= TARGETS["headline_class_gain"] for v in head["per_class"].values()),
        ),
        (f"{UNIFORM} >= +{TARGETS['uniform_gain']} dB", None if not uniform else uniform["gain"] >= TARGETS["uniform_gain"]),
        (f"sharp crops back at >= {TARGETS['harm_min_psnr']:.0f} dB (minimum)", None if harm is None else harm >= TARGETS["harm_min_psnr"]),
        (f"no image below {WORST_ALLOWED_DB:+.1f} dB", None if worst is None else worst >= WORST_ALLOWED_DB),
    ]


def _harm_min(results: dict[str, dict]) -> float | None:
    values = [s["min_psnr"] for n, s in results.items() if s.get("job", job_of(n)) == "harm"]
    return min(values) if values else None


def format_verdict(verdict: dict) -> str:
    if verdict["lands"]:
        return f"landing rule ({verdict['rule']}): LANDS"
    return f"landing rule ({verdict['rule']}): does NOT land\n" + "\n".join(f"  - {r}" for r in verdict["reasons"])


def format_targets(results: dict[str, dict]) -> str:
    marks = {True: "met", False: "NOT met", None: "not scored"}
    return "issue 25 targets:\n" + "\n".join(f"  - {text}: {marks[ok]}" for text, ok in targets(results))


def _mean(values) -> float:
    vals = list(values)
    return float(np.mean(vals)) if vals else math.nan


def score_sets(deblur: Callable[[np.ndarray], np.ndarray], sets: dict[str, Path]) -> dict[str, dict]:
    """Evaluate ``deblur`` on every stored set (``name -> folder``) and summarise each."""
    return {
        name: summarise(evaluate(deblur, path), valsets.read_manifest(path), job_of(name)) for name, path in sets.items()
    }


def score_jobs(deblur: Callable[[np.ndarray], np.ndarray], plan: dict[str, tuple[str, Path]]) -> dict[str, dict]:
    """Evaluate ``deblur`` on every planned set, making the derived (noise, harm) ones in a temp folder."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="deblur-validate-") as tmp:
        for name, (job, folder) in plan.items():
            if job in ("noise", "harm"):
                folder = valsets.derived_set(folder, Path(tmp) / name, job)
            results[name] = summarise(evaluate(deblur, folder), valsets.read_manifest(folder), job)
    return results


def format_summary(name: str, s: dict) -> str:
    if s.get("job") == "harm":
        return (
            f"{name} ({s['count']} sharp crops in): output {s['psnr']:.2f} dB from them on average, "
            f"minimum {s['min_psnr']:.2f} dB ({s['worst']['name']})"
        )
    classes = "  ".join(f"{c} {v['gain']:+.2f}" for c, v in s["per_class"].items())
    return (
        f"{name} ({s['count']} pairs): input {s['input_psnr']:.2f} dB -> {s['psnr']:.2f} dB, gain {s['gain']:+.2f} dB\n"
        f"  per class: {classes}\n"
        f"  worst: {s['worst']['name']} {s['worst']['gain']:+.2f} dB ({s['worst']['class']})\n"
        f"  SSIM {s['input_ssim']:.4f} -> {s['ssim']:.4f}   MS-SSIM {s['input_ms_ssim']:.4f} -> {s['ms_ssim']:.4f}"
        f"   no harm: {'yes' if s['no_harm'] else 'NO'}"
    )


def default_baseline() -> Path:
    from deblur_cli.weights.registry import default_weights_name

    return DATA / "scores" / f"{default_weights_name()}.json"


def make_runner(
    weights: str, method: str, device: str, precision: str, threads: int | None
) -> Callable[[np.ndarray], np.ndarray]:
    """The deblurring function of one method and weights, as ``deblur`` and ``deblur evaluate`` run it."""
    from deblur_cli.methods import InferenceOptions, create

    options = InferenceOptions(method=method, weights=weights, device=device, precision=precision, threads=threads)
    return create(options).run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="registered weights name or a weights file path")
    ap.add_argument("--data", type=Path, action="append", help="a set folder (repeatable; no verdict)")
    ap.add_argument("--jobs", default=",".join(JOBS), help=f"comma-separated subset of {', '.join(JOBS)}")
    ap.add_argument("--baseline", type=Path, help="--json output of the bundled weights (default: bench/data/scores/DEFAULT.json)")
    ap.add_argument("--json", type=Path, help="write all figures (and per-image rows) to this file")
    ap.add_argument("--method", default="network", help="a registered deblurring method (deblur --help lists them)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    jobs = tuple(j.strip() for j in args.jobs.split(",") if j.strip())
    if not jobs or set(jobs) - set(JOBS):
        ap.error(f"--jobs takes a comma-separated subset of {', '.join(JOBS)}")

    run = make_runner(args.weights, args.method, args.device, args.precision, args.threads)
    if args.data:
        results = score_sets(run, {p.name: p for p in args.data})
    else:
        results = score_jobs(run, planned_sets(jobs))
    for name, s in results.items():
        print(format_summary(name, s))
    baseline_path = args.baseline or default_baseline()
    baseline = json.loads(baseline_path.read_text())["sets"] if baseline_path.is_file() else None
    verdict = landing_verdict(results, baseline)
    print(format_targets(results))
    print(format_verdict(verdict))
    if args.json:
        doc = {"weights": args.weights, "method": args.method, "precision": args.precision, "sets": results, "landing": verdict}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
