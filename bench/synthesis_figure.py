"""Make docs/images/synthesis_variety.jpg: one blurry crop per variety option of the synthesis.

    python bench/synthesis_figure.py ../shared/data/photos/val/kphotoalbum_pool.jpg

The sharp crop first, then the same crop (fixed seeds, strength 0.8) blurred by each camera-path
family and option of ``deblur_cli.synthesis`` (docs/synthesis.md, "Variety"), without objects
unless the panel is about them, and without noise or JPEG unless the panel is about those.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from deblur_cli.files.image_io import load_image, to_uint8
from deblur_cli.synthesis import SynthesisConfig, synthesize

ROOT = Path(__file__).resolve().parent.parent
QUIET = dict(object_prob=0.0, noise_prob=0.0, jpeg_prob=0.0)
PANELS: list[tuple[str, dict]] = [
    ("walk", {}),
    ("line", dict(trajectory_weights=(0, 1, 0, 0))),
    ("tremor", dict(trajectory_weights=(0, 0, 1, 0))),
    ("jerk", dict(trajectory_weights=(0, 0, 0, 1))),
    ("discrete sub-frames", dict(discrete_prob=1.0)),
    ("zoom", dict(zoom_prob=1.0, max_zoom=0.1, max_shake_px=3.0)),
    ("spin", dict(spin_prob=1.0)),
    ("box object, turning", dict(object_prob=1.0, max_objects=1, object_shape_weights=(0, 1, 0),
                                 max_object_spin_deg=40.0, max_shake_px=2.0, max_rotation_deg=0.0)),
    ("star object", dict(object_prob=1.0, max_objects=1, object_shape_weights=(0, 0, 1),
                         max_shake_px=2.0, max_rotation_deg=0.0)),
    ("Poisson + sharpen + JPEG 50", dict(noise_prob=1.0, poisson_prob=1.0, photons_range=(200.0, 200.0),
                                         sharpen_prob=1.0, jpeg_prob=1.0, jpeg_quality=(50, 50))),
    ("gamma 1.0", dict(gamma_range=(1.0, 1.0))),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "synthesis_variety.jpg")
    ap.add_argument("--size", type=int, default=192)
    args = ap.parse_args()
    rgb = load_image(args.photo).rgb
    side = args.size + 64
    y, x = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
    region = torch.from_numpy(np.ascontiguousarray(rgb[y : y + side, x : x + side])).permute(2, 0, 1)
    tiles = [("sharp", region[:, 32:-32, 32:-32])]
    for k, (label, fields) in enumerate(PANELS):
        cfg = SynthesisConfig(**{**QUIET, **fields})
        blurry, _ = synthesize(region, np.random.default_rng([7, k]), cfg, strength=0.8, margin=32)
        tiles.append((label, blurry))
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * args.size, rows * args.size), "white")
    for i, (label, img) in enumerate(tiles):
        tile = Image.fromarray(to_uint8(img.permute(1, 2, 0).numpy()))
        draw = ImageDraw.Draw(tile)
        draw.rectangle((0, 0, 7 * len(label) + 10, 16), fill=(0, 0, 0))
        draw.text((5, 2), label, fill=(255, 255, 255))
        sheet.paste(tile, ((i % cols) * args.size, (i // cols) * args.size))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
