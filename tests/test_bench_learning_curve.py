"""bench/learning_curve.py: curves from a training log.jsonl, the slope rule and the PNG."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import learning_curve as lc


def _write_log(run: Path, lines: list) -> None:
    run.mkdir(parents=True, exist_ok=True)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
    (run / "log.jsonl").write_text(text + "\n")


def _val(step, hours, psnr, inp=30.0, **extra):
    return {"step": step, "cpu_hours": hours, "val_psnr": psnr, "val_input_psnr": inp, **extra}


def test_curves_hold_the_gain_per_set_and_skip_other_lines(tmp_path):
    lines = [
        {"step": 10, "loss": 0.1, "cpu_hours": 0.1},  # a training line: no validation
        _val(500, 0.5, 30.2, val_independent_psnr=25.1, val_independent_input_psnr=25.0),
        _val(1000, 1.0, 30.5),
        _val(1000, 1.1, 30.6),  # resumed run logged step 1000 again: the later line wins
        '{"step": 1500, "cpu_hours": 1.5, "val_psnr": 31',  # torn last line of a running job
    ]
    _write_log(tmp_path / "run", lines)
    curves = lc.curves_from_log(lc.read_log(tmp_path / "run" / "log.jsonl"), "run")
    assert [c.set_name for c in curves] == ["val", "val_independent"]
    val, ind = curves
    assert [(h, round(g, 6), s) for h, g, s in val.points] == [(0.5, 0.2, 500), (1.1, 0.6, 1000)]
    assert [s for _, _, s in ind.points] == [500] and ind.points[0][1] == pytest.approx(0.1)


def test_validation_lines_without_cpu_hours_take_the_latest_training_lines():
    lines = [
        {"step": 490, "loss": 0.2, "cpu_hours": 0.49},
        {"step": 500, "loss": 0.2, "cpu_hours": 0.5},
        {"step": 500, "val_psnr": 30.3, "val_input_psnr": 30.0},  # as deblur train writes it
        {"step": 1000, "val_psnr": 30.4, "val_input_psnr": 30.0, "cpu_hours": 1.2},
    ]
    (curve,) = lc.curves_from_log(lines, "run")
    assert [(h, s) for h, _, s in curve.points] == [(0.5, 500), (1.2, 1000)]
    assert lc.curves_from_log([{"step": 5, "val_psnr": 30.0, "val_input_psnr": 29.0}], "r") == []


def test_recent_slope_uses_the_last_two_cpu_hours():
    points = tuple((h, g, i) for i, (h, g) in enumerate([(0.0, 0.0), (1.0, 1.0), (2.0, 1.2), (3.0, 1.3), (4.0, 1.4)]))
    assert lc.recent_slope(lc.Curve("r", "val", points)) == pytest.approx(0.1)
    assert lc.recent_slope(lc.Curve("r", "val", points[:1])) is None


def test_main_draws_a_png_with_each_run_in_its_colour(tmp_path, capsys):
    _write_log(tmp_path / "a", [_val(i * 100, i * 0.25, 30 + 0.1 * i) for i in range(1, 9)])
    _write_log(tmp_path / "b", [_val(i * 100, i * 0.25, 30 - 0.05 * i) for i in range(1, 9)])
    out = tmp_path / "docs" / "curve.png"
    assert lc.main([str(tmp_path / "a"), str(tmp_path / "b"), "--label", "lite", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lite val: step 800, 2.00 CPU-h, gain +0.800 dB, +0.400 dB/CPU-h" in printed
    assert "b val: step 800" in printed and "gain -0.400 dB" in printed
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (960, 600)
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert tuple(lc.COLOURS[0]) in colours and tuple(lc.COLOURS[1]) in colours


def test_main_fails_cleanly_without_points(tmp_path, capsys):
    _write_log(tmp_path / "r", [{"step": 1, "loss": 0.5}])
    assert lc.main([str(tmp_path / "r"), "--out", str(tmp_path / "x.png")]) == 1
    assert not (tmp_path / "x.png").exists()
    assert lc.main([str(tmp_path / "missing")]) == 2


def test_history_and_chain_put_stages_end_to_end(tmp_path, capsys):
    hist = tmp_path / "lineage.tsv"
    hist.write_text("# earlier stages\nstage\tcpu_hours\tset\tgain_db\nold\t1.0\tval\t0.2\nold\t2.0\tval\t0.4\n")
    _write_log(tmp_path / "r1", [_val(0, 0.0, 30.4), _val(100, 0.5, 30.5)])
    _write_log(tmp_path / "r2", [_val(0, 0.0, 30.5), _val(100, 1.0, 30.9)])
    history = lc.read_history(hist)
    assert [(c.run, c.points) for c in history] == [("old", ((1.0, 0.2, -1), (2.0, 0.4, -1)))]
    runs = [lc.curves_from_log(lc.read_log(tmp_path / r / "log.jsonl"), r) for r in ("r1", "r2")]
    chained = lc.chain(runs, start_hours=2.0)
    assert [p[0] for c in chained for p in c.points] == pytest.approx([2.0, 2.5, 2.5, 3.5])
    out = tmp_path / "curve.png"
    rc = lc.main([str(tmp_path / "r1"), str(tmp_path / "r2"), "--chain", "--history", str(hist), "--out", str(out)])
    assert rc == 0 and out.is_file()
    text = capsys.readouterr().out
    assert "r2 val: step 100, 3.50 CPU-h, gain +0.900 dB" in text
    assert "all stages val: 3.50 CPU-h in all" in text


def test_history_with_the_wrong_columns_is_refused(tmp_path):
    hist = tmp_path / "bad.tsv"
    hist.write_text("name\thours\ngain\t1\n")
    with pytest.raises(ValueError, match="expected the columns"):
        lc.read_history(hist)
