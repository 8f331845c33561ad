"""bench/recipe_arms.py: the equal-CPU recipe arms of issue 10, part 3."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import recipe_arms  # noqa: E402

from deblur_cli.training.config import build_config  # noqa: E402


def test_each_written_arm_loads_and_differs_from_the_base_arm_only_in_its_change(tmp_path):
    paths = {p.stem: p for p in recipe_arms.write_arms(ROOT / "weights" / "k3-cpu.toml", tmp_path)}
    assert set(paths) == set(recipe_arms.ARMS)
    base = build_config(paths["A-base"]).to_dict()
    assert base["steps"] == recipe_arms.SHORT["steps"] and base["model"]["kernel_size"] == 3
    for name, (top, synthesis) in recipe_arms.ARMS.items():
        cfg = build_config(paths[name]).to_dict()
        changed = {k for k in cfg if cfg[k] != base[k]}
        assert changed == set(top) | ({"synthesis"} if synthesis else set()), name
        for k, v in synthesis.items():
            assert cfg["synthesis"][k] == v
        # the rest of the base's synthesis is carried over unchanged
        assert {k: v for k, v in cfg["synthesis"].items() if k not in synthesis} == {
            k: v for k, v in base["synthesis"].items() if k not in synthesis
        }


def test_arm_config_does_not_modify_the_base():
    base = {"lr": 3e-4, "steps": 700, "synthesis": {"strength_beta": [2.0, 4.0]}}
    cfg = recipe_arms.arm_config(base, {"loss": "psnr"}, {"none_prob": 0.15})
    assert base == {"lr": 3e-4, "steps": 700, "synthesis": {"strength_beta": [2.0, 4.0]}}
    assert cfg["steps"] == 120 and cfg["loss"] == "psnr"
    assert cfg["synthesis"] == {"strength_beta": [2.0, 4.0], "none_prob": 0.15}


def _set(gain: float, worst: float, no_harm: bool, name: str = "img_7") -> dict:
    return {
        "gain": gain,
        "per_class": {"mild": {"gain": 0.5}, "medium": {"gain": 0.25}, "strong": {"gain": -0.125}},
        "worst": {"name": name, "gain": worst},
        "no_harm": no_harm,
    }


def _result(gain: float, worst: float, no_harm: bool) -> dict:
    return {"sets": {"val": _set(gain, worst, no_harm)}}


def test_table_has_a_row_per_arm_and_set_with_the_baseline_first(tmp_path):
    (tmp_path / "A.json").write_text(json.dumps(_result(0.6, -2.29, False)))
    (tmp_path / "k3.json").write_text(json.dumps(_result(0.65, -1.38, False)))
    (tmp_path / "E.json").write_text(json.dumps(_result(0.604, -0.15, True)))
    text = recipe_arms.table(recipe_arms.read_scores(tmp_path, "k3.json"))
    rows = text.split("\n\n")[0].splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["k3", "A", "E"]
    assert "| +0.604 | +0.50 / +0.25 / -0.12 | -0.15 (img_7) | yes |" in rows[2]
    assert rows[1].endswith("| no |")


def test_landing_table_judges_each_arm_against_the_baseline_row(tmp_path):
    def sets(headline: float, worst: float = -0.1, harm: float = 45.0) -> dict:
        return {
            "val_cross_clean": {**_set(headline, worst, True, "vc_1_mild"), "job": "blur"},
            "val_cross": {**_set(0.5, -0.2, True, "vi_1_mild"), "job": "mixed"},
            "val_cross_harm": {"job": "harm", "gain": float("nan"), "min_psnr": harm, "psnr": harm + 3,
                               "worst": {"name": "h", "gain": 0.0}},
        }

    (tmp_path / "base.json").write_text(json.dumps({"sets": sets(0.25)}))
    (tmp_path / "better.json").write_text(json.dumps({"sets": sets(0.6)}))
    (tmp_path / "harms.json").write_text(json.dumps({"sets": sets(0.9, harm=39.0)}))
    (tmp_path / "loses.json").write_text(json.dumps({"sets": sets(0.9, worst=-0.45)}))
    text = recipe_arms.table(recipe_arms.read_scores(tmp_path, "base.json"))
    per_set, landing = text.split("\n\n")
    assert len(per_set.splitlines()) == 2 + 4 * 3  # a row per arm and set
    assert "| base | val_cross_harm | min 45.00 dB | mean 48.00 dB | | |" in per_set
    head, _, *rows = landing.splitlines()
    assert head == "| arm | val_cross_clean | val_cross | val_cross_harm | worst image (any set) | lands |"
    assert rows[0] == "| base | +0.250 | +0.500 | 45.00 dB | -0.20 (val_cross: vi_1_mild) | baseline |"
    by_name = {r.split("|")[1].strip(): r for r in rows}
    assert by_name["better"].endswith("| yes |")
    assert by_name["harms"].endswith("| no |")  # sharp crops come back worse than the baseline's
    assert by_name["loses"].endswith("| no |") and "-0.45 (val_cross_clean: vc_1_mild)" in by_name["loses"]
