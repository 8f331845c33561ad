"""Deterministic data feeding for training.

Sample ``k`` of a run (k = global sample counter) is produced by seeding every RNG
from ``(seed, k)`` before the dataset is asked for it, so a resumed run sees exactly
the data an uninterrupted run would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from deblur_cli.errors import DataError
from deblur_cli.training.config import TrainConfig


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sample_seed(seed: int, k: int) -> int:
    """A well-mixed 63-bit seed for sample k of a run (SplitMix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + k + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 1


class SeededSamples(Dataset):
    """Wraps a dataset so item ``k`` is drawn with every RNG seeded from (seed, k).

    The wrapped index cycles through a per-epoch permutation, also seeded, so
    the stream of samples is a pure function of k.
    """

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base = base
        self.seed = seed
        self.n = len(base)  # type: ignore[arg-type]
        if self.n == 0:
            raise DataError("the training dataset is empty")

    def __len__(self) -> int:
        return 2**62

    def base_index(self, k: int) -> int:
        epoch, pos = divmod(k, self.n)
        perm = np.random.default_rng(sample_seed(self.seed, -1 - epoch)).permutation(self.n)
        return int(perm[pos])

    def __getitem__(self, k: int):
        seed_all(sample_seed(self.seed, k))
        return self.base[self.base_index(k)]


class StepSampler(Sampler[int]):
    """Yields the global sample indices this rank needs from ``start_step`` on."""

    def __init__(self, start_step: int, batch: int, rank: int = 0, world: int = 1) -> None:
        self.start_step, self.batch, self.rank, self.world = start_step, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            step += 1

    def __len__(self) -> int:
        return 2**62


def open_datasets(data: Path, cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """Training dataset and an optional validation dataset (--val-data, or a held-out part of --data)."""
    from deblur_cli.data import datasets

    train_ds = datasets.open_training_dataset(
        Path(data), crop=cfg.crop, blur_folder=cfg.blur_folder, synthesis=cfg.synthesis_config(), seed=cfg.seed
    )
    if cfg.val_data:
        return train_ds, validation_pairs(Path(cfg.val_data), cfg.blur_folder)
    if cfg.val_fraction <= 0:
        return train_ds, None
    return split_holdout(train_ds, cfg.val_fraction, cfg.seed)


def split_holdout(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out ``fraction`` of the photos or pairs (at least one, never all) for validation."""
    items = getattr(ds, "photos", None)
    if items is None:
        items = getattr(ds, "pairs", None)
    if items is None or len(items) < 2:
        return ds, None
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = min(len(items) - 1, max(1, round(fraction * len(items))))
    val_items = [items[i] for i in sorted(order[:n_val])]
    train_items = [items[i] for i in sorted(order[n_val:])]
    return ds.subset(train_items), ds.subset(val_items, augment=False)  # type: ignore[attr-defined]  # both set kinds have it


def validation_pairs(folder: Path, blur_folder: str) -> Dataset:
    """A folder of blurry/sharp pairs as a validation set: whole images, no augmentation."""
    from deblur_cli.data import datasets

    return datasets.PairedDataset(datasets.find_pairs(folder, blur_folder), crop=None, augment=False)


def open_extra_val_sets(cfg: TrainConfig) -> dict[str, Dataset]:
    """``cfg.val_extra`` folders of pairs (see :func:`validation_pairs`), keyed by folder name."""
    return {Path(folder).name: validation_pairs(Path(folder), cfg.blur_folder) for folder in cfg.val_extra}
