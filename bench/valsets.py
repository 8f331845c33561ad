"""Shared pieces of the validation-set generators (bench/make_val.py, bench/independent_blur.py).

A validation set is a GoPro-layout folder that ``deblur evaluate --data`` reads,
``DIR/<photo>/{blur,sharp}/<photo>_<k>_<class>.png``, plus a manifest ``DIR/pairs.tsv`` with one
row per pair: ``name, photo, class, strength, blur_px, input_psnr`` (``strength`` is the
generator's own strength parameter; ``blur_px`` the camera blur extent in pixels, where known).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deblur_cli.data.datasets import sharp_photos
from deblur_cli.files.image_io import load_image, save_image
from deblur_cli.quality.metrics import psnr

CLASSES: tuple[str, ...] = ("mild", "medium", "strong")
MANIFEST = "pairs.tsv"


@dataclass(frozen=True)
class PairRow:
    """One manifest row. ``name`` is the file stem shared by blur/ and sharp/ images."""

    name: str
    photo: str
    cls: str
    strength: float
    blur_px: float
    input_psnr: float


def photos(folder: Path) -> list[Path]:
    """The sharp photos of ``folder`` in sorted order (the order seeds are derived from)."""
    found = sharp_photos(Path(folder))
    if not found:
        raise SystemExit(f"no photos in {folder}")
    return found


def load_photo(path: Path) -> np.ndarray:
    """H x W x 3 float32 RGB in [0, 1]."""
    return load_image(Path(path)).rgb


def pick_crops(
    image: np.ndarray, size: int, margin: int, count: int, rng: np.random.Generator, tries: int = 24
) -> list[np.ndarray]:
    """``count`` random ``(size + 2 margin)``-square regions of ``image`` that hold some detail.

    Flat crops (sky, walls) say little about deblurring and give near-infinite PSNR, so each
    crop is the most detailed (mean absolute gradient) of ``tries`` random candidates whose
    centres are kept apart from the crops already chosen where the photo allows it.
    Images smaller than the region are reflect-padded.
    """
    side = size + 2 * margin
    h, w, _ = image.shape
    if h < side or w < side:
        ph, pw = max(0, side - h), max(0, side - w)
        image = np.pad(image, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="reflect")
        h, w, _ = image.shape
    chosen: list[tuple[int, int]] = []
    crops = []
    for _ in range(count):
        best, best_score = (0, 0), -1.0
        for _ in range(tries):
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            inner = image[y + margin : y + margin + size, x + margin : x + margin + size]
            detail = float(np.abs(np.diff(inner, axis=0)).mean() + np.abs(np.diff(inner, axis=1)).mean())
            apart = min((max(abs(y - cy), abs(x - cx)) for cy, cx in chosen), default=side)
            score = detail * min(1.0, 0.25 + apart / side)  # prefer new areas of the photo
            if score > best_score:
                best, best_score = (y, x), score
        chosen.append(best)
        y, x = best
        crops.append(np.ascontiguousarray(image[y : y + side, x : x + side]))
    return crops


def write_pair(out_dir: Path, photo: str, name: str, blurry: np.ndarray, sharp: np.ndarray) -> float:
    """Write both images as 8-bit PNG and return the input PSNR of the written (rounded) pair."""
    blurry8 = _to8(blurry)
    sharp8 = _to8(sharp)
    for sub, img in (("blur", blurry8), ("sharp", sharp8)):
        folder = Path(out_dir) / photo / sub
        folder.mkdir(parents=True, exist_ok=True)
        save_image(img, folder / f"{name}.png", overwrite=True)  # regenerating a set replaces it
    return float(psnr(blurry8, sharp8))


def _to8(img: np.ndarray) -> np.ndarray:
    """Round to 8 bits (what is stored), as float32 in [0, 1]."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).astype(np.float32) / 255.0


def write_manifest(out_dir: Path, rows: Iterable[PairRow]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(["name", "photo", "class", "strength", "blur_px", "input_psnr"])
    for r in rows:
        writer.writerow([r.name, r.photo, r.cls, f"{r.strength:.4f}", f"{r.blur_px:.2f}", f"{r.input_psnr:.3f}"])
    (Path(out_dir) / MANIFEST).write_text(buf.getvalue())


def read_manifest(data_dir: Path) -> dict[str, PairRow]:
    """Manifest rows by pair name; empty when the folder has no manifest."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return {}
    rows = {}
    with path.open(newline="") as f:
        for rec in csv.DictReader(f, delimiter="\t"):
            rows[rec["name"]] = PairRow(
                name=rec["name"],
                photo=rec["photo"],
                cls=rec["class"],
                strength=float(rec["strength"]),
                blur_px=float(rec["blur_px"]),
                input_psnr=float(rec["input_psnr"]),
            )
    return rows


def check_empty(out_dir: Path) -> None:
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SystemExit(f"{out_dir} is not empty; remove it or choose another folder")


def summary(rows: list[PairRow]) -> str:
    """One line per class: count and mean input PSNR (for the generators' output)."""
    lines = []
    for cls in CLASSES:
        sel = [r.input_psnr for r in rows if r.cls == cls]
        if sel:
            spread = f"min {min(sel):.2f}, max {max(sel):.2f}"
            lines.append(f"{cls:7s} n={len(sel):3d} input PSNR mean {np.mean(sel):.2f} dB ({spread})")
    return "\n".join(lines)



# ---------------------------------------------------------------------------------------------
# Sets made from another set's sharp crops (bench/validate.py's "noise alone" and "do no harm")

#: Realistic sensor noise for the "noise alone" job: Poisson shot noise in linear light
#: (photo-electrons at white, log-uniform: dim indoor to daylight) plus Gaussian read noise.
NOISE_PHOTONS_AT_WHITE: tuple[float, float] = (500.0, 8000.0)
NOISE_READ_E: tuple[float, float] = (1.0, 4.0)


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def add_sensor_noise(sharp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``sharp`` (sRGB in [0, 1]) with Poisson-Gaussian noise added in linear light, sRGB out."""
    lo, hi = NOISE_PHOTONS_AT_WHITE
    white = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    read = rng.uniform(*NOISE_READ_E)
    lin = np.clip(_srgb_to_linear(sharp.astype(np.float64)), 0.0, 1.0)
    electrons = rng.poisson(lin * white) + rng.normal(0.0, read, lin.shape)
    return _linear_to_srgb(electrons / white).astype(np.float32)


def derived_set(source: Path, out_dir: Path, kind: str, seed: int = 0) -> Path:
    """Write a set whose targets are ``source``'s sharp crops and whose inputs are those crops
    with realistic noise (``kind="noise"``) or unchanged (``kind="harm"``). Seeded per pair name,
    so the same noise comes back every run. Returns ``out_dir`` (with a copy of the manifest)."""
    import zlib

    from deblur_cli.data.datasets import find_pairs

    if kind not in ("noise", "harm"):
        raise ValueError(f"unknown derived set {kind!r}")
    manifest = read_manifest(source)
    rows = []
    for pair in find_pairs(source):
        sharp = load_photo(pair.sharp)
        rng = np.random.default_rng([seed, zlib.crc32(pair.name.encode())])
        inp = add_sensor_noise(sharp, rng) if kind == "noise" else sharp
        ipsnr = write_pair(out_dir, pair.sequence, pair.name, inp, sharp)
        meta = manifest.get(pair.name)
        rows.append(PairRow(pair.name, pair.sequence, meta.cls if meta else "unknown", 0.0, 0.0, ipsnr))
    write_manifest(out_dir, rows)
    return out_dir
