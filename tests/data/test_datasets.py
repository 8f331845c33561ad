"""Tests for deblur_cli.data.datasets: layout detection and its errors, pairing, crops, on-the-fly blur."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deblur_cli.data.datasets import (
    EXPECTED,
    PairedDataset,
    SharpFolderDataset,
    detect_layout,
    find_pairs,
    open_training_dataset,
)
from deblur_cli.errors import DataError
from deblur_cli.synthesis import SynthesisConfig

SMALL = SynthesisConfig(margin=8, max_shake_px=6.0, max_object_px=6.0)


def write_image(path: Path, w: int = 40, h: int = 30, seed: int = 0, ext_format: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=ext_format)
    return path


def make_gopro(
    root: Path, seqs: tuple[str, ...] = ("GOPR0001", "GOPR0002"), frames: int = 2, blur_folder: str = "blur"
) -> Path:
    for s, seq in enumerate(seqs):
        for f in range(frames):
            name = f"{f:06d}.png"
            write_image(root / seq / blur_folder / name, seed=10 * s + f)
            write_image(root / seq / "sharp" / name, seed=100 + 10 * s + f)
    return root


def make_flat(root: Path, names: tuple[str, ...] = ("a", "b", "c")) -> Path:
    for i, name in enumerate(names):
        write_image(root / "blur" / f"{name}.png", seed=i)
        write_image(root / "sharp" / f"{name}.png", seed=50 + i)
    return root


# --- layout detection -------------------------------------------------------------------------


def test_detects_gopro_flat_and_sharp(tmp_path: Path) -> None:
    assert detect_layout(make_gopro(tmp_path / "gopro")) == "gopro"
    assert detect_layout(make_flat(tmp_path / "flat")) == "flat"
    photos = tmp_path / "photos"
    write_image(photos / "x.jpg", ext_format="JPEG")
    write_image(photos / "nested" / "y.png")
    assert detect_layout(photos) == "sharp"


def test_empty_or_missing_folder_names_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    for root in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(DataError) as info:
            detect_layout(root)
        assert EXPECTED in str(info.value) and str(root) in str(info.value)
    assert "GoPro" in EXPECTED and "flattened" in EXPECTED and "sharp photos" in EXPECTED


def test_blur_sharp_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    root = make_flat(tmp_path / "flat")
    (root / "sharp" / "c.png").unlink()
    write_image(root / "sharp" / "d.png")
    with pytest.raises(DataError) as info:
        find_pairs(root)
    msg = str(info.value)
    assert "do not match" in msg and "c.png" in msg and "2 unmatched" in msg


def test_missing_half_of_a_layout_is_an_error_not_a_photo_folder(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    write_image(flat / "sharp" / "a.png")
    with pytest.raises(DataError, match="no blur/ folder"):
        detect_layout(flat)
    gopro = make_gopro(tmp_path / "gopro")  # has blur/, not blur_gamma/
    with pytest.raises(DataError, match="no blur_gamma/ folder") as info:
        detect_layout(gopro, blur_folder="blur_gamma")
    assert EXPECTED in str(info.value)


def test_find_pairs_gopro_matches_by_name_and_sequence(tmp_path: Path) -> None:
    root = make_gopro(tmp_path / "gopro", frames=3)
    pairs = find_pairs(root)
    assert len(pairs) == 6
    assert [p.sequence for p in pairs] == ["GOPR0001"] * 3 + ["GOPR0002"] * 3
    for p in pairs:
        assert p.blur.parent.name == "blur" and p.sharp.parent.name == "sharp"
        assert p.blur.name == p.sharp.name and p.name == p.blur.stem


def test_blur_gamma_option(tmp_path: Path) -> None:
    root = make_gopro(tmp_path / "gopro", blur_folder="blur")
    for seq in ("GOPR0001", "GOPR0002"):
        for f in range(2):
            write_image(root / seq / "blur_gamma" / f"{f:06d}.png", seed=900 + f)
    linear = find_pairs(root)
    gamma = find_pairs(root, blur_folder="blur_gamma")
    assert len(gamma) == len(linear) == 4
    assert all(p.blur.parent.name == "blur_gamma" for p in gamma)
    assert [p.sharp for p in gamma] == [p.sharp for p in linear]


def test_flat_pairs_and_empty_pair_folders(tmp_path: Path) -> None:
    pairs = find_pairs(make_flat(tmp_path / "flat"))
    assert [p.name for p in pairs] == ["a", "b", "c"] and pairs[0].sequence == "flat"
    (tmp_path / "empty" / "blur").mkdir(parents=True)
    (tmp_path / "empty" / "sharp").mkdir()
    with pytest.raises(DataError, match="no image pairs"):
        find_pairs(tmp_path / "empty")
    photos = tmp_path / "photos"
    write_image(photos / "x.png")
    with pytest.raises(DataError, match="sharp photos only"):
        find_pairs(photos)


# --- paired dataset ---------------------------------------------------------------------------


def test_paired_dataset_random_crops_and_flips(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    sharp = write_image(root / "sharp" / "a.png", w=64, h=48, seed=1)
    (root / "blur").mkdir()
    (root / "blur" / "a.png").write_bytes(sharp.read_bytes())
    ds = PairedDataset(find_pairs(root), crop=32)
    torch.manual_seed(0)
    seen = set()
    for _ in range(8):
        blur, target = ds[0]
        assert blur.shape == target.shape == (3, 32, 32) and blur.dtype == torch.float32
        assert torch.equal(blur, target)  # identical files: crop and flips applied to both alike
        seen.add(blur.sum().item())
    assert len(seen) > 1  # crops vary


def test_paired_dataset_centre_crop_full_size_and_padding(tmp_path: Path) -> None:
    root = make_flat(tmp_path / "flat", names=("a",))
    pairs = find_pairs(root)
    full = PairedDataset(pairs, crop=None, augment=False)[0][1]
    assert full.shape == (3, 30, 40)
    centre = PairedDataset(pairs, crop=16, augment=False)[0][1]
    assert torch.equal(centre, full[:, 7:23, 12:28])
    padded = PairedDataset(pairs, crop=64, augment=True)[0]
    assert padded[0].shape == padded[1].shape == (3, 64, 64)


def test_paired_dataset_size_mismatch_and_bad_file(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    write_image(root / "blur" / "a.png", w=40, h=30)
    write_image(root / "sharp" / "a.png", w=41, h=30)
    with pytest.raises(DataError, match="sizes differ"):
        PairedDataset(find_pairs(root), crop=16)[0]
    (root / "blur" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image"):
        PairedDataset(find_pairs(root), crop=16)[0]


# --- photos blurred on the fly ----------------------------------------------------------------


def photo_folder(root: Path) -> Path:
    write_image(root / "big.jpg", w=120, h=90, seed=1, ext_format="JPEG")
    write_image(root / "sub" / "tiny.png", w=20, h=12, seed=2)  # smaller than the crop
    return root


def test_sharp_folder_dataset_shapes_and_reproducibility(tmp_path: Path) -> None:
    root = photo_folder(tmp_path / "photos")
    ds = SharpFolderDataset(root, crop=48, cfg=SMALL, samples_per_epoch=12, seed=3)
    assert len(ds) == 12 and len(ds.photos) == 2
    torch.manual_seed(0)  # augmenting samples also draw from torch's RNG (seeded per sample in training)
    samples = [ds[i] for i in range(12)]  # covers both photos, including the tiny one
    for blur, sharp in samples:
        assert blur.shape == sharp.shape == (3, 48, 48) and blur.dtype == torch.float32
        assert float(blur.min()) >= 0.0 and float(blur.max()) <= 1.0
    again = SharpFolderDataset(root, crop=48, cfg=SMALL, samples_per_epoch=12, seed=3)
    torch.manual_seed(0)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(samples, (again[i] for i in range(12))))
    other = SharpFolderDataset(root, crop=48, cfg=SMALL, samples_per_epoch=12, seed=4)
    torch.manual_seed(0)
    assert not all(torch.equal(a[0], other[i][0]) for i, a in enumerate(samples))
    assert not torch.equal(samples[0][0], samples[1][0])
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], samples[0][0])  # a new epoch gives new samples
    assert len(ds._cache) == 2  # decoded once, then served from memory


def test_sharp_folder_dataset_blurs(tmp_path: Path) -> None:
    root = photo_folder(tmp_path / "photos")
    cfg = SynthesisConfig(margin=8, strength=(1.0, 1.0), none_prob=0.0, noise_prob=0.0, jpeg_prob=0.0)
    ds = SharpFolderDataset(root, crop=48, cfg=cfg, samples_per_epoch=4, seed=0, augment=False)
    blur, sharp = ds[0]
    assert not torch.allclose(blur, sharp, atol=1e-3)
    assert torch.equal(ds[0][0], blur)  # without augment a sample depends on (seed, index) only


def test_sharp_folder_dataset_with_dataloader_workers(tmp_path: Path) -> None:
    root = photo_folder(tmp_path / "photos")
    ds = SharpFolderDataset(root, crop=32, cfg=SMALL, samples_per_epoch=4, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2 and batches[0][0].shape == (2, 3, 32, 32)


def test_open_training_dataset_picks_by_layout(tmp_path: Path) -> None:
    assert isinstance(open_training_dataset(make_flat(tmp_path / "flat"), crop=16), PairedDataset)
    assert isinstance(open_training_dataset(make_gopro(tmp_path / "gopro"), crop=16), PairedDataset)
    ds = open_training_dataset(photo_folder(tmp_path / "photos"), crop=32, synthesis=SMALL, seed=5)
    assert isinstance(ds, SharpFolderDataset) and ds.seed == 5 and ds[0][0].shape == (3, 32, 32)
    with pytest.raises(DataError):
        SharpFolderDataset(tmp_path / "flat" / "nothing-here")
