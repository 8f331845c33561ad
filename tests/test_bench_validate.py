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
    assert s["worst"] == {"name": "b", "class": "mild", "gain": pytest.approx(-0.1), "psnr": 29.9}
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


def _set_summary(gain: float, worst: float, name: str = "img", job: str = "blur") -> dict:
    rows = [{"name": name, "class": "mild", "gain": worst}, {"name": "other", "class": "strong", "gain": 2 * gain - worst}]
    per_class = {r["class"]: {"count": 1, "gain": r["gain"]} for r in rows}
    worst_row = {"name": name, "class": "mild", "gain": worst}
    return {"job": job, "gain": gain, "per_class": per_class, "worst": worst_row, "images": rows}


def _harm(min_psnr: float) -> dict:
    return {"job": "harm", "gain": float("nan"), "min_psnr": min_psnr, "worst": {"name": "h", "gain": 0.0}, "images": []}


def _results(headline: float = 1.0, noise: float = 0.2, harm: float = 45.0, worst: float = -0.1) -> dict:
    return {
        "val_cross_clean": _set_summary(headline, worst),
        "uniform_shake": _set_summary(0.5, 0.0),
        "val_cross_noise": _set_summary(noise, 0.0, job="noise"),
        "val_cross": _set_summary(0.4, 0.0, job="mixed"),
        "val_cross_harm": _harm(harm),
    }


def test_landing_rule_needs_blur_alone_to_rise_and_nothing_else_to_get_worse():
    base = _results()
    assert validate.landing_verdict(_results(headline=1.2), base) == {
        "lands": True, "rule": validate.LANDING_RULE, "reasons": [],
    }
    assert "LANDS" in validate.format_verdict(validate.landing_verdict(_results(headline=1.2), base))

    v = validate.landing_verdict(_results(headline=1.0), base)  # equal is not a rise
    assert not v["lands"] and "val_cross_clean: blur-alone gain +1.000 dB is not above" in v["reasons"][0]

    v = validate.landing_verdict(_results(headline=1.2, worst=-0.31), base)
    assert not v["lands"] and "img -0.31 dB" in v["reasons"][0]
    assert validate.landing_verdict(_results(headline=1.2, worst=-0.3), base)["lands"]

    v = validate.landing_verdict(_results(headline=1.2, noise=0.14), base)
    assert not v["lands"] and v["reasons"] == ["val_cross_noise: noise-alone gain +0.14 dB, baseline +0.20 dB"]
    assert validate.landing_verdict(_results(headline=1.2, noise=0.16), base)["lands"]

    v = validate.landing_verdict(_results(headline=1.2, harm=44.8), base)
    assert not v["lands"] and v["reasons"] == ["do no harm: minimum PSNR 44.80 dB, baseline 45.00 dB"]

    v = validate.landing_verdict(_results(headline=1.2), None)
    assert not v["lands"] and "no baseline" in v["reasons"][0]
    missing = {k: r for k, r in _results().items() if k != "val_cross_clean"}
    assert validate.landing_verdict(missing, base)["reasons"][0] == "val_cross_clean: not scored"
    assert "does NOT land" in validate.format_verdict(v)


def test_targets_are_issue_25s_goals():
    met = dict(validate.targets(_results(headline=1.6, harm=41.0)))
    assert met["blur alone on val_cross_clean >= +1.5 dB"] is True
    assert met["uniform_shake >= +1.0 dB"] is False  # 0.5
    assert met["sharp crops back at >= 40 dB (minimum)"] is True
    assert dict(validate.targets(_results(harm=39.9)))["sharp crops back at >= 40 dB (minimum)"] is False
    assert dict(validate.targets({}))["uniform_shake >= +1.0 dB"] is None


def test_harm_summary_reports_the_minimum_psnr_and_no_gain():
    report = EvalReport([_score("a", 100.0, 45.0), _score("b", 100.0, 38.0)])
    s = validate.summarise(report, {}, job="harm")
    assert s["min_psnr"] == 38.0 and s["psnr"] == pytest.approx(41.5) and s["worst"]["name"] == "b"
    assert np.isnan(s["gain"])
    assert "minimum 38.00 dB (b)" in validate.format_summary("val_harm", s)


def test_derived_sets_keep_the_targets_and_noise_is_seeded(tmp_path):
    sharp = _texture(48, 48)
    valsets.write_pair(tmp_path / "src", "photo", "photo_0_mild", np.roll(sharp, 1, axis=1), sharp)
    valsets.write_manifest(tmp_path / "src", [valsets.PairRow("photo_0_mild", "photo", "mild", 0.2, 4.8, 20.0)])
    harm = valsets.derived_set(tmp_path / "src", tmp_path / "harm", "harm")
    noise = valsets.derived_set(tmp_path / "src", tmp_path / "noise", "noise")
    again = valsets.derived_set(tmp_path / "src", tmp_path / "again", "noise")
    load = valsets.load_photo
    for sub in ("blur", "sharp"):
        assert np.array_equal(load(harm / "photo" / sub / "photo_0_mild.png"), load(tmp_path / "src/photo/sharp/photo_0_mild.png"))
    noisy = load(noise / "photo/blur/photo_0_mild.png")
    assert np.array_equal(noisy, load(again / "photo/blur/photo_0_mild.png"))
    assert 0.002 < np.abs(noisy - load(noise / "photo/sharp/photo_0_mild.png")).mean() < 0.1
    assert valsets.read_manifest(noise)["photo_0_mild"].cls == "mild"


def test_main_scores_every_job_and_writes_the_verdict(tmp_path, monkeypatch):
    import json

    data = tmp_path / "data"
    for name in (*validate.BASE_SETS, *(f"{n}_clean" for n in validate.BASE_SETS), validate.UNIFORM):
        sharp = _texture(32, 32, seed=len(name))
        folder = data / name
        ipsnr = valsets.write_pair(folder, "photo", "photo_0_mild", 0.5 * sharp + 0.5 * np.roll(sharp, 2, axis=1), sharp)
        valsets.write_manifest(folder, [valsets.PairRow("photo_0_mild", "photo", "mild", 0.2, 4.8, ipsnr)])
    monkeypatch.setattr(validate, "DATA", data)
    monkeypatch.setattr(validate, "make_runner", lambda *args: (lambda x: x))
    out = tmp_path / "r.json"
    assert validate.main(["fake", "--json", str(out), "--baseline", str(tmp_path / "none.json")]) == 0
    doc = json.loads(out.read_text())
    expected = {validate.set_name(b, j) for b in validate.BASE_SETS for j in validate.JOBS} | {validate.UNIFORM}
    assert set(doc["sets"]) == expected
    assert doc["sets"]["val_harm"]["min_psnr"] == 100.0  # the identity returns sharp crops unchanged (capped)
    assert doc["sets"]["val_cross_clean"]["gain"] == pytest.approx(0.0, abs=1e-6)
    assert doc["landing"]["lands"] is False  # no baseline to compare with

    out2 = tmp_path / "blur.json"
    assert validate.main(["fake", "--jobs", "blur", "--json", str(out2)]) == 0
    assert set(json.loads(out2.read_text())["sets"]) == {"val_clean", "val_independent_clean", "val_cross_clean", "uniform_shake"}


def test_committed_twins_share_crops_and_blur_with_their_sets_and_are_noise_free():
    for base in validate.BASE_SETS:
        twin, mixed = validate.DATA / f"{base}_clean", validate.DATA / base
        rows, twin_rows = valsets.read_manifest(mixed), valsets.read_manifest(twin)
        assert set(rows) == set(twin_rows) and len(rows) >= 21
        assert all(rows[n].strength == twin_rows[n].strength for n in rows)  # the same blur was drawn
        for n, r in rows.items():
            for sub in ("sharp",):
                a, b = (f / r.photo / sub / f"{n}.png" for f in (mixed, twin))
                assert a.read_bytes() == b.read_bytes()
        # noise-free: the twin's input is closer to its target than the noisy set's, on average
        assert np.mean([twin_rows[n].input_psnr for n in rows]) > np.mean([rows[n].input_psnr for n in rows])


def test_committed_val_cross_set_is_complete_and_from_sources_outside_training():
    import csv

    folder = validate.DATA / "val_cross"
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


def test_independent_blur_clean_twin_draws_the_same_and_adds_no_noise():
    region = _texture(64 + 2 * 16, 64 + 2 * 16, seed=7)
    spec = ib.BlurSpec(margin=16, max_frames=41, jpeg_prob=1.0)
    rng_noisy, rng_clean = np.random.default_rng(2), np.random.default_rng(2)
    noisy, sharp, extent = ib.blur_pair(region, rng_noisy, 6.0, 64, spec)
    clean, sharp2, extent2 = ib.blur_pair(region, rng_clean, 6.0, 64, spec, clean=True)
    assert np.array_equal(sharp, sharp2) and extent == extent2
    assert rng_noisy.random() == rng_clean.random()  # the same draws: the next pair is the same too
    quiet = ib.BlurSpec(margin=16, max_frames=41, jpeg_prob=0.0, photons_at_white=(1e9, 1e9), read_noise_e=(0.0, 0.0))
    ideal, _, _ = ib.blur_pair(region, np.random.default_rng(2), 6.0, 64, quiet)
    assert np.abs(clean - ideal).max() < 2e-3  # the twin is the blur without the sensor
    assert np.abs(noisy - ideal).mean() > 3 * np.abs(clean - ideal).mean()
