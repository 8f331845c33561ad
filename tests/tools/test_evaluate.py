"""`deblur evaluate` on tiny generated GoPro-layout folders."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deblur_cli.errors import DataError, OutputError, UsageError
from deblur_cli.quality.metrics import ms_ssim, psnr, ssim
from deblur_cli.tools.evaluate import (
    PSNR_CAP_DB,
    EvalOptions,
    EvalReport,
    ImageScore,
    evaluate,
    plan_evaluate,
    run_evaluate,
)

H, W = 40, 48  # two MS-SSIM scales fit
LAYOUT = {"seqA": ["000001", "000002"], "seqB": ["000007"]}


def _sharp(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = 0.5 + 0.4 * np.sin(xx / (2 + seed) + yy / 3.0)
    img = np.stack([base, np.roll(base, seed, axis=1), 1 - base], -1) + 0.05 * rng.random((H, W, 3))
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def _box_blur(img: np.ndarray, k: int) -> np.ndarray:
    f = img.astype(np.float64)
    out = sum(np.roll(f, s, axis=1) for s in range(-k, k + 1)) / (2 * k + 1)
    return np.round(out).astype(np.uint8)


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


@pytest.fixture
def gopro(tmp_path: Path) -> Path:
    """ROOT/<seq>/{blur,sharp}/<frame>.png with increasing blur per frame."""
    root = tmp_path / "gopro"
    for i, (seq, frames) in enumerate(LAYOUT.items()):
        for j, frame in enumerate(frames):
            sharp = _sharp(3 * i + j)
            _write(root / seq / "sharp" / f"{frame}.png", sharp)
            _write(root / seq / "blur" / f"{frame}.png", _box_blur(sharp, 1 + i + j))
    return root


def _sharp_lookup(root: Path):
    """A 'perfect' deblur: maps each blurry image to its sharp image."""
    table = {}
    for blur in root.glob("*/blur/*.png"):
        table[_read(blur).tobytes()] = _read(blur.parent.parent / "sharp" / blur.name)
    return lambda rgb: table[rgb.tobytes()]


def test_identity_scores_equal_the_blurry_input_row(gopro: Path):
    report = evaluate(lambda rgb: rgb.copy(), gopro)
    assert [(s.sequence, s.name) for s in report.images] == [
        (seq, frame) for seq, frames in LAYOUT.items() for frame in frames
    ]
    for s in report.images:
        assert (s.psnr, s.ssim, s.ms_ssim) == (s.input_psnr, s.input_ssim, s.input_ms_ssim)
        blur = _read(gopro / s.sequence / "blur" / f"{s.name}.png")
        sharp = _read(gopro / s.sequence / "sharp" / f"{s.name}.png")
        assert s.input_psnr == pytest.approx(psnr(blur, sharp), abs=1e-9)
        assert s.input_ssim == pytest.approx(ssim(blur, sharp), abs=1e-9)
        assert s.input_ms_ssim == pytest.approx(ms_ssim(blur, sharp), abs=1e-9)
        assert 10 < s.input_psnr < 60 and 0 < s.input_ssim < 1


def test_perfect_deblur_scores_capped_psnr_and_unit_ssim(gopro: Path):
    report = evaluate(_sharp_lookup(gopro), gopro)
    for s in report.images:
        assert s.psnr == PSNR_CAP_DB
        assert s.ssim == pytest.approx(1.0, abs=1e-12)
        assert s.ms_ssim == pytest.approx(1.0, abs=1e-12)
        assert s.input_psnr < s.psnr and s.input_ssim < s.ssim
    assert report.overall()["psnr"] == PSNR_CAP_DB
    doc = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert doc["psnr_cap_db"] == PSNR_CAP_DB
    assert all(img["psnr"] == PSNR_CAP_DB for img in doc["images"])


def test_per_sequence_and_overall_means(gopro: Path):
    report = evaluate(lambda rgb: np.clip(rgb + 0.01, 0, 1), gopro)
    groups = dict(report.per_sequence())
    assert list(groups) == ["seqA", "seqB"]
    a = [s for s in report.images if s.sequence == "seqA"]
    for metric in ("psnr", "ssim", "ms_ssim", "input_psnr", "input_ssim", "input_ms_ssim"):
        assert groups["seqA"][metric] == pytest.approx(np.mean([getattr(s, metric) for s in a]))
        assert groups["seqB"][metric] == pytest.approx(getattr(report.images[2], metric))
        values = [getattr(s, metric) for s in report.images]
        assert report.overall()[metric] == pytest.approx(np.mean(values))  # over images, not sequences
    means_of_means = np.mean([g["input_psnr"] for g in groups.values()])
    assert report.overall()["input_psnr"] != pytest.approx(means_of_means)


def test_json_and_csv_are_written_and_parse(gopro: Path, tmp_path: Path):
    report = evaluate(lambda rgb: rgb * 0.9, gopro)
    json_path, csv_path = tmp_path / "scores.json", tmp_path / "scores.csv"
    report.write_json(json_path)
    report.write_csv(csv_path)

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=no_constants)
    assert doc["count"] == 3
    assert [(g["sequence"], g["count"]) for g in doc["sequences"]] == [("seqA", 2), ("seqB", 1)]
    assert doc["overall"] == pytest.approx(report.overall())
    assert doc["images"][1]["name"] == "000002" and doc["images"][1]["ssim"] == report.images[1].ssim

    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for row, score in zip(rows, report.images):
        assert (row["sequence"], row["name"]) == (score.sequence, score.name)
        assert float(row["psnr"]) == score.psnr and float(row["input_ms_ssim"]) == score.input_ms_ssim
    assert not list(tmp_path.glob(".deblur-tmp-*"))


def test_non_finite_scores_become_null_in_json_and_empty_in_csv(tmp_path: Path):
    score = ImageScore("s", "x", math.nan, math.nan, math.nan, 30.0, 0.9, 0.95)
    report = EvalReport([score])
    report.write_json(tmp_path / "r.json")
    report.write_csv(tmp_path / "r.csv")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["images"][0]["psnr"] is None and doc["overall"]["ssim"] is None
    assert doc["overall"]["input_psnr"] == 30.0
    row = next(csv.DictReader(open(tmp_path / "r.csv", newline="")))
    assert row["psnr"] == "" and float(row["input_ssim"]) == 0.9


def test_save_dir_mirrors_the_layout(gopro: Path, tmp_path: Path):
    out = tmp_path / "out"
    evaluate(lambda rgb: rgb.copy(), gopro, EvalOptions(save_dir=out))
    saved = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert saved == ["seqA/000001.png", "seqA/000002.png", "seqB/000007.png"]
    for rel in saved:
        seq, name = rel.split("/")
        np.testing.assert_array_equal(_read(out / rel), _read(gopro / seq / "blur" / name))


def test_limit_and_progress(gopro: Path):
    calls = []
    report = evaluate(lambda rgb: rgb, gopro, EvalOptions(limit=2), progress=lambda d, t: calls.append((d, t)))
    assert [s.name for s in report.images] == ["000001", "000002"]
    assert calls == [(1, 2), (2, 2)]


def test_blur_folder_option(gopro: Path):
    for seq in LAYOUT:
        (gopro / seq / "blur").rename(gopro / seq / "blur_gamma")
    with pytest.raises(DataError):
        evaluate(lambda rgb: rgb, gopro)
    report = evaluate(lambda rgb: rgb, gopro, EvalOptions(blur_folder="blur_gamma"))
    assert len(report.images) == 3


def test_size_mismatch_names_the_pair_before_any_deblurring(gopro: Path):
    _write(gopro / "seqB" / "sharp" / "000007.png", _sharp(9)[:, :40])
    calls = []
    with pytest.raises(DataError, match=r"seqB/000007.*48x40.*40x40"):
        evaluate(lambda rgb: calls.append(1) or rgb, gopro)
    assert calls == []


def test_bad_options_and_wrong_output_shape(gopro: Path):
    with pytest.raises(UsageError):
        EvalOptions(limit=0)
    with pytest.raises(UsageError):
        EvalOptions(blur_folder="")
    with pytest.raises(ValueError, match="shape"):
        evaluate(lambda rgb: rgb[:-1], gopro)


def test_never_overwrites_a_dataset_image(tmp_path: Path):
    # Flat layout in a folder itself named "blur": its sequence is "blur", so
    # --save-dir ROOT would map outputs onto ROOT/blur/<name>.png, the inputs.
    root = tmp_path / "blur"
    sharp = _sharp(1)
    _write(root / "sharp" / "a.png", sharp)
    _write(root / "blur" / "a.png", _box_blur(sharp, 2))
    before = (root / "blur" / "a.png").read_bytes()
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="is the input"):
            evaluate(lambda rgb: rgb * 0.5, root, EvalOptions(save_dir=root, overwrite=overwrite))
    assert (root / "blur" / "a.png").read_bytes() == before


@pytest.mark.parametrize("flag", ["json_path", "csv_path"])
def test_reports_follow_the_output_rules(gopro: Path, tmp_path: Path, flag: str):
    # issue 12 item 1: --json / --csv onto a dataset image, or onto an existing file, are
    # refused before anything runs; --overwrite replaces a plain file but never an input.
    sharp = sorted(gopro.rglob("sharp/*.png"))[0]
    before = sharp.read_bytes()
    calls = []

    def deblur(rgb):
        calls.append(1)
        return rgb

    for overwrite in (False, True):
        with pytest.raises(OutputError, match="is the input"):
            plan_evaluate(gopro, EvalOptions(overwrite=overwrite), **{flag: sharp})
    assert sharp.read_bytes() == before
    existing = tmp_path / "scores.out"
    existing.write_text("an earlier report")
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        plan_evaluate(gopro, EvalOptions(), **{flag: existing})
    assert existing.read_text() == "an earlier report" and calls == []
    run_evaluate(deblur, plan_evaluate(gopro, EvalOptions(overwrite=True), **{flag: existing}))
    assert existing.read_text() != "an earlier report" and calls
    missing = tmp_path / "missing" / "deeper" / "r.out"  # a report's missing folder is made (issue 27)
    plan = plan_evaluate(gopro, EvalOptions(), **{flag: missing})
    assert not missing.parent.exists()  # planning creates nothing
    run_evaluate(deblur, plan)
    assert missing.is_file()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        plan_evaluate(gopro, EvalOptions(), **{flag: tmp_path / "file.txt" / "r.out"})


def test_json_and_csv_may_not_share_a_path(gopro: Path, tmp_path: Path):
    with pytest.raises(OutputError, match="also the output"):
        plan_evaluate(gopro, json_path=tmp_path / "r", csv_path=tmp_path / "r")


def test_existing_saved_images_need_overwrite(gopro: Path, tmp_path: Path):
    out = tmp_path / "saved"
    evaluate(lambda rgb: rgb.copy(), gopro, EvalOptions(save_dir=out))
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        plan_evaluate(gopro, EvalOptions(save_dir=out))
    evaluate(lambda rgb: rgb.copy(), gopro, EvalOptions(save_dir=out, overwrite=True))


def test_flat_layout_and_real_inference_engine(tmp_path: Path, tiny_config):
    from deblur_cli.methods import InferenceOptions
    from deblur_cli.network.engine import Engine
    from deblur_cli.network.model import AttentiveDeblurNet

    root = tmp_path / "flat"
    for k in range(2):
        sharp = _sharp(k)
        _write(root / "sharp" / f"im{k}.png", sharp)
        _write(root / "blur" / f"im{k}.png", _box_blur(sharp, 2))
    torch.manual_seed(0)
    deblurrer = Engine(AttentiveDeblurNet(tiny_config), InferenceOptions(device="cpu"))
    report = evaluate(deblurrer.run, root)
    assert [(s.sequence, s.name) for s in report.images] == [("flat", "im0"), ("flat", "im1")]
    for s in report.images:
        assert all(math.isfinite(v) for v in (s.psnr, s.ssim, s.ms_ssim))
        assert s.psnr != s.input_psnr  # the untrained network changed the image
