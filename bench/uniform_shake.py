"""The uniform-shake set: one curved camera-shake kernel over each whole crop, 5 to 45 px.

    python bench/uniform_shake.py ../shared/data/photos/val ~/.cache/deblur/val_cross_photos \\
        bench/data/uniform_shake --size 384 --seed 0

Hand-held camera shake is often close to one blur kernel over the whole frame. This set scores
exactly that case, for the network and for the kernel method (``--method kernel``), on its own
photos (the validation photos and the ``val_cross`` sources; never a training photo and never
the sources reserved for independent evaluation) and its own kernels, which share no code with
``deblur_cli.synthesis`` or ``bench/independent_blur.py``:

* path: the camera's image-plane offset over the exposure is the double integral of a smoothed
  random acceleration plus a constant drift, sampled at 2,048 instants (a box shutter), so the
  trace runs from almost straight to curled, with the speed changes of a real hand (dense where
  the camera turns); it is scaled so that the larger side of its bounding box is the extent;
* kernel: the samples splatted bilinearly on a grid, normalised to sum 1 and centred on its
  centre of mass (the blurred crop is not shifted, so PSNR against the sharp crop is fair);
* exposure: the crop (plus a margin it blurs in from) convolved with the kernel in linear light
  (exact sRGB curve); light sensor noise (Poisson, 4,000-40,000 photo-electrons at white, plus
  1-3 e- Gaussian read noise); 8-bit sRGB PNG, no JPEG.

Classes by extent: mild 5-15 px, medium 15-30 px, strong 30-45 px, one crop of each per photo
(classes permuted per photo). Writes the GoPro layout ``deblur evaluate`` reads,
``OUT/<photo>/{blur,sharp}/<photo>_<k>_<class>.png``, the kernels as float32 arrays
(``OUT/<photo>/kernel/<name>.npy``, sum 1, the kernel's row 0 on top), and ``OUT/pairs.tsv`` (``strength`` = extent / 45 px).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import valsets

EXTENT_CLASSES: dict[str, tuple[float, float]] = {"mild": (5.0, 15.0), "medium": (15.0, 30.0), "strong": (30.0, 45.0)}
MAX_EXTENT_PX = 45.0
MARGIN = 32  # context the crop is blurred in from: more than half the largest kernel
SAMPLES = 2048
PHOTONS_AT_WHITE = (4000.0, 40000.0)
READ_NOISE_E = (1.0, 3.0)


def shake_path(rng: np.random.Generator, extent_px: float) -> np.ndarray:
    """(SAMPLES, 2) image-plane offsets (x, y) of one exposure; the larger bounding-box side is ``extent_px``."""
    white = rng.standard_normal((SAMPLES + 400, 2))
    width = rng.uniform(40.0, 200.0)  # smoothing of the acceleration, in samples: small = more curls
    taps = np.exp(-0.5 * (np.arange(-600, 601) / width) ** 2)
    accel = np.stack([np.convolve(white[:, i], taps, mode="same") for i in range(2)], axis=1)[200:-200]
    velocity = np.cumsum(accel, axis=0)
    velocity /= max(float(np.abs(velocity).max()), 1e-12)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    drift = rng.uniform(0.0, 1.5) * np.array([math.cos(angle), math.sin(angle)])
    path = np.cumsum(velocity + drift, axis=0)
    path -= path.mean(axis=0)
    side = float(np.ptp(path, axis=0).max())
    return path * (extent_px / max(side, 1e-9))


def rasterise(path: np.ndarray) -> np.ndarray:
    """The kernel of a path: bilinear splats on an odd square grid, sum 1, centre of mass at the centre."""
    for _ in range(2):  # re-centre on the centre of mass of the rasterised kernel, then splat again
        half = int(math.ceil(float(np.abs(path).max()))) + 2
        side = 2 * half + 1
        kernel = np.zeros((side, side))
        xs, ys = path[:, 0] + half, path[:, 1] + half
        x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
        fx, fy = xs - x0, ys - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            np.add.at(kernel, (y0 + dy, x0 + dx), w)
        kernel /= kernel.sum()
        grid = np.arange(side) - half
        com = np.array([(kernel.sum(0) * grid).sum(), (kernel.sum(1) * grid).sum()])
        path = path - com
    return kernel


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def blur_region(region: np.ndarray, kernel: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The centre ``size`` square of ``region`` (sRGB, side ``size + 2 MARGIN``) blurred by ``kernel``, with noise."""
    lin = torch.from_numpy(srgb_to_linear(region.astype(np.float64))).permute(2, 0, 1)[:, None]
    k = torch.from_numpy(kernel[::-1, ::-1].copy())[None, None]  # conv2d correlates: flip for a convolution
    blurred = F.conv2d(lin, k).squeeze(1).permute(1, 2, 0).numpy()
    off = (blurred.shape[0] - size) // 2
    blurred = blurred[off : off + size, off : off + size]
    white = math.exp(rng.uniform(*np.log(PHOTONS_AT_WHITE)))
    read = rng.uniform(*READ_NOISE_E)
    electrons = rng.poisson(np.clip(blurred, 0.0, 1.0) * white) + rng.normal(0.0, read, blurred.shape)
    return linear_to_srgb(electrons / white).astype(np.float32)


def save_kernel(out_dir: Path, photo: str, name: str, kernel: np.ndarray) -> None:
    folder = out_dir / photo / "kernel"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}.npy", kernel.astype(np.float32))


def load_kernel(path: Path) -> np.ndarray:
    """A kernel written by this script (float64, sum 1)."""
    kernel = np.load(Path(path)).astype(np.float64)
    return kernel / kernel.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+", help="photo folders, then the output folder")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    *folders, out = args.folders
    if not folders:
        ap.error("give at least one photo folder and the output folder")
    torch.set_num_threads(1)
    valsets.check_empty(out)
    rows = []
    paths = [p for folder in folders for p in valsets.photos(folder)]
    for i, photo in enumerate(paths):
        rng = np.random.default_rng([args.seed, 2_000_003, i])  # never the other sets' streams
        crops = valsets.pick_crops(valsets.load_photo(photo), args.size, MARGIN, len(valsets.CLASSES), rng)
        classes = [valsets.CLASSES[j] for j in rng.permutation(len(valsets.CLASSES))]
        for k, (cls, region) in enumerate(zip(classes, crops)):
            extent = rng.uniform(*EXTENT_CLASSES[cls])
            kernel = rasterise(shake_path(rng, extent))
            blurry = blur_region(region, kernel, args.size, rng)
            sharp = region[MARGIN : MARGIN + args.size, MARGIN : MARGIN + args.size]
            name = f"{photo.stem}_{k}_{cls}"
            ipsnr = valsets.write_pair(out, photo.stem, name, blurry, sharp)
            save_kernel(out, photo.stem, name, kernel)
            rows.append(valsets.PairRow(name, photo.stem, cls, extent / MAX_EXTENT_PX, extent, ipsnr))
            print(f"{name}: kernel {kernel.shape[0]} px, extent {extent:.1f} px, input PSNR {ipsnr:.2f} dB", flush=True)
    valsets.write_manifest(out, rows)
    print(valsets.summary(rows))


if __name__ == "__main__":
    main()
