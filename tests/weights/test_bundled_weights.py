"""The weights shipped in weights/ load, match their sha256 and really deblur."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deblur_cli.files.image_io import load_image
from deblur_cli.methods import InferenceOptions
from deblur_cli.network.engine import Engine
from deblur_cli.quality.metrics import psnr
from deblur_cli.weights import default_weights_name, get_entry, load_model, sha256_file, weights_dir

VAL = Path(__file__).resolve().parents[2] / "bench" / "data" / "val"


def test_default_weights_are_registered_and_intact():
    name = default_weights_name()
    assert name is not None, "no bundled weights registered"
    entry = get_entry(name)
    path = weights_dir() / entry.file
    assert sha256_file(path) == entry.sha256
    model, info = load_model(None)
    assert info.sha256 == entry.sha256 and model.config == entry.config
    assert entry.licence and entry.provenance


def test_bundled_weights_bring_a_blurry_crop_closer_to_sharp():
    # One strongly blurred synthetic pair of bench/data/val (bench/make_val.py), cropped for speed.
    seq = VAL / "kphotoalbum_grand_canyon_2"
    blur = load_image(seq / "blur" / "kphotoalbum_grand_canyon_2_0_strong.png").rgb[:128, :128]
    sharp = load_image(seq / "sharp" / "kphotoalbum_grand_canyon_2_0_strong.png").rgb[:128, :128]
    model, _ = load_model(None)
    out = Engine(model, InferenceOptions(device="cpu", precision="fp32")).run(np.ascontiguousarray(blur))
    assert out.shape == blur.shape
    assert psnr(out, sharp) > psnr(blur, sharp)
