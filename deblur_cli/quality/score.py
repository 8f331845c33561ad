"""How blurry is a photo: a no-reference blur score in [0, 1] (`deblur score`, `batch --only-blurry`).

The measure is the *blur effect* of Crété-Roffet, Dolmiere, Ladret and Nicolas ("The blur
effect: perception and estimation with a new no-reference perceptual blur metric", SPIE
Human Vision and Electronic Imaging XII, 2007). Idea: blurring a sharp image with a strong
low-pass filter changes its neighbouring-pixel differences a lot; blurring an already
blurry image changes them little. For each direction (rows, then columns):

* ``D`` = absolute differences of neighbouring luminance pixels of the image,
* ``Db`` = the same of the image re-blurred by a 9-tap box filter along that direction,
* ``V = max(0, D - Db)`` (the variation the re-blur removed),
* ``b = (sum D - sum V) / sum D`` in [0, 1];

the score is the larger of the two directions (motion blur is often along one), so 0 is
very sharp and 1 is maximally blurred. It needs no network, no weights and no torch.

One change to the paper's recipe: the luminance (Rec. 601) is first averaged over 2 x 2
pixels. Sensor noise and JPEG artefacts are pixel-scale detail that the re-blur removes,
so at full size they read as sharpness (noisy blurry crops scored below their clean sharp
originals); at half size they are averaged away, and the 9-tap re-blur then probes blur
extents of up to ~18 pixels of the photo, the range of camera shake.

Why this measure (figures on ``bench/data/val``, ``python bench/blur_score.py``, in
bench/README.md): every blurry crop scores above its own sharp original, and over all
pairs of images with different blur extents it orders 81% correctly, against 77% for the
variance of the Laplacian, which mostly measures texture. Known limits: large flat areas
(sky, walls) read as blur; the score is per pixel, so a downscaled copy of a photo looks
sharper than the original.

A photo is also measured tile by tile (:mod:`.regions`): one motion-blurred object in a
sharp scene barely moves the whole frame's score. :class:`BlurMeasure` holds both figures and
the one verdict rule (:meth:`BlurMeasure.blurry`), which `deblur score`, ``batch
--only-blurry`` and serve's ``/api/score`` all ask.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deblur_cli.errors import DeblurError, UsageError
from deblur_cli.files import image_io
from deblur_cli.files.fsutil import write_text
from deblur_cli.quality.regions import REGION_MARGIN, TILES_PER_SHORT_SIDE, Region, blurriest_region

#: Length of the re-blurring box filter, in pixels (the paper's choice).
REBLUR_TAPS = 9
#: Default `--threshold`: photos scoring above it count as blurry. Chosen on bench/data/val
#: (21 pairs): 19 of 21 blurry crops score above it (the two below are the Bridge's mild and
#: medium crops) and 15 of 21 sharp ones at or below it. It errs toward deblurring: a sharp
#: photo deblurred costs time, a blurry one left alone stays blurry.
DEFAULT_THRESHOLD = 0.35
#: Rec. 601 luma weights.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Lines per strip: bounds the temporary arrays to a few strips of the image.
_STRIP = 256


#: Shorter side below which the score measures nothing (a 2 x 2 image has no blur to see).
MIN_SIDE = 8
#: Mean neighbouring-pixel difference below which an image has no detail to measure: less
#: than half a step of 8-bit samples (a flat colour, with or without faint noise).
FLAT = 0.5 / 255
TOO_SMALL = f"too small to measure (under {MIN_SIDE} px on a side)"
NO_DETAIL = "no detail to measure (a flat colour)"


@dataclass(frozen=True)
class BlurMeasure:
    """A photo's blur: ``score`` of the whole frame (0 sharp .. 1 very blurry; None: it cannot
    be measured, ``why`` says why) and its blurriest ``region`` with detail (None: none, or
    the photo is too small for tiles; see :mod:`.regions`)."""

    score: float | None
    region: Region | None = None
    why: str = ""

    def blurry(self, threshold: float) -> bool:
        """The verdict's one rule: the whole frame above ``threshold``, or its blurriest region
        above ``threshold`` + :data:`~.regions.REGION_MARGIN` (a motion-blurred car in a sharp
        street). An unmeasurable photo is neither sharp nor blurry: False."""
        if self.score is None:
            return False
        return self.score > threshold or self.region_is_blurry(threshold)

    def region_is_blurry(self, threshold: float) -> bool:
        return self.region is not None and self.region.score > threshold + REGION_MARGIN

    def verdict(self, threshold: float) -> str:
        return "unmeasurable" if self.score is None else "blurry" if self.blurry(threshold) else "sharp"

    def to_dict(self, threshold: float) -> dict[str, object]:
        """The figures and the verdict, as `deblur score --json` and serve's /api/score give them."""
        doc: dict[str, object] = {
            "score": None if self.score is None else round(self.score, 4),
            "blurry": self.blurry(threshold), "verdict": self.verdict(threshold),
            "region": None if self.region is None else self.region.to_dict(),
        }
        if self.why:
            doc["reason"] = self.why
        return doc


@dataclass(frozen=True)
class ScoredImage:
    """One photo's :class:`BlurMeasure` and its verdict against a threshold."""

    path: Path
    measure: BlurMeasure
    threshold: float

    @property
    def score(self) -> float | None:
        return self.measure.score

    @property
    def blurry(self) -> bool:
        return self.measure.blurry(self.threshold)

    @property
    def why(self) -> str:
        return self.measure.why

    @property
    def verdict(self) -> str:
        return self.measure.verdict(self.threshold)

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), **self.measure.to_dict(self.threshold)}


def luminance(rgb: np.ndarray) -> np.ndarray:
    """float32 ``H x W`` luma of a float ``H x W x 3`` image in [0, 1]."""
    return np.asarray(rgb, dtype=np.float32) @ _LUMA


def _box_filter_rows(lines: np.ndarray, taps: int) -> np.ndarray:
    """Centred ``taps``-wide moving average along axis 1, edges reflected (float64 sums)."""
    left = taps // 2
    right = taps - 1 - left
    padded = np.pad(lines, ((0, 0), (left, right)), mode="symmetric")
    csum = np.cumsum(padded, axis=1, dtype=np.float64)
    csum = np.concatenate([np.zeros((lines.shape[0], 1)), csum], axis=1)
    return ((csum[:, taps:] - csum[:, :-taps]) / taps).astype(np.float32)


def _blur_effect_along_rows(grey: np.ndarray, taps: int) -> tuple[float, float]:
    """(sum D, sum V) for neighbouring differences along axis 1, computed strip by strip."""
    total_d = total_v = 0.0
    for y0 in range(0, grey.shape[0], _STRIP):
        lines = grey[y0 : y0 + _STRIP]
        d = np.abs(np.diff(lines, axis=1))
        db = np.abs(np.diff(_box_filter_rows(lines, taps), axis=1))
        total_d += float(d.sum(dtype=np.float64))
        total_v += float(np.maximum(d - db, 0.0).sum(dtype=np.float64))
    return total_d, total_v


def half_size(grey: np.ndarray) -> np.ndarray:
    """2 x 2 box average (an odd last row or column is dropped); images under 4 px stay as they are."""
    h, w = grey.shape
    if h < 4 or w < 4:
        return grey
    h2, w2 = h // 2 * 2, w // 2 * 2
    g = grey[:h2, :w2]
    return (g[0::2, 0::2] + g[1::2, 0::2] + g[0::2, 1::2] + g[1::2, 1::2]) * np.float32(0.25)


def measure_blur(rgb: np.ndarray, taps: int = REBLUR_TAPS) -> tuple[float | None, str]:
    """``(score, "")``, 0 sharp .. 1 blurry, of a float ``H x W x 3`` (or ``H x W`` grey) image
    in [0, 1]; ``(None, why)`` when there is nothing to measure: an image under
    :data:`MIN_SIDE` px on a side, or a flat one (:data:`FLAT`).

    Measured on the luminance at half size (see the module docstring for why), unless the
    2 x 2 average wipes all detail out: detail of one or two pixels (a 1-px checkerboard,
    2-px stripes), the sharpest there is, is then measured at full size.
    """
    grey, _, why = _measured_luminance(rgb)
    if grey is None:
        return None, why
    scores = []
    for lines in (grey, grey.T):
        d, v = _blur_effect_along_rows(np.ascontiguousarray(lines), taps)
        if d > 0:
            scores.append((d - v) / d)
    return float(max(scores)), ""


def measure(rgb: np.ndarray, taps: int = REBLUR_TAPS) -> BlurMeasure:
    """:func:`measure_blur` of the whole frame and the blurriest region
    (:func:`.regions.blurriest_region`), on the same luminance."""
    score, why = measure_blur(rgb, taps)
    if score is None:
        return BlurMeasure(None, None, why)
    grey, scale, _ = _measured_luminance(rgb)
    assert grey is not None  # measured above
    return BlurMeasure(score, blurriest_region(grey, taps, scale, _box_filter_rows))


def _measured_luminance(rgb: np.ndarray) -> tuple[np.ndarray | None, int, str]:
    """(luminance measured, image pixels per sample, "") or (None, 0, why not)."""
    full = luminance(rgb) if rgb.ndim == 3 else np.asarray(rgb, dtype=np.float32)
    if min(full.shape) < MIN_SIDE:
        return None, 0, TOO_SMALL
    if _mean_difference(full) < FLAT:
        return None, 0, NO_DETAIL
    half = half_size(full)
    return (half, 2, "") if half is not full and _mean_difference(half) >= FLAT else (full, 1, "")


def _mean_difference(grey: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels, rows and columns together."""
    total = float(np.abs(np.diff(grey, axis=1)).sum(dtype=np.float64) + np.abs(np.diff(grey, axis=0)).sum(dtype=np.float64))
    pairs = grey.shape[0] * (grey.shape[1] - 1) + grey.shape[1] * (grey.shape[0] - 1)
    return total / pairs if pairs else 0.0


def blur_score(rgb: np.ndarray, taps: int = REBLUR_TAPS) -> float:
    """:func:`measure_blur` as a number: 1.0 when there is nothing to measure (flat or tiny),
    as before; callers that give a verdict should ask :func:`measure_blur`, which says so."""
    value, _ = measure_blur(rgb, taps)
    return 1.0 if value is None else value


def score_file(path: Path, max_pixels: int | None = None) -> float:
    """Blur score of one image file (EXIF orientation applied; 1.0 when it cannot be
    measured, see :func:`measure_blur`); InputError for a bad file."""
    return blur_score(image_io.load_image(Path(path), max_pixels=max_pixels).rgb)


def image_files(inputs: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files, problems) of :func:`find_images`."""
    files, problems, _ = find_images(inputs)
    return files, problems


def find_images(inputs: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]], list[Path]]:
    """Image files named by ``inputs``: files as given, folders through the package's one walker.

    Folders are searched recursively by :func:`deblur_cli.files.paths.walk_images` (sorted, hidden
    files and our temp files left out, symlinked folders not followed). Returns (files,
    problems, skipped): problems are unreadable folders and files inside them, skipped the
    other files of the folders (HEIC, .txt, ...), which ``batch`` lists the same way. A named input that is
    not a folder gets the package's one input check first
    (:func:`deblur_cli.files.image_io.check_readable`), as `deblur image` does: a missing, empty or
    non-regular one is an InputError (exit 3) before any photo is scored.
    """
    from deblur_cli.files.paths import walk_images

    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    skipped: list[Path] = []
    for given in inputs:
        given = Path(given)
        if given.is_dir():
            walk = walk_images(given)
            files.extend(walk.images)
            problems.extend(walk.problems)
            skipped.extend(walk.skipped)
        else:
            image_io.check_readable(given)
            files.append(given)
    return files, problems, skipped


def score_images(
    paths: Iterable[Path],
    threshold: float = DEFAULT_THRESHOLD,
    max_pixels: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[ScoredImage], list[tuple[Path, str]]]:
    """Score every file; returns (scores, failures) and keeps going past bad files.

    ``progress(done, total)`` is called before the first file and after each one.
    """
    check_threshold(threshold)
    paths = list(paths)
    scored: list[ScoredImage] = []
    failed: list[tuple[Path, str]] = []
    if progress is not None:
        progress(0, len(paths))
    for i, path in enumerate(paths):
        try:
            scored.append(ScoredImage(path, measure(image_io.load_image(Path(path), max_pixels=max_pixels).rgb), threshold))
        except DeblurError as e:
            failed.append((path, e.message))
        except MemoryError:
            failed.append((path, "not enough memory for this image"))
        if progress is not None:
            progress(i + 1, len(paths))
    return scored, failed


def check_threshold(threshold: float) -> None:
    """A threshold must lie in [0, 1], like the score."""
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be between 0 and 1 (the blur score's range), got {threshold}")


def keep_blurry(threshold: float = DEFAULT_THRESHOLD) -> Callable[[np.ndarray], tuple[bool, str]]:
    """The ``keep`` test of `deblur batch --only-blurry`: deblur images scoring above ``threshold``.

    Returns ``keep(rgb) -> (score > threshold, why)``; ``why`` gives the score for the list
    of photos left alone.
    """
    check_threshold(threshold)

    def keep(rgb: np.ndarray) -> tuple[bool, str]:
        found = measure(rgb)
        if found.score is None:
            return False, f"blur score: {found.why}"  # neither sharp nor blurry: left alone
        region = "" if found.region is None else f", blurriest region {found.region.score:.3f} <= {threshold + REGION_MARGIN:.2f}"
        return found.blurry(threshold), f"blur score {found.score:.3f} <= threshold {threshold}{region}"

    return keep


def scores_json(scored: list[ScoredImage], failed: list[tuple[Path, str]], threshold: float) -> str:
    """The JSON document `deblur score --json` writes (measure, threshold, images, failures)."""
    doc = {
        "measure": f"blur effect (Crete-Roffet et al. 2007), {REBLUR_TAPS}-tap re-blur; 0 sharp .. 1 blurry",
        "region": f"the blurriest tile with detail (1/{TILES_PER_SHORT_SIDE} of the shorter side); blurry above threshold + {REGION_MARGIN}",
        "threshold": threshold,
        "images": [s.to_dict() for s in scored],
        "failed": [{"path": str(p), "error": why} for p, why in failed],
    }
    return json.dumps(doc, indent=2) + "\n"


def check_json_output(path: Path, inputs: Iterable[Path], overwrite: bool) -> None:
    """Refuse a JSON output that is one of the inputs, a folder, or exists without ``overwrite``
    (the package's one output rule set, :func:`deblur_cli.files.paths.check_output_file`)."""
    from deblur_cli.files.paths import FileSet, check_output_file

    check_output_file(Path(path), FileSet(inputs), overwrite, create_folder=True)  # made when written


def write_scores_json(path: Path, text: str, *, overwrite: bool = False) -> None:
    """Write the document atomically (a temp file renamed onto ``path``; an existing file
    is replaced only with ``overwrite``)."""
    write_text(Path(path), text, overwrite=overwrite)


__all__ = [
    "BlurMeasure",
    "measure",
    "DEFAULT_THRESHOLD",
    "REBLUR_TAPS",
    "ScoredImage",
    "blur_score",
    "check_json_output",
    "check_threshold",
    "find_images",
    "image_files",
    "measure_blur",
    "half_size",
    "keep_blurry",
    "luminance",
    "score_file",
    "score_images",
    "scores_json",
    "write_scores_json",
]
