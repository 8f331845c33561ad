"""Make the validation set bench/data/val with the project's own blur synthesis.

    python bench/make_val.py ../shared/data/photos/val bench/data/val --size 384 --seed 0

Each photo gives one crop per strength class (mild, medium, strong; the ranges are
``deblur_cli.synthesis.STRENGTH_CLASSES``), blurred by ``deblur_cli.synthesis.synthesize``
with the default ``SynthesisConfig`` restricted to that class. Pairs of photo ``i`` depend only
on ``(seed, i)``. Writes ``OUT/<photo>/{blur,sharp}/<photo>_<k>_<class>.png`` and ``OUT/pairs.tsv``.
``--clean`` writes the noise-free twin (same crops, same blur, no noise or JPEG):
``python bench/make_val.py ../shared/data/photos/val bench/data/val_clean --seed 0 --clean``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import valsets

from deblur_cli.synthesis import SynthesisConfig, config_for_class, sample_strength, synthesize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean", action="store_true", help="the noise-free twin: same crops and blur, no noise or JPEG")
    args = ap.parse_args()
    torch.set_num_threads(1)
    valsets.check_empty(args.out)

    base = SynthesisConfig()
    rows = []
    for i, path in enumerate(valsets.photos(args.photos)):
        rng = np.random.default_rng([args.seed, i])
        image = valsets.load_photo(path)
        crops = valsets.pick_crops(image, args.size, base.margin, len(valsets.CLASSES), rng)
        classes = [valsets.CLASSES[j] for j in rng.permutation(len(valsets.CLASSES))]  # crop 0 is the most detailed
        for k, (cls, region) in enumerate(zip(classes, crops)):
            cfg = config_for_class(base, cls)
            strength = sample_strength(rng, cfg)
            chw = torch.from_numpy(region).permute(2, 0, 1).contiguous()
            blurry, target = synthesize(chw, rng, cfg, strength, margin=base.margin, degrade=not args.clean)
            name = f"{path.stem}_{k}_{cls}"
            ipsnr = valsets.write_pair(
                args.out, path.stem, name, blurry.permute(1, 2, 0).numpy(), target.permute(1, 2, 0).numpy()
            )
            rows.append(valsets.PairRow(name, path.stem, cls, strength, strength * cfg.max_shake_px, ipsnr))
            print(f"{name}: strength {strength:.3f}, input PSNR {ipsnr:.2f} dB", flush=True)
    valsets.write_manifest(args.out, rows)
    print(valsets.summary(rows))


if __name__ == "__main__":
    main()
