"""Plot PSNR gain against CPU-hours from training runs' log.jsonl.

    python bench/learning_curve.py /work/runs/lite-long --out docs/images/learning_curve.png
    python bench/learning_curve.py RUN_A RUN_B --label lite --label k3 --out /tmp/curves.png

Each run folder's ``log.jsonl`` holds one JSON object per line; lines with ``step`` and a
validation pair ``<set>_psnr`` / ``<set>_input_psnr`` (``val_psnr`` / ``val_input_psnr``;
optionally e.g. ``val_independent_psnr`` / ``val_independent_input_psnr``) are points, at
their own ``cpu_hours`` or, without one (as ``deblur train`` writes them), at the latest
earlier line's; other lines (training-loss lines, torn last lines of a running job) are skipped.
A run that was resumed may log a step twice: the later line wins. Gain = psnr - input_psnr (dB).
Colour = run, line style = set (solid: ``val``; dashed: other sets). Drawn with Pillow only.
It also prints each curve's last gain and its slope over the last two CPU-hours
(dB per CPU-hour), the stopping rule.

Weights are trained in stages (each run ``--init`` from the one before) and each run's log
restarts at 0 CPU-hours. ``--chain`` puts the runs end to end (run k starts where run k-1's
last point ended) and ``--history bench/data/weights_lineage.tsv`` adds the stages whose logs
are gone (columns ``stage``, ``cpu_hours``, ``set``, ``gain_db``, cumulative hours), so the x
axis is the total CPU time spent on the weights since training began:

    python bench/learning_curve.py RUN1 RUN2 --chain --history bench/data/weights_lineage.tsv
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = [
    (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75), (227, 119, 194)
]


@dataclass(frozen=True)
class Curve:
    """One run's gain on one validation set: ``points`` = sorted (cpu_hours, gain_db, step)."""

    run: str
    set_name: str
    points: tuple[tuple[float, float, int], ...]


def read_log(path: Path) -> list[dict]:
    """Parsed JSON objects of a log.jsonl; unparsable lines are skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def curves_from_log(records: list[dict], run: str) -> list[Curve]:
    """One curve per validation set found in ``records`` (``val`` first)."""
    by_set: dict[str, dict[int, tuple[float, float, int]]] = {}
    last_hours = None  # validation lines may lack cpu_hours: use the latest training line's
    for rec in records:
        step, hours = rec.get("step"), rec.get("cpu_hours")
        if _is_number(hours):
            last_hours = hours
        else:
            hours = last_hours
        if not _is_number(step) or not _is_number(hours):
            continue
        for key, value in rec.items():
            if not key.endswith("_psnr") or key.endswith("_input_psnr"):
                continue
            name = key[: -len("_psnr")]
            base = rec.get(f"{name}_input_psnr")
            if _is_number(value) and _is_number(base):
                by_set.setdefault(name, {})[int(step)] = (float(hours), float(value) - float(base), int(step))
    names = sorted(by_set, key=lambda n: (n != "val", n))
    return [Curve(run, n, tuple(sorted(by_set[n].values()))) for n in names]


def read_history(path: Path) -> list[Curve]:
    """Curves of earlier stages from a TSV (``stage cpu_hours set gain_db``; ``#`` lines are comments).

    Points of one stage and set form one curve; their hours are cumulative (x as plotted). Steps are
    unknown there and recorded as -1.
    """
    points: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    header = lines[0].split("\t") if lines else []
    if header[:4] != ["stage", "cpu_hours", "set", "gain_db"]:
        raise ValueError(f"{path}: expected the columns stage, cpu_hours, set, gain_db")
    for ln in lines[1:]:
        stage, hours, set_name, gain = ln.split("\t")[:4]
        points.setdefault((stage, set_name), []).append((float(hours), float(gain), -1))
    return [Curve(stage, set_name, tuple(sorted(pts))) for (stage, set_name), pts in points.items()]


def chain(curves_per_run: list[list[Curve]], start_hours: float = 0.0) -> list[Curve]:
    """Shift each run's curves so that run k starts where run k-1's latest point ended (cumulative CPU-hours)."""
    out: list[Curve] = []
    offset = start_hours
    for curves in curves_per_run:
        out += [Curve(c.run, c.set_name, tuple((h + offset, g, s) for h, g, s in c.points)) for c in curves]
        ends = [c.points[-1][0] for c in curves if c.points]
        if ends:
            offset += max(ends)
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def recent_slope(curve: Curve, window_hours: float = 2.0) -> float | None:
    """Least-squares slope (dB per CPU-hour) of the points in the last ``window_hours``; None if < 2 points."""
    if not curve.points:
        return None
    end = curve.points[-1][0]
    pts = [(h, g) for h, g, _ in curve.points if h >= end - window_hours]
    if len(pts) < 2:
        return None
    mx = sum(h for h, _ in pts) / len(pts)
    my = sum(g for _, g in pts) / len(pts)
    sxx = sum((h - mx) ** 2 for h, _ in pts)
    if sxx <= 0:
        return None
    return sum((h - mx) * (g - my) for h, g in pts) / sxx


# ---------------------------------------------------------------------------------------------
# Drawing


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    span = hi - lo if hi > lo else 1.0
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + 1e-9 * span:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def plot(
    curves: list[Curve], out: Path, title: str = "PSNR gain vs CPU-hours", size: tuple[int, int] = (960, 600)
) -> None:
    """Draw ``curves`` (x = CPU-hours, y = gain in dB) into a PNG at ``out``."""
    pts = [p for c in curves for p in c.points]
    if not pts:
        raise ValueError("no validation points to plot")
    w, h = size
    left, right, top, bottom = 80, 230, 50, 60
    x_lo, x_hi = 0.0, max(p[0] for p in pts) or 1.0
    y_lo, y_hi = min(0.0, min(p[1] for p in pts)), max(0.0, max(p[1] for p in pts))
    pad = 0.08 * (y_hi - y_lo or 1.0)
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * (w - left - right)

    def sy(y: float) -> float:
        return top + (y_hi - y) / (y_hi - y_lo) * (h - top - bottom)

    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    small, big = _font(14), _font(18)
    for t in _nice_ticks(x_lo, x_hi):
        draw.line([(sx(t), top), (sx(t), h - bottom)], fill=(230, 230, 230))
        draw.text((sx(t), h - bottom + 6), f"{t:g}", fill="black", font=small, anchor="ma")
    for t in _nice_ticks(y_lo, y_hi):
        draw.line([(left, sy(t)), (w - right, sy(t))], fill=(230, 230, 230))
        draw.text((left - 6, sy(t)), f"{t:+.2f}", fill="black", font=small, anchor="rm")
    draw.line([(left, sy(0.0)), (w - right, sy(0.0))], fill=(120, 120, 120), width=1)
    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    draw.text(((left + w - right) / 2, h - 22), "CPU-hours", fill="black", font=small, anchor="mm")
    draw.text((left - 70, top - 30), "PSNR gain (dB)", fill="black", font=small)
    draw.text(((left + w - right) / 2, 16), title, fill="black", font=big, anchor="mm")

    runs = list(dict.fromkeys(c.run for c in curves))
    y_legend = top
    for c in curves:
        colour = COLOURS[runs.index(c.run) % len(COLOURS)]
        dashed = c.set_name != "val"
        xy = [(sx(x), sy(y)) for x, y, _ in c.points]
        _polyline(draw, xy, colour, dashed)
        for x, y in xy:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colour)
        _polyline(draw, [(w - right + 12, y_legend + 8), (w - right + 40, y_legend + 8)], colour, dashed)
        draw.text((w - right + 46, y_legend), f"{c.run} {c.set_name}", fill="black", font=small)
        y_legend += 22
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    img.save(tmp, format="PNG")
    tmp.replace(out)


def _polyline(draw: ImageDraw.ImageDraw, xy: list[tuple[float, float]], colour, dashed: bool) -> None:
    if len(xy) < 2:
        return
    if not dashed:
        draw.line(xy, fill=colour, width=2)
        return
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):  # 8 px on, 5 px off along each segment
        length = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < length:
            end = min(pos + 8.0, length)
            a, b = pos / length, end / length
            start, end_pt = (x0 + a * (x1 - x0), y0 + a * (y1 - y0)), (x0 + b * (x1 - x0), y0 + b * (y1 - y0))
            draw.line([start, end_pt], fill=colour, width=2)
            pos += 13.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="run folders (with log.jsonl) or log.jsonl files")
    ap.add_argument("--label", action="append", help="legend name per run (default: folder name)")
    ap.add_argument("--out", type=Path, default=Path("docs/images/learning_curve.png"))
    ap.add_argument("--title", default="PSNR gain vs CPU-hours")
    ap.add_argument("--chain", action="store_true", help="runs are consecutive stages: put them end to end")
    ap.add_argument("--history", type=Path, help="TSV of earlier stages (stage, cpu_hours, set, gain_db)")
    args = ap.parse_args(argv)
    labels = args.label or []
    history = read_history(args.history) if args.history else []
    per_run: list[list[Curve]] = []
    for i, run in enumerate(args.runs):
        log = run / "log.jsonl" if run.is_dir() else run
        if not log.is_file():
            print(f"error: no log.jsonl in {run}", file=sys.stderr)
            return 2
        label = labels[i] if i < len(labels) else (run.name if run.is_dir() else run.parent.name)
        found = curves_from_log(read_log(log), label)
        if not found:
            print(f"warning: {log} has no validation lines yet", file=sys.stderr)
        per_run.append(found)
    start = max((c.points[-1][0] for c in history if c.points), default=0.0)
    if args.chain:
        curves = history + chain(per_run, start)
    else:
        curves = history + [c for found in per_run for c in found]
    if not curves:
        print("error: nothing to plot", file=sys.stderr)
        return 1
    plot(curves, args.out, args.title)
    for c in curves:
        hours, gain, step = c.points[-1]
        slope = recent_slope(c)
        rate = f"{slope:+.3f} dB/CPU-h over the last 2 CPU-h" if slope is not None else "slope n/a"
        print(f"{c.run} {c.set_name}: step {step}, {hours:.2f} CPU-h, gain {gain:+.3f} dB, {rate}")
    if args.chain or history:
        for set_name in dict.fromkeys(c.set_name for c in curves):
            merged = Curve("all stages", set_name, tuple(sorted(p for c in curves if c.set_name == set_name for p in c.points)))
            slope = recent_slope(merged)
            rate = f"{slope:+.3f} dB/CPU-h over the last 2 CPU-h" if slope is not None else "slope n/a"
            print(f"all stages {set_name}: {merged.points[-1][0]:.2f} CPU-h in all, {rate}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
