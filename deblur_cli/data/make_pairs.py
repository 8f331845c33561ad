"""`deblur make-pairs`: blur a folder of sharp photos into a GoPro-layout training/test set.

Plan first (photos found by the one folder walker, output folder checked against the
output rules), then run: each photo is cut, blurred by :func:`deblur_cli.synthesis.synthesize`
and written through :mod:`deblur_cli.files.image_io` (atomic PNG files).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deblur_cli.errors import DataError, DeblurError, InputError, OutputError, UsageError
from deblur_cli.files import image_io
from deblur_cli.files.fsutil import atomic_write, make_folder, remove_stale_temps
from deblur_cli.files.paths import check_output_folder, walk_images
from deblur_cli.progress import Progress
from deblur_cli.synthesis import SynthesisConfig, synthesize


@dataclass(frozen=True)
class PairsPlan:
    """The photos to blur, the sequence folder each one gets, and how."""

    out_dir: Path
    photos: tuple[Path, ...]
    names: tuple[str, ...]  # one sequence folder per photo, unique
    cfg: SynthesisConfig
    seed: int
    crop: int | None
    pairs_per_image: int
    resume: bool = False  # out_dir holds an interrupted run of this same plan

    def settings(self) -> dict:
        """What decides every pixel of the output: a rerun resumes only when these match."""
        photos = hashlib.sha256("\n".join(self.names).encode("utf-8", "surrogateescape")).hexdigest()
        return {"seed": self.seed, "crop": self.crop, "pairs_per_image": self.pairs_per_image, "photos": photos, "synthesis": asdict(self.cfg)}


#: Hidden file in a make-pairs output folder: the settings it was made with (a rerun with the
#: same settings resumes; the walker never lists hidden files, so it is never a pair).
PAIRS_MARKER = ".deblur-pairs.json"
#: Photos are upscaled to reach --crop by at most this factor: beyond it the "sharp" target is
#: an interpolation, not a photo, and a 30x upscale of a thumbnail runs for minutes.
MAX_UPSCALE = 4.0


def plan_make_pairs(
    sharp_dir: Path,
    out_dir: Path,
    *,
    cfg: SynthesisConfig = SynthesisConfig(),
    seed: int = 0,
    crop: int | None = None,
    pairs_per_image: int = 1,
) -> PairsPlan:
    """Find the photos and check the output folder (new or empty, writable); creates nothing."""
    sharp_dir, out_dir = Path(sharp_dir), Path(out_dir)
    if not sharp_dir.is_dir():
        raise DataError(f"sharp photo folder not found: {sharp_dir}")
    if pairs_per_image < 1 or (crop is not None and crop < 1):
        raise UsageError("pairs_per_image and crop must be positive")
    if seed < 0:
        raise UsageError(f"the seed must be 0 or more, got {seed}")
    check_output_folder(out_dir)
    photos = walk_images(sharp_dir, exclude=[out_dir]).images
    if not photos:
        raise DataError(f"no images found in {sharp_dir}")
    if crop is not None:
        _check_upscale(photos, crop)
    plan = PairsPlan(out_dir, photos, tuple(_sequence_names(list(photos))), cfg, seed, crop, pairs_per_image)
    return dataclasses.replace(plan, resume=_resumable(plan))


def _resumable(plan: PairsPlan) -> bool:
    """False for a new or empty folder, True for an interrupted run of the same plan; else OutputError."""
    out_dir = plan.out_dir
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return False
    marker = out_dir / PAIRS_MARKER
    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputError(f"output folder {out_dir} already exists and is not empty; choose a new folder") from None
    except (OSError, ValueError):
        raise OutputError(f"output folder {out_dir} holds an unreadable {PAIRS_MARKER}; choose a new folder") from None
    if stored != json.loads(json.dumps(plan.settings())):
        raise OutputError(
            f"output folder {out_dir} already exists and is not empty: it holds pairs made with other settings (seed, crop, pairs per "
            "image, photos or blur model); rerun with the same ones to resume, or choose a new folder"
        )
    return True


def _check_upscale(photos: tuple[Path, ...], crop: int) -> None:
    """UsageError when ``crop`` would upscale a photo by more than :data:`MAX_UPSCALE`."""
    small = []
    for photo in photos:
        try:
            width, height = image_io.read_size(photo)
        except DeblurError:
            continue  # unreadable: reported (and skipped) by the run
        if crop > MAX_UPSCALE * min(width, height):
            small.append((min(width, height), photo))
    if small:
        side, photo = min(small)
        raise UsageError(
            f"--crop {crop} would upscale {len(small)} of {len(photos)} photos more than "
            f"{MAX_UPSCALE:g}x (the smallest, {photo.name}, has a {side} px short side); "
            f"use --crop {int(MAX_UPSCALE * side)} or less, or larger photos"
        )


def run_make_pairs(
    plan: PairsPlan,
    progress: Progress | None = None,
    on_error: Callable[[Path, str], None] | None = None,
) -> int:
    """Write the pairs; return how many. Each photo's pairs depend only on ``(seed, index)``.

    Photos that cannot be read are passed to ``on_error`` and skipped; without ``on_error``
    they are listed in an InputError once the rest are done.
    """
    from deblur_cli.data.datasets import load_rgb

    started = time.time()
    make_folder(plan.out_dir)
    settings = json.dumps(plan.settings(), sort_keys=True).encode("utf-8")
    atomic_write(plan.out_dir / PAIRS_MARKER, lambda f: f.write(settings), overwrite=True)  # its own marker
    failed: list[str] = []
    written = 0
    for i, (photo, name) in enumerate(zip(plan.photos, plan.names)):
        rng = np.random.default_rng([plan.seed, i])
        if plan.resume and _done(plan, name):  # an interrupted run wrote this photo's pairs
            written += plan.pairs_per_image
            if progress is not None:
                progress(i + 1, len(plan.photos))
            continue
        if plan.resume:
            remove_stale_temps([plan.out_dir / name / "blur", plan.out_dir / name / "sharp"], before=started)
        try:
            image = torch.from_numpy(load_rgb(photo)).permute(2, 0, 1).contiguous()
        except DataError as e:
            failed.append(f"{photo.name} ({e})")
            if on_error is not None:
                on_error(photo, str(e))
        else:
            for k in range(plan.pairs_per_image):
                region, margin = _region(image, plan.crop, plan.cfg.margin, rng)
                blurry, target = synthesize(region, rng, plan.cfg, margin=margin)
                _write_pair(plan.out_dir / name, f"{name}_{k}", blurry, target)
                written += 1
        if progress is not None:
            progress(i + 1, len(plan.photos))
    if failed and on_error is None:
        raise InputError(f"{len(failed)} of {len(plan.photos)} photos could not be used: " + "; ".join(failed[:3]))
    return written


def make_pairs(
    sharp_dir: Path,
    out_dir: Path,
    *,
    cfg: SynthesisConfig = SynthesisConfig(),
    seed: int = 0,
    crop: int | None = None,
    pairs_per_image: int = 1,
    progress: Progress | None = None,
    on_error: Callable[[Path, str], None] | None = None,
) -> int:
    """Blur every photo under ``sharp_dir`` and write a GoPro-layout dataset; return the pair count.

    Layout: ``out_dir/<photo stem>/{blur,sharp}/<stem>_<k>.png``, ``k = 0..pairs_per_image-1``.
    With ``crop`` each pair is a random ``crop x crop`` region; without, the whole photo less
    a border of ``cfg.margin`` pixels (the border supplies the content that moves into view).
    ``out_dir`` must be new or empty, or hold an interrupted run with the same settings (it
    resumes). :func:`plan_make_pairs` then :func:`run_make_pairs`.
    """
    plan = plan_make_pairs(sharp_dir, out_dir, cfg=cfg, seed=seed, crop=crop, pairs_per_image=pairs_per_image)
    return run_make_pairs(plan, progress, on_error)


def _done(plan: PairsPlan, name: str) -> bool:
    """Every pair of one photo is on disk (files appear complete or not at all: atomic)."""
    folder = plan.out_dir / name
    return all(
        (folder / sub / f"{name}_{k}.png").is_file()
        for k in range(plan.pairs_per_image)
        for sub in ("blur", "sharp")
    )


def _sequence_names(photos: list[Path]) -> list[str]:
    """Photo stems, made unique (``a.jpg`` and ``a.png`` become ``a`` and ``a_2``)."""
    names: list[str] = []
    seen: set[str] = set()
    for p in photos:
        name, k = p.stem, 2
        while name in seen:
            name, k = f"{p.stem}_{k}", k + 1
        seen.add(name)
        names.append(name)
    return names


def _region(image: torch.Tensor, crop: int | None, margin: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
    """The area to synthesise from (with its context margin) and the margin to pass along."""
    _, h, w = image.shape
    if crop is None:
        m = min(margin, (min(h, w) - 1) // 4)  # small photos keep most of their area
        return image, m
    if min(h, w) < crop:  # upscale photos smaller than the crop
        scale = crop / min(h, w)
        size = (max(crop, round(h * scale)), max(crop, round(w * scale)))
        image = F.interpolate(image[None], size=size, mode="bicubic", align_corners=False)[0].clamp_(0, 1)
        _, h, w = image.shape
    side = crop + 2 * margin
    if h < side or w < side:  # not enough context: mirror the edges
        ph, pw = max(0, side - h), max(0, side - w)
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        image = F.pad(image[None], pad, mode="replicate" if min(h, w) <= max(pad) else "reflect")[0]
        _, h, w = image.shape
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return image[:, y : y + side, x : x + side], margin


def _write_pair(folder: Path, stem: str, blurry: torch.Tensor, target: torch.Tensor) -> None:
    for sub, img in (("blur", blurry), ("sharp", target)):
        make_folder(folder / sub)
        # the pairs folder is make-pairs' own (marked, same settings): a resumed run redoes a half-written photo
        image_io.save_picture(folder / sub / f"{stem}.png", img.permute(1, 2, 0).numpy(), overwrite=True)
