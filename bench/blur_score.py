"""How well does `deblur score` rank blur strength? Figures on a validation set (bench/data/val).

    python bench/blur_score.py [--data bench/data/val] [--threshold 0.35]

For every pair ``DIR/<photo>/{blur,sharp}/<name>.png`` it scores both images with
``deblur_cli.quality.score.blur_score`` (Crété-Roffet blur effect) and, as a baseline, with the
variance of the Laplacian (negated log, so that higher means blurrier too). Blur strength
ground truth: a sharp image is 0; a blurry one is its ``blur_px`` from ``DIR/pairs.tsv``
when the set has that manifest, else the PSNR its blur costs (lower input PSNR = stronger).
It prints, for each measure:

* own pairs: how often the blurry image scores above its own sharp original;
* all pairs: over every two images (of any photo) whose strengths differ, how often the
  score orders them as the strength does (a Kendall-style concordance; 0.5 is chance);
* at ``--threshold``: sharp images called blurry and blurry images called sharp.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

import numpy as np

from deblur_cli.files.image_io import load_image
from deblur_cli.quality.metrics import psnr
from deblur_cli.quality.score import DEFAULT_THRESHOLD, blur_score, luminance


def laplacian_blur(rgb: np.ndarray) -> float:
    """-log(variance of the 4-neighbour Laplacian of the luma): higher = blurrier."""
    g = luminance(rgb)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(-np.log(lap.var() + 1e-12))


def read_pairs(root: Path) -> list[tuple[str, Path, Path, float]]:
    """(name, blurry, sharp, strength) for every pair; strength as described above."""
    manifest = {}
    if (root / "pairs.tsv").is_file():
        with open(root / "pairs.tsv", newline="") as f:
            manifest = {row["name"]: float(row["blur_px"]) for row in csv.DictReader(f, delimiter="\t")}
    pairs = []
    for blurry in sorted(root.glob("*/blur/*.png")):
        sharp = blurry.parent.parent / "sharp" / blurry.name
        if manifest:
            strength = manifest[blurry.stem]
        else:
            strength = 100.0 - psnr(load_image(blurry).rgb, load_image(sharp).rgb)
        pairs.append((blurry.stem, blurry, sharp, strength))
    return pairs


def concordance(items: list[tuple[float, float]]) -> tuple[int, int]:
    """(correctly ordered, compared) over all pairs of (strength, score) with distinct strengths."""
    good = total = 0
    for (t1, s1), (t2, s2) in itertools.combinations(items, 2):
        if t1 == t2:
            continue
        total += 1
        good += (t1 > t2) == (s1 > s2)
    return good, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).parent / "data" / "val")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--per-image", action="store_true")
    args = ap.parse_args()
    pairs = read_pairs(args.data)
    truth = "blur_px from pairs.tsv" if (args.data / "pairs.tsv").is_file() else "PSNR lost to the blur"
    print(f"{len(pairs)} pairs in {args.data}; strength: {truth}")
    for label, measure in (("blur effect (deblur score)", blur_score), ("-log var(Laplacian)", laplacian_blur)):
        rows = [(name, strength, measure(load_image(b).rgb), measure(load_image(s).rgb)) for name, b, s, strength in pairs]
        own = sum(sb > ss for _, _, sb, ss in rows)
        items = [(st, sb) for _, st, sb, _ in rows] + [(0.0, ss) for _, _, _, ss in rows]
        good, total = concordance(items)
        bgood, btotal = concordance([(st, sb) for _, st, sb, _ in rows])
        print(f"\n{label}")
        print(f"  own pairs: blurry above its sharp original in {own}/{len(rows)} ({own / len(rows):.0%})")
        print(f"  all pairs (blurry and sharp images): {good}/{total} ordered by strength ({good / total:.1%})")
        print(f"  blurry images only: {bgood}/{btotal} ({bgood / max(btotal, 1):.1%})")
        if measure is blur_score:
            t = args.threshold
            sharp_hi = sum(ss > t for *_, ss in rows)
            blur_lo = sum(sb <= t for _, _, sb, _ in rows)
            print(f"  at threshold {t}: {sharp_hi}/{len(rows)} sharp images called blurry, {blur_lo}/{len(rows)} blurry called sharp")
        if args.per_image:
            for name, st, sb, ss in rows:
                print(f"    {name:45s} strength {st:7.2f}  blurry {sb:.3f}  sharp {ss:.3f}")


if __name__ == "__main__":
    main()
