"""`deblur evaluate`: score a deblurring function on blurry/sharp pairs.

Every pair is scored twice, the deblurred output and the blurry input itself
(the baseline row), with PSNR, SSIM and MS-SSIM from :mod:`deblur_cli.quality.metrics`
on RGB in [0, 1]. The output is clipped to [0, 1] and scored in float, not
after rounding to 8 bits.

PSNR of identical images is infinite; reports cap it at :data:`PSNR_CAP_DB`
(100 dB, an MSE of 1e-10, far beyond any 8-bit difference) so that means stay
finite and JSON stays valid (JSON has no Infinity). Any other non-finite value
(e.g. NaN from a broken model) is written as ``null`` in JSON and empty in CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from deblur_cli.data import datasets
from deblur_cli.errors import DataError, UsageError
from deblur_cli.files import image_io
from deblur_cli.files.fsutil import atomic_write, make_folder
from deblur_cli.files.paths import FileSet, check_distinct, check_output_file, check_output_folder
from deblur_cli.progress import Progress
from deblur_cli.quality.metrics import psnr, ssim_and_ms_ssim

PSNR_CAP_DB = 100.0
METRICS: tuple[str, ...] = ("psnr", "ssim", "ms_ssim", "input_psnr", "input_ssim", "input_ms_ssim")
CONVENTIONS = (
    "RGB in [0,1]; PSNR over all pixels and channels, no border crop, capped at 100 dB; "
    "SSIM 11x11 Gaussian window sigma 1.5, K1=0.01 K2=0.03, per channel then averaged, valid region; "
    "MS-SSIM 5 scales, Wang et al. 2003 weights, 2x2 average pooling"
)

DeblurFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvalOptions:
    """What to evaluate and what to keep."""

    blur_folder: str = "blur"  # GoPro: "blur" (linear) or "blur_gamma"
    save_dir: Path | None = None  # save deblurred outputs as <save_dir>/<sequence>/<stem>.png
    limit: int | None = None  # evaluate the first N pairs only
    overwrite: bool = False  # replace existing outputs (saved images, --json, --csv)

    def __post_init__(self) -> None:
        if not self.blur_folder:
            raise UsageError("the blur folder name must not be empty")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {self.limit}")


@dataclass
class ImageScore:
    """Scores of one pair: the deblurred output and the blurry input, both against the sharp image."""

    sequence: str
    name: str
    psnr: float
    ssim: float
    ms_ssim: float
    input_psnr: float
    input_ssim: float
    input_ms_ssim: float


@dataclass
class EvalReport:
    """Per-image scores with per-sequence and overall means."""

    images: list[ImageScore]

    def per_sequence(self) -> list[tuple[str, dict[str, float]]]:
        """Mean of each metric per sequence, sequences in order of first appearance."""
        groups: dict[str, list[ImageScore]] = {}
        for score in self.images:
            groups.setdefault(score.sequence, []).append(score)
        return [(seq, _means(scores)) for seq, scores in groups.items()]

    def overall(self) -> dict[str, float]:
        """Mean of each metric over all images (not over sequence means); NaN when empty."""
        return _means(self.images)

    def to_json(self) -> dict:
        """A JSON-ready dict: conventions, overall, per-sequence and per-image scores."""
        counts: dict[str, int] = {}
        for score in self.images:
            counts[score.sequence] = counts.get(score.sequence, 0) + 1
        doc = {
            "conventions": CONVENTIONS,
            "psnr_cap_db": PSNR_CAP_DB,
            "count": len(self.images),
            "overall": self.overall(),
            "sequences": [
                {"sequence": seq, "count": counts[seq], **means} for seq, means in self.per_sequence()
            ],
            "images": [asdict(score) for score in self.images],
        }
        return _finite_or_none(doc)

    def write_json(self, path: Path, *, overwrite: bool = False) -> None:
        """Write :meth:`to_json` atomically (strict JSON: no NaN or Infinity)."""
        text = json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        atomic_write(Path(path), lambda f: f.write(text.encode("utf-8")), overwrite=overwrite)

    def write_csv(self, path: Path, *, overwrite: bool = False) -> None:
        """Write one row per image atomically; columns ``sequence, name`` then :data:`METRICS`."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([f.name for f in fields(ImageScore)])
        for score in self.images:
            row = asdict(score)
            writer.writerow([row["sequence"], row["name"], *(_csv_number(row[m]) for m in METRICS)])
        data = buf.getvalue().encode("utf-8")
        atomic_write(Path(path), lambda f: f.write(data), overwrite=overwrite)


@dataclass(frozen=True)
class EvalPlan:
    """The pairs to score and every output, checked before any weights are loaded."""

    pairs: tuple[datasets.Pair, ...]
    saves: tuple[Path, ...] | None  # one per pair, under options.save_dir
    json_path: Path | None = None
    csv_path: Path | None = None
    overwrite: bool = False  # outputs checked while planning may be replaced


def plan_evaluate(
    data_dir: Path,
    options: EvalOptions = EvalOptions(),
    *,
    json_path: Path | None = None,
    csv_path: Path | None = None,
) -> EvalPlan:
    """Find the pairs, check them (readable headers, equal sizes) and check every output.

    A bad dataset fails in seconds: a size mismatch raises :class:`DataError` naming the
    pair, an unreadable image :class:`InputError`. Every output (``json_path``,
    ``csv_path``, the saved images) follows the rules of :mod:`deblur_cli.files.paths`: never a
    dataset image, never an existing file without ``options.overwrite``, never two at one path.
    """
    pairs = datasets.find_pairs(Path(data_dir), options.blur_folder)
    if options.limit is not None:
        pairs = pairs[: options.limit]
    for pair in pairs:
        _check_pair_sizes(pair)
    inputs = FileSet(p for pair in pairs for p in (pair.blur, pair.sharp))
    reports = [(Path(f"--{k}"), Path(p)) for k, p in (("json", json_path), ("csv", csv_path)) if p is not None]
    for _, path in reports:
        check_output_file(path, inputs, options.overwrite, create_folder=True)  # made when written
    saves = None
    if options.save_dir is not None:
        check_output_folder(Path(options.save_dir), inputs)
        saves = tuple(Path(options.save_dir) / pair.sequence / f"{pair.name}.png" for pair in pairs)
        for path in saves:
            check_output_file(path, inputs, options.overwrite, create_folder=True)
    check_distinct([*reports, *((Path(p.blur), s) for p, s in zip(pairs, saves or ()))])
    return EvalPlan(tuple(pairs), saves, json_path, csv_path, options.overwrite)


def run_evaluate(deblur: DeblurFn, plan: EvalPlan, progress: Progress | None = None) -> EvalReport:
    """Score every pair of a plan; then write its JSON and CSV reports (atomically)."""
    scores: list[ImageScore] = []
    for i, pair in enumerate(plan.pairs):
        scores.append(_score_pair(deblur, pair, plan.saves[i] if plan.saves else None, plan.overwrite))
        if progress is not None:
            progress(i + 1, len(plan.pairs))
    report = EvalReport(scores)
    if plan.json_path is not None:
        make_folder(Path(plan.json_path).parent)
        report.write_json(plan.json_path, overwrite=plan.overwrite)
    if plan.csv_path is not None:
        make_folder(Path(plan.csv_path).parent)
        report.write_csv(plan.csv_path, overwrite=plan.overwrite)
    return report


def evaluate(
    deblur: DeblurFn,
    data_dir: Path,
    options: EvalOptions = EvalOptions(),
    progress: Progress | None = None,
) -> EvalReport:
    """Deblur every blurry image of ``data_dir`` and score it against its sharp image.

    ``deblur`` maps an H x W x 3 float32 RGB image in [0, 1] to one of the same
    shape. Pairs come from :func:`deblur_cli.data.datasets.find_pairs`; :func:`plan_evaluate`
    then :func:`run_evaluate`.
    """
    return run_evaluate(deblur, plan_evaluate(data_dir, options), progress)


def _score_pair(deblur: DeblurFn, pair: datasets.Pair, save_to: Path | None, overwrite: bool = False) -> ImageScore:
    loaded = image_io.load_image(pair.blur)
    blurry = loaded.rgb
    sharp = image_io.load_image(pair.sharp).rgb
    if blurry.shape != sharp.shape:
        raise DataError(_mismatch(pair, blurry.shape, sharp.shape))
    out = np.asarray(deblur(blurry))
    if out.shape != blurry.shape:
        raise ValueError(f"deblur returned shape {out.shape} for an input of shape {blurry.shape}")
    out = np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
    if save_to is not None:  # PNG with the blurry input's bit depth and metadata
        make_folder(save_to.parent)
        image_io.save_image(out, save_to, like=loaded, overwrite=overwrite)
    ssim_out, ms_out = ssim_and_ms_ssim(out, sharp)
    ssim_in, ms_in = ssim_and_ms_ssim(blurry, sharp)
    return ImageScore(
        sequence=pair.sequence,
        name=pair.name,
        psnr=_capped_psnr(out, sharp),
        ssim=ssim_out,
        ms_ssim=ms_out,
        input_psnr=_capped_psnr(blurry, sharp),
        input_ssim=ssim_in,
        input_ms_ssim=ms_in,
    )


def _capped_psnr(a: np.ndarray, b: np.ndarray) -> float:
    value = psnr(a, b)
    return min(value, PSNR_CAP_DB) if not math.isnan(value) else value


def _check_pair_sizes(pair: datasets.Pair) -> None:
    """Compare the two images' displayed sizes from their headers (no pixel decoding)."""
    (w1, h1), (w2, h2) = image_io.read_size(pair.blur), image_io.read_size(pair.sharp)
    if (w1, h1) != (w2, h2):
        raise DataError(_mismatch(pair, (h1, w1), (h2, w2)))


def _mismatch(pair: datasets.Pair, blur_shape: tuple, sharp_shape: tuple) -> str:
    return (
        f"pair {_pair_label(pair)}: blurry image {pair.blur} is {blur_shape[1]}x{blur_shape[0]} "
        f"but sharp image {pair.sharp} is {sharp_shape[1]}x{sharp_shape[0]}"
    )


def _pair_label(pair: datasets.Pair) -> str:
    return f"{pair.sequence}/{pair.name}" if pair.sequence else pair.name


def _means(scores: Iterable[ImageScore]) -> dict[str, float]:
    rows = [asdict(s) for s in scores]
    return {m: (float(np.mean([r[m] for r in rows])) if rows else math.nan) for m in METRICS}


def _finite_or_none(value):
    """Replace non-finite floats (anywhere in nested dicts/lists) by None for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _csv_number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ""
