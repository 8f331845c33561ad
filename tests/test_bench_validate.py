"""bench/validate.py, bench/valsets.py and bench/independent_blur.py (the validation sets' tools)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT_DIR = Path(__file__).resolve().parent.parent
BENCH = ROOT_DIR / "bench"
sys.path.insert(0, str(BENCH))

import independent_blur as ib  # noqa: E402
import validate  # noqa: E402
import valsets  # noqa: E402

from deblur_cli.tools.evaluate import EvalReport, ImageScore  # noqa: E402


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((h // 4 + 1, w // 4 + 1, 3))
    return np.kron(small, np.ones((4, 4, 1)))[:h, :w].astype(np.float32)


def _score(name: str, inp: float, out: float) -> ImageScore:
    return ImageScore("seq", name, out, 0.8, 0.9, inp, 0.7, 0.85)


def test_summarise_gives_gain_per_class_and_the_worst_image():
    scores = [_score("a", 20.0, 21.0), _score("b", 30.0, 29.9), _score("c", 25.0, 25.5), _score("d", 22.0, 23.0)]
    report = EvalReport(scores)
    manifest = {
        "a": valsets.PairRow("a", "p", "strong", 0.8, 19.0, 20.0),
        "b": valsets.PairRow("b", "p", "mild", 0.1, 2.4, 30.0),
        "c": valsets.PairRow("c", "p", "medium", 0.4, 9.6, 25.0),
    }
    s = validate.summarise(report, manifest)
    assert s["count"] == 4
    assert s["gain"] == pytest.approx((1.0 - 0.1 + 0.5 + 1.0) / 4)
    assert s["per_class"]["mild"]["gain"] == pytest.approx(-0.1)
    assert s["per_class"]["strong"]["gain"] == pytest.approx(1.0)
    assert s["per_class"]["unknown"]["count"] == 1  # "d" is not in the manifest
    assert list(s["per_class"]) == ["mild", "medium", "strong", "unknown"]
    assert s["worst"] == {"name": "b", "class": "mild", "gain": pytest.approx(-0.1)}
    assert s["no_harm"] is False  # the mild class lost
    assert "worst: b -0.10 dB (mild)" in validate.format_summary("val", s)


def test_no_harm_fails_on_one_bad_image_even_if_classes_gain():
    report = EvalReport([_score("a", 20.0, 22.0), _score("b", 20.0, 19.6)])
    manifest = {n: valsets.PairRow(n, "p", "mild", 0.2, 4.8, 20.0) for n in "ab"}
    s = validate.summarise(report, manifest)
    assert s["per_class"]["mild"]["gain"] > 0 and s["no_harm"] is False


def test_score_sets_reads_a_written_set_and_its_manifest(tmp_path):
    sharp = _texture(32, 32)
    blurry = 0.5 * sharp + 0.5 * np.roll(sharp, 2, axis=1)
    ipsnr = valsets.write_pair(tmp_path, "photo", "photo_0_mild", blurry, sharp)
    valsets.write_manifest(tmp_path, [valsets.PairRow("photo_0_mild", "photo", "mild", 0.2, 4.8, ipsnr)])
    assert valsets.read_manifest(tmp_path)["photo_0_mild"].input_psnr == pytest.approx(ipsnr, abs=1e-3)

    same = validate.score_sets(lambda x: x, {"s": tmp_path})["s"]
    assert same["gain"] == pytest.approx(0.0, abs=1e-9) and same["input_psnr"] == pytest.approx(ipsnr, abs=1e-3)
    worse = validate.score_sets(lambda x: np.clip(x + 0.1, 0, 1), {"s": tmp_path})["s"]
    assert worse["per_class"]["mild"]["gain"] < 0 and worse["worst"]["name"] == "photo_0_mild"


def test_pick_crops_prefers_detail_and_has_the_right_size():
    image = np.full((200, 300, 3), 0.5, dtype=np.float32)
    image[:, 150:] = _texture(200, 150)
    crops = valsets.pick_crops(image, 48, 8, 2, np.random.default_rng(0))
    assert [c.shape for c in crops] == [(64, 64, 3)] * 2
    assert all(np.abs(np.diff(c[8:-8, 8:-8], axis=1)).mean() > 0.05 for c in crops)
    small = valsets.pick_crops(image[:40, :40], 48, 8, 1, np.random.default_rng(0))
    assert small[0].shape == (64, 64, 3)  # reflect-padded


def test_srgb_curves_are_inverse():
    x = np.linspace(0, 1, 101)
    assert np.allclose(ib.linear_to_srgb(ib.srgb_to_linear(x)), x, atol=1e-9)


@pytest.mark.parametrize("target", [3.0, 12.0])
def test_camera_path_scale_hits_the_requested_extent(target):
    path = ib.random_path(np.random.default_rng(3), 64)
    scale = ib.fit_scale(path, target, 64)
    assert ib.blur_extent(path, scale, 64) == pytest.approx(target, rel=0.02)
    assert np.allclose(path.homographies(np.array([0.5]), scale)[0], np.eye(3))  # mid-exposure = reference


def _pair(seed: int, target: float, **spec):
    region = _texture(64 + 2 * 16, 64 + 2 * 16, seed=7)
    defaults = dict(margin=16, photons_at_white=(1e7, 1e7), read_noise_e=(0.0, 0.0), jpeg_prob=0.0, max_frames=41)
    return region, ib.blur_pair(region, np.random.default_rng(seed), target, 64, ib.BlurSpec(**{**defaults, **spec}))


def test_independent_blur_target_is_the_mid_exposure_frame_and_stronger_blur_scores_lower():
    region, (mild, sharp, extent) = _pair(0, 3.0, object_prob=0.0)
    assert extent == pytest.approx(3.0, rel=0.02)
    assert np.abs(sharp - region[16:-16, 16:-16]).max() < 2e-3  # no objects: the photo itself
    _, (strong, sharp2, _) = _pair(0, 12.0, object_prob=0.0)
    assert np.array_equal(sharp, sharp2)

    def p(a, b):
        return -10 * np.log10(np.mean((a - b) ** 2))

    assert p(strong, sharp) + 2.0 < p(mild, sharp) < 60.0


def test_independent_blur_is_reproducible_and_objects_enter_the_target():
    region, (b1, s1, _) = _pair(5, 6.0, object_prob=1.0, jpeg_prob=1.0)
    _, (b2, s2, _) = _pair(5, 6.0, object_prob=1.0, jpeg_prob=1.0)
    assert np.array_equal(b1, b2) and np.array_equal(s1, s2)
    assert np.abs(s1 - region[16:-16, 16:-16]).max() > 0.05  # an object layer covers part of the photo


def test_frame_count_is_odd_and_grows_with_motion():
    path = ib.random_path(np.random.default_rng(1), 64)
    spec = ib.BlurSpec(min_frames=3, max_frames=401)
    small = ib.frame_count(path, ib.fit_scale(path, 2.0, 64), [], 64, spec)
    large = ib.frame_count(path, ib.fit_scale(path, 20.0, 64), [], 64, spec)
    assert small % 2 == 1 and large % 2 == 1 and large > small


def _photo_folder(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, size in enumerate([(120, 100), (90, 110)]):
        arr = (_texture(size[1], size[0], seed=i) * 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"p{i}.png")
    return folder


@pytest.mark.parametrize("script", ["make_val", "independent_blur"])
def test_generators_write_a_set_that_evaluate_and_validate_read(tmp_path, monkeypatch, script):
    import importlib

    from deblur_cli.data.datasets import find_pairs

    module = importlib.import_module(script)
    out = tmp_path / "set"
    argv = [script, str(_photo_folder(tmp_path)), str(out), "--size", "32", "--seed", "3"]
    if script == "independent_blur":  # a small context margin and few sub-frames keep it fast
        monkeypatch.setattr(ib, "BlurSpec", functools.partial(ib.BlurSpec, margin=8, max_frames=41))
    monkeypatch.setattr(sys, "argv", argv)
    module.main()
    pairs = find_pairs(out)
    manifest = valsets.read_manifest(out)
    assert len(pairs) == 6 and set(manifest) == {p.name for p in pairs}
    for photo in ("p0", "p1"):
        assert sorted(r.cls for r in manifest.values() if r.photo == photo) == sorted(valsets.CLASSES)
    by_class = {c: np.mean([r.input_psnr for r in manifest.values() if r.cls == c]) for c in valsets.CLASSES}
    assert by_class["mild"] > by_class["strong"]  # stronger blur costs more PSNR
    first = {n: r.input_psnr for n, r in manifest.items()}
    again = tmp_path / "again"
    monkeypatch.setattr(sys, "argv", argv[:2] + [str(again)] + argv[3:])
    module.main()
    assert {n: r.input_psnr for n, r in valsets.read_manifest(again).items()} == first  # seeded


def _set_summary(gain: float, worst: float, name: str = "img") -> dict:
    rows = [{"name": name, "class": "mild", "gain": worst}, {"name": "other", "class": "strong", "gain": 2 * gain - worst}]
    return {"gain": gain, "worst": {"name": name, "class": "mild", "gain": worst}, "images": rows}


def test_landing_rule_needs_a_gain_on_all_three_sets_and_no_image_below_the_limit():
    good = {n: _set_summary(0.4, -0.1) for n in validate.SET_NAMES}
    assert validate.SET_NAMES == ("val", "val_independent", "val_cross")
    assert validate.landing_verdict(good) == {"lands": True, "rule": validate.LANDING_RULE, "reasons": []}
    assert "LANDS" in validate.format_verdict(validate.landing_verdict(good))

    no_gain = {**good, "val_cross": _set_summary(-0.01, -0.1)}
    v = validate.landing_verdict(no_gain)
    assert not v["lands"] and v["reasons"] == ["val_cross: mean gain -0.01 dB is not positive"]

    one_bad_image = {**good, "val_independent": _set_summary(0.9, -0.31, name="x_2_mild")}
    v = validate.landing_verdict(one_bad_image)
    assert not v["lands"] and "x_2_mild -0.31 dB" in v["reasons"][0]
    at_limit = {**good, "val": _set_summary(0.9, -0.3)}
    assert validate.landing_verdict(at_limit)["lands"]

    missing = {n: good[n] for n in ("val", "val_independent")}
    v = validate.landing_verdict(missing)
    assert not v["lands"] and v["reasons"] == ["val_cross: not scored"]
    assert "does NOT land" in validate.format_verdict(v)


def test_landing_rule_is_independent_of_the_per_set_class_rule():
    """A set whose mild class loses on average but no image below -0.3 dB: no harm fails, landing may pass."""
    report = EvalReport([_score("a", 20.0, 19.8), _score("b", 20.0, 21.5)])
    manifest = {"a": valsets.PairRow("a", "p", "mild", 0.2, 4.8, 20.0), "b": valsets.PairRow("b", "p", "strong", 0.8, 19, 20.0)}
    s = validate.summarise(report, manifest)
    assert s["no_harm"] is False
    assert validate.landing_verdict({n: s for n in validate.SET_NAMES})["lands"] is True


def test_main_scores_all_three_sets_by_default_and_writes_the_verdict(tmp_path, monkeypatch):
    import json

    import deblur_cli.network.engine as engine
    import deblur_cli.weights as weights

    sets = {}
    for name in validate.SET_NAMES:
        folder = tmp_path / name
        sharp = _texture(32, 32, seed=len(sets))
        ipsnr = valsets.write_pair(folder, "photo", "photo_0_mild", 0.5 * sharp + 0.5 * np.roll(sharp, 2, axis=1), sharp)
        valsets.write_manifest(folder, [valsets.PairRow("photo_0_mild", "photo", "mild", 0.2, 4.8, ipsnr)])
        sets[name] = folder
    monkeypatch.setattr(validate, "SETS", sets)
    monkeypatch.setattr(weights, "load_model", lambda name: (None, None))

    class Identity:
        def __init__(self, model, options):
            pass

        def run(self, x):
            return x

    monkeypatch.setattr(engine, "Engine", Identity)
    out = tmp_path / "r.json"
    assert validate.main(["fake", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert list(doc["sets"]) == list(validate.SET_NAMES)
    assert doc["landing"]["lands"] is False and len(doc["landing"]["reasons"]) == 3  # identity gains nothing


def test_committed_val_cross_set_is_complete_and_from_sources_outside_training():
    import csv

    folder = validate.SETS["val_cross"]
    manifest = valsets.read_manifest(folder)
    assert len(manifest) >= 21
    photos = {r.photo for r in manifest.values()}
    for photo in photos:
        assert sorted(r.cls for r in manifest.values() if r.photo == photo) == sorted(valsets.CLASSES)
        for r in manifest.values():
            if r.photo == photo:
                for sub in ("blur", "sharp"):
                    path = folder / photo / sub / f"{r.name}.png"
                    assert path.is_file()
    from PIL import Image

    assert Image.open(next(iter(folder.glob("*/sharp/*.png")))).size == (384, 384)
    with open(folder / "MANIFEST.tsv", newline="") as f:
        sources = list(csv.DictReader(f, delimiter="\t"))
    assert {Path(r["file"]).stem for r in sources} == photos
    packages = {r["package"] for r in sources}
    assert len(packages) >= 3 and all(r["version"] and r["licence"] and r["original_path"] for r in sources)
    with open(ROOT_DIR / "bench" / "data" / "photo_corpus.tsv", newline="") as f:
        training = {r["package"] for r in csv.DictReader(f, delimiter="\t")}
    shared = ROOT_DIR.parent / "shared" / "data" / "photos" / "MANIFEST.tsv"
    if shared.is_file():
        training |= {line.split("\t")[2].removeprefix("debian package ") for line in shared.read_text().splitlines()[1:]}
    assert not packages & training
