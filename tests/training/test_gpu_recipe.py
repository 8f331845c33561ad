"""The GPU recipe runs as shipped, so that a lent GPU's first minutes are not spent on a typo (issue 18, part 5).

``weights/paper-gpu.toml`` is run through the same code path as the documented command
(``--config weights/paper-gpu.toml --init k3-v2``) for two steps on CPU: every setting of the
file is used as written (network, crop, loss, data workers, synthesis, validation sets), except
the step count, the batch size and the number of validation samples, which only make it small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deblur_cli.training import build_config, export_weights, train
from deblur_cli.weights.load import load_model

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "weights" / "paper-gpu.toml"


def _photos(folder: Path, n: int = 3, size: int = 520) -> Path:
    """Textured photo-like images big enough for 256 px crops at the recipe's largest crop scale."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        low = Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        arr = np.asarray(low, dtype=np.float32) + rng.normal(0, 12, (size, size, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"p{i}.jpg", quality=92)
    return folder


def test_recipe_uses_the_training_mix_and_the_paper_network():
    cfg = build_config(RECIPE)
    assert (cfg.model.widths, cfg.model.kernel_size, cfg.crop, cfg.batch_size) == ((32, 64, 128), 5, 256, 16)
    # The GPU run must see the blur the bundled weights were trained on, not the plain default model.
    bundled = build_config(ROOT / "weights" / "k3-v2-cpu.toml")
    assert cfg.synthesis == bundled.synthesis
    assert cfg.workers >= 8


@pytest.mark.slow
def test_two_steps_of_the_gpu_recipe_on_cpu(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # val_data / val_extra are relative to the repository, as in the documented command
    cfg = build_config(RECIPE, steps=2, batch_size=2, val_samples=2)
    result, model = train(cfg, _photos(tmp_path / "photos"), tmp_path / "run", init="k3-v2", device="cpu")
    assert result.step == 2
    out = tmp_path / "paper.safetensors"
    export_weights(tmp_path / "run", out, dtype=torch.float16)
    _, info = load_model(str(out))
    assert info.config.kernel_size == 5 and info.config.widths == (32, 64, 128)
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert '"val_psnr"' in log and '"val_independent_psnr"' in log
