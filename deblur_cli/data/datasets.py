"""Training and evaluation datasets: GoPro layout, flattened layout, sharp photos blurred on the fly.

Layouts (detected by :func:`detect_layout`):

* ``gopro``: ``ROOT/<sequence>/{blur,sharp}/<frame>.png`` (``blur_folder`` picks e.g. ``blur_gamma``);
* ``flat``:  ``ROOT/{blur,sharp}/<name>.png``;
* ``sharp``: any folder (searched recursively) of sharp photos, blurred on the fly by
  :mod:`deblur_cli.synthesis`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from deblur_cli.errors import DataError
from deblur_cli.files.image_io import SUPPORTED_SUFFIXES, to_uint8
from deblur_cli.files.paths import is_hidden, walk_images
from deblur_cli.synthesis import SynthesisConfig, random_region, synthesize

IMAGE_EXTENSIONS = SUPPORTED_SUFFIXES  # the one list, kept under its old name here
SHARP_FOLDER = "sharp"
EXPECTED = "ROOT/<seq>/{blur,sharp}/ (GoPro), ROOT/{blur,sharp}/ (flattened) or a folder of sharp photos"


@dataclass(frozen=True)
class Pair:
    """One blurry/sharp pair on disk. ``sequence`` is the GoPro sequence (the root's name when flat)."""

    blur: Path
    sharp: Path
    sequence: str
    name: str  # file name without extension


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES and not is_hidden(path.name)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_image(p))


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p.name))


def sharp_photos(root: Path) -> list[Path]:
    """All image files under ``root`` (recursive, hidden files and folders skipped), sorted.

    :func:`deblur_cli.files.paths.walk_images`, the one folder walker.
    """
    return [p for p in walk_images(Path(root)).images if p.is_file()]


def detect_layout(root: Path, blur_folder: str = "blur") -> str:
    """Return ``"gopro"``, ``"flat"`` or ``"sharp"`` for a dataset folder; DataError if it is none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root} (expected {EXPECTED})")
    has_blur, has_sharp = (root / blur_folder).is_dir(), (root / SHARP_FOLDER).is_dir()
    if has_blur and has_sharp:
        return "flat"
    if has_blur != has_sharp:
        missing = SHARP_FOLDER if has_blur else blur_folder
        raise DataError(f"{root} has no {missing}/ folder (expected {EXPECTED})")
    seqs = [d for d in _subdirs(root) if (d / SHARP_FOLDER).is_dir() or (d / blur_folder).is_dir()]
    if seqs:
        for seq in seqs:
            if not ((seq / blur_folder).is_dir() and (seq / SHARP_FOLDER).is_dir()):
                missing = SHARP_FOLDER if (seq / blur_folder).is_dir() else blur_folder
                raise DataError(f"sequence {seq} has no {missing}/ folder (expected {EXPECTED})")
        return "gopro"
    if sharp_photos(root):
        return "sharp"
    raise DataError(f"no images found in {root} (expected {EXPECTED})")


def _match(blur_dir: Path, sharp_dir: Path, sequence: str) -> list[Pair]:
    """Pairs of files with the same name (extension ignored) in ``blur_dir`` and ``sharp_dir``."""
    blurs = _by_stem(blur_dir)
    sharps = _by_stem(sharp_dir)
    only_blur = sorted(set(blurs) - set(sharps))
    only_sharp = sorted(set(sharps) - set(blurs))
    if only_blur or only_sharp:
        example = (
            f"{blurs[only_blur[0]]} has no match in {sharp_dir}"
            if only_blur
            else f"{sharps[only_sharp[0]]} has no match in {blur_dir}"
        )
        count = len(only_blur) + len(only_sharp)
        raise DataError(f"blur and sharp files do not match: {example} ({count} unmatched file(s))")
    return [Pair(blur=blurs[k], sharp=sharps[k], sequence=sequence, name=k) for k in sorted(blurs)]


def _by_stem(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in _images_in(folder):
        if path.stem in out:
            raise DataError(f"two images named {path.stem} in {folder}: {out[path.stem].name} and {path.name}")
        out[path.stem] = path
    return out


def find_pairs(root: Path, blur_folder: str = "blur") -> list[Pair]:
    """All blurry/sharp pairs of a GoPro or flattened dataset, matched by file name."""
    root = Path(root)
    layout = detect_layout(root, blur_folder)
    if layout == "flat":
        pairs = _match(root / blur_folder, root / SHARP_FOLDER, root.name)
    elif layout == "gopro":
        pairs = []
        for seq in _subdirs(root):
            if (seq / blur_folder).is_dir() and (seq / SHARP_FOLDER).is_dir():
                pairs += _match(seq / blur_folder, seq / SHARP_FOLDER, seq.name)
    else:
        raise DataError(f"{root} holds sharp photos only, no blurry/sharp pairs (expected {EXPECTED})")
    if not pairs:
        raise DataError(f"no image pairs found in {root} (expected {EXPECTED})")
    return pairs


# ---------------------------------------------------------------------------------------------
# Loading and cropping


def load_rgb(path: Path) -> np.ndarray:
    """Decode an image as ``H x W x 3`` float32 RGB in [0, 1] (EXIF orientation applied, 16-bit kept).

    Uses :func:`deblur_cli.files.image_io.load_image`; any failure becomes a DataError naming the file.
    """
    from deblur_cli.errors import DeblurError
    from deblur_cli.files.image_io import load_image

    try:
        return load_image(Path(path)).rgb
    except DeblurError as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def load_rgb8(path: Path) -> np.ndarray:
    """:func:`load_rgb` as ``H x W x 3`` uint8 (a quarter of the memory, for caches)."""
    return to_uint8(load_rgb(path))


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 or float32 array -> 3 x H x W float32 tensor in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    return t.float().div_(255.0) if arr.dtype == np.uint8 else t.float().contiguous()


def _pad_to(arr: np.ndarray, h: int, w: int) -> np.ndarray:
    """Reflect-pad (symmetric, so any size works) an H x W x C array up to at least h x w."""
    ph, pw = max(0, h - arr.shape[0]), max(0, w - arr.shape[1])
    if ph == 0 and pw == 0:
        return arr
    return np.pad(arr, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="symmetric")


def _upscale_to(arr: np.ndarray, size: int) -> np.ndarray:
    """Upscale so the short side is at least ``size`` (photos smaller than a training crop)."""
    from PIL import Image

    h, w = arr.shape[:2]
    if min(h, w) >= size:
        return arr
    scale = size / min(h, w)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return np.asarray(Image.fromarray(arr).resize(new, Image.Resampling.BICUBIC))


def _flip(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    if rng.random() < 0.5:
        arrays = [a[:, ::-1] for a in arrays]
    if rng.random() < 0.5:
        arrays = [a[::-1] for a in arrays]
    return arrays


def _stream() -> int:
    """A draw from torch's RNG: differs per DataLoader worker and epoch (torch seeds workers),
    and is a pure function of the sample when the trainer seeds torch per sample (exact resume)."""
    return int(torch.randint(0, 2**62, ()).item())


class PairedDataset(Dataset):
    """Blurry/sharp pairs from disk as ``(blur, sharp)`` float32 ``3 x crop x crop`` tensors in [0, 1].

    With ``augment``: a random crop and random horizontal/vertical flips (torch's RNG, so
    DataLoader seeding applies). Without: the centre crop. ``crop=None`` returns whole images.
    Images smaller than the crop are reflect-padded.
    """

    def __init__(self, pairs: list[Pair], crop: int | None = 256, augment: bool = True) -> None:
        if not pairs:
            raise DataError("no image pairs to train or evaluate on")
        self.pairs = list(pairs)
        self.crop = crop
        self.augment = augment

    def __len__(self) -> int:
        return len(self.pairs)

    def subset(self, pairs: list[Pair], augment: bool | None = None) -> PairedDataset:
        """The same dataset restricted to ``pairs`` (for train/validation splits)."""
        return PairedDataset(pairs, crop=self.crop, augment=self.augment if augment is None else augment)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.pairs[index]
        blur, sharp = load_rgb(pair.blur), load_rgb(pair.sharp)
        if blur.shape != sharp.shape:
            raise DataError(
                f"blur and sharp sizes differ for {pair.name}: "
                f"{blur.shape[1]}x{blur.shape[0]} vs {sharp.shape[1]}x{sharp.shape[0]}"
            )
        if self.crop is not None:
            blur, sharp = _pad_to(blur, self.crop, self.crop), _pad_to(sharp, self.crop, self.crop)
            h, w = blur.shape[:2]
            if self.augment:
                y = int(torch.randint(0, h - self.crop + 1, ()).item())
                x = int(torch.randint(0, w - self.crop + 1, ()).item())
            else:
                y, x = (h - self.crop) // 2, (w - self.crop) // 2
            blur = blur[y : y + self.crop, x : x + self.crop]
            sharp = sharp[y : y + self.crop, x : x + self.crop]
        if self.augment:
            seed = int(torch.randint(0, 2**62, ()).item())
            blur, sharp = _flip([blur, sharp], np.random.default_rng(seed))
        return _to_tensor(blur), _to_tensor(sharp)


class SharpFolderDataset(Dataset):
    """Sharp photos blurred on the fly: ``(blur, sharp)`` float32 ``3 x crop x crop`` in [0, 1].

    Each sample picks a random photo, a random crop with ``cfg.margin`` pixels of context,
    random flips and a random strength, then calls :func:`synthesize`. Its RNG is derived
    from ``(seed, epoch, torch RNG draw, index)``: runs with the same seed, DataLoader
    settings and torch seed are reproducible; call :meth:`set_epoch` each epoch when
    loading in the main process (DataLoader workers get a fresh stream each epoch anyway).
    Without ``augment`` the sample depends on ``(seed, index)`` only (a fixed validation set).
    Decoded photos are cached in memory per process (``cache_bytes`` at most).
    """

    def __init__(
        self,
        root: Path,
        crop: int = 256,
        cfg: SynthesisConfig = SynthesisConfig(),
        samples_per_epoch: int = 1000,
        seed: int = 0,
        augment: bool = True,
        cache_bytes: int = 2 * 1024**3,
    ) -> None:
        self.root = Path(root)
        self.photos = sharp_photos(self.root) if self.root.is_dir() else []
        if not self.photos:
            raise DataError(f"no images found in {self.root} (expected {EXPECTED})")
        if crop < 1 or samples_per_epoch < 1:
            raise DataError("crop and samples_per_epoch must be positive")
        self.crop = crop
        self.cfg = cfg
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.augment = augment
        self.cache_bytes = cache_bytes
        self.epoch = 0
        self._cache: dict[int, np.ndarray] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def subset(self, photos: list[Path], augment: bool | None = None) -> SharpFolderDataset:
        """The same dataset restricted to ``photos`` (for train/validation splits); own cache."""
        other = copy.copy(self)
        other.photos = list(photos)
        other.augment = self.augment if augment is None else augment
        other._cache, other._cached_bytes = {}, 0
        return other

    def _photo(self, i: int) -> np.ndarray:
        arr = self._cache.get(i)
        if arr is None:
            arr = _upscale_to(load_rgb8(self.photos[i]), self.crop)
            if self._cached_bytes + arr.nbytes <= self.cache_bytes:
                self._cache[i] = arr
                self._cached_bytes += arr.nbytes
        return arr

    def rng_for(self, index: int) -> np.random.Generator:
        if not self.augment:
            return np.random.default_rng([self.seed, index])
        return np.random.default_rng([self.seed, self.epoch, _stream(), index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng_for(index)
        photo = self._photo(int(rng.integers(len(self.photos))))
        region = random_region(photo, self.crop + 2 * self.cfg.margin, rng, self.cfg)  # scale: cfg.scale_range
        if self.augment:
            (region,) = _flip([region], rng)
        return synthesize(_to_tensor(region), rng, self.cfg, margin=self.cfg.margin)


def open_training_dataset(
    root: Path,
    crop: int = 256,
    blur_folder: str = "blur",
    synthesis: SynthesisConfig = SynthesisConfig(),
    seed: int = 0,
) -> Dataset:
    """The right dataset for ``root``: pairs for GoPro/flattened layouts, on-the-fly blur for photos."""
    layout = detect_layout(root, blur_folder)
    if layout == "sharp":
        return SharpFolderDataset(root, crop=crop, cfg=synthesis, seed=seed)
    return PairedDataset(find_pairs(root, blur_folder), crop=crop)
