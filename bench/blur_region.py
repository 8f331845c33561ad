"""Does `deblur score` see one motion-blurred object in a sharp photo? Figures on synthetic cases.

    python bench/blur_region.py [--photos ../shared/data/photos/val] [--threshold 0.35] [--seed 1]

For each sharp photo of ``--photos``: its whole-frame blur score and its blurriest region
(``deblur_cli.quality.score.measure``); then three copies in which one region (22% of the
width and of the height, on the busiest of 20 random places: a moving object has edges) is
motion-blurred by L = 9, 17 and 25 px along a random direction and pasted back with a
feathered edge, as a car crossing a still street. It prints, for the sharp photos and for
each L, how many the whole-frame rule alone calls blurry (score > threshold) and how many the
rule with the region does (or region > threshold + REGION_MARGIN), and the scores themselves.
The blur is made here with numpy (no scipy), sub-pixel shifts by linear interpolation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deblur_cli.files.image_io import load_image
from deblur_cli.quality.regions import REGION_MARGIN
from deblur_cli.quality.score import DEFAULT_THRESHOLD, measure

LENGTHS = (9, 17, 25)
REGION_FRACTION = 0.22
ROOT = Path(__file__).resolve().parent.parent


def shifted(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``img`` moved by (dy, dx) pixels, edges repeated, bilinear between pixels."""
    h, w = img.shape[:2]
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """The average of the image moved along a line of ``length`` px at ``angle``."""
    steps = np.linspace(-length / 2, length / 2, int(length) + 1)
    return np.mean([shifted(img, t * np.sin(angle), t * np.cos(angle)) for t in steps], axis=0)


def feathered(mask: np.ndarray, radius: int = 4) -> np.ndarray:
    """A 0/1 mask with its edge softened by a box average of ``2 radius + 1`` px, twice."""
    out = mask.astype(np.float32)
    for axis in (0, 1, 0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        csum = np.cumsum(padded, axis=axis, dtype=np.float64)
        csum = np.concatenate([np.zeros_like(np.take(csum, [0], axis=axis)), csum], axis=axis)
        n = 2 * radius + 1
        out = ((np.take(csum, range(n, csum.shape[axis]), axis=axis) - np.take(csum, range(0, csum.shape[axis] - n), axis=axis)) / n).astype(np.float32)
    return out


def blur_one_region(rgb: np.ndarray, rng: np.random.Generator, length: float) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``rgb`` with one busy region motion-blurred; the region (x, y, width, height)."""
    h, w = rgb.shape[:2]
    rh, rw = int(h * REGION_FRACTION), int(w * REGION_FRACTION)
    grey = rgb.mean(axis=2)
    detail = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    spots = [(int(rng.integers(0, h - rh)), int(rng.integers(0, w - rw))) for _ in range(20)]
    y, x = max(spots, key=lambda s: detail[s[0] : s[0] + rh, s[1] : s[1] + rw].mean())
    mask = np.zeros((h, w), bool)
    mask[y : y + rh, x : x + rw] = True
    alpha = feathered(mask)[..., None]
    blurred = motion_blur(rgb, length, float(rng.uniform(0, np.pi)))
    return (rgb * (1 - alpha) + blurred * alpha).astype(np.float32), (x, y, rw, rh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT.parent / "shared")
    parser.add_argument("--photos", type=Path, default=shared / "data" / "photos" / "val", help="sharp photos (*.jpg); default: the shared val photos next to the checkout")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t = args.threshold
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[tuple[float, float | None, bool]]] = {"sharp": [], **{f"L={n}": [] for n in LENGTHS}}
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        parser.error(f"no *.jpg photos in {args.photos}")
    for path in photos:
        rgb = load_image(path).rgb
        found = measure(rgb)
        rows["sharp"].append((found.score or 0.0, found.region.score if found.region else None, found.blurry(t)))
        line = [f"{path.name[:32]:32s} sharp {found.score:.3f} / {found.region.score if found.region else float('nan'):.3f}"]
        for n in LENGTHS:
            copy, _ = blur_one_region(rgb, rng, n)
            got = measure(copy)
            rows[f"L={n}"].append((got.score or 0.0, got.region.score if got.region else None, got.blurry(t)))
            line.append(f"L={n} {got.score:.3f} / {got.region.score if got.region else float('nan'):.3f}")
        print("  ".join(line), flush=True)
    print(f"\nwhole frame / blurriest region; threshold {t}, a region counts above {t + REGION_MARGIN:.2f}")
    for name, found in rows.items():
        whole = sum(score > t for score, _, _ in found)
        both = sum(blurry for _, _, blurry in found)
        print(f"{name:6s} called blurry: whole frame alone {whole}/{len(found)}, with the region {both}/{len(found)}")


if __name__ == "__main__":
    main()
