"""Make the README's pictures with the bundled weights (maintainers' tool).

    python bench/figures.py REAL_BLURRY_PHOTO

Writes docs/images/before_after.jpg (input | deblurred, side by side) and
docs/images/attention_summary.png (the `deblur attention-map` summary figure).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"


def _label(im: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 8 * len(text) + 10, 18), fill=(0, 0, 0))
    draw.text((5, 3), text, fill=(255, 255, 255))
    return im


def main(photo: Path) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "deblurred.png"
        subprocess.run([sys.executable, "-m", "deblur_cli", "image", str(photo), "-o", str(out), "--precision", "fp32"], check=True)
        before = Image.open(photo).convert("RGB")
        after = Image.open(out).convert("RGB")
        pair = Image.new("RGB", (before.width * 2 + 8, before.height), "white")
        pair.paste(_label(before, "blurry input"), (0, 0))
        pair.paste(_label(after, "deblur (bundled weights)"), (before.width + 8, 0))
        pair.save(IMAGES / "before_after.jpg", quality=92)
        maps = Path(tmp) / "maps"
        subprocess.run([sys.executable, "-m", "deblur_cli", "attention-map", str(photo), "-o", str(maps)], check=True)
        summary = next(maps.glob("*_attention_summary.png"))
        shutil.copyfile(summary, IMAGES / "attention_summary.png")
        diff = np.abs(np.asarray(after, dtype=np.float32) - np.asarray(before, dtype=np.float32)).mean()
        print(f"mean absolute change {diff:.2f}/255; wrote {IMAGES / 'before_after.jpg'} and attention_summary.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
