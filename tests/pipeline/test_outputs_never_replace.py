"""Issue 21, items 1 and 2: an output never replaces a file that deblur did not write.

* A file that appears at an output's name while the run works is kept; that output fails
  (a single image: OutputError; a batch: the file is listed and the batch goes on).
* Two batches over one folder: the second to finish an output loses, and says so.
* In place, a user's own ``x_deblurred.jpg`` is a photo, never taken for an earlier result
  by its name: results are known by the record of what deblur wrote (files.ledger).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from deblur_cli.errors import OutputError
from deblur_cli.files import ledger
from deblur_cli.files.fsutil import TMP_PREFIX
from deblur_cli.pipeline import SaveOptions, deblur_batch, deblur_file, plan_batch, plan_image, run_image
from tests.pipeline.test_pipeline import InvertDeblurrer, assert_inverted, make_image, sha


class AppearsWhileWorking(InvertDeblurrer):
    """Writes the user's file at ``target`` (once) while the network 'runs'."""

    def __init__(self, target: Path, text: str = "precious\n") -> None:
        super().__init__()
        self.target, self.text = target, text

    def run(self, rgb: np.ndarray, progress=None) -> np.ndarray:
        if self.calls == 0:
            self.target.write_text(self.text)
        return super().run(rgb, progress)


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TMP_PREFIX)]


def test_a_file_appearing_at_the_output_during_the_run_is_kept(tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    make_image(src, 0)
    out = tmp_path / "t.png"
    with pytest.raises(OutputError, match="appeared while deblur was working"):
        deblur_file(AppearsWhileWorking(out), src, out)
    assert out.read_text() == "precious\n"
    assert not _temps(tmp_path)


@pytest.mark.parametrize("overlap", [True, False])
def test_in_a_batch_the_lost_race_is_that_files_failure(tmp_path: Path, overlap: bool) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_image(src / "a.png", 0)
    make_image(src / "b.png", 1)
    out.mkdir()
    result = deblur_batch(AppearsWhileWorking(out / "a.png"), src, out, overlap=overlap)
    assert [p.name for p, _ in result.failed] == ["a.png"]
    assert "appeared while deblur was working" in result.failed[0][1]
    assert [s.name for s, _ in result.processed] == ["b.png"]
    assert (out / "a.png").read_text() == "precious\n"
    assert_inverted(src / "b.png", out / "b.png")
    assert not _temps(out)


class SecondBatchMeanwhile(InvertDeblurrer):
    """On its first call, a whole second batch over the same folders runs to the end."""

    def __init__(self, src: Path, out: Path) -> None:
        super().__init__()
        self.src, self.out, self.other = src, out, None

    def run(self, rgb: np.ndarray, progress=None) -> np.ndarray:
        if self.other is None:
            self.other = deblur_batch(InvertDeblurrer(), self.src, self.out, overlap=False)
        return super().run(rgb, progress)


def test_two_batches_over_one_folder_never_both_write_an_output(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        make_image(src / f"{i}.png", i)
    first = SecondBatchMeanwhile(src, out)
    result = deblur_batch(first, src, out, overlap=False)
    assert len(first.other.processed) == 3  # the second run wrote every output
    assert result.processed == []  # the first lost the race it was in, and says so ...
    assert [(p.name, "appeared" in why) for p, why in result.failed] == [("0.png", True)]
    assert sorted(p.name for p, _ in result.skipped) == ["1.png", "2.png"]  # ... and skips the rest
    written = {p.name: sha(p) for p in out.iterdir()}
    assert sorted(written) == ["0.png", "1.png", "2.png"] and not _temps(out)


# ---------------------------------------------------------------------------- item 2


@pytest.mark.parametrize("overwrite", [False, True])
def test_in_place_batch_never_takes_a_users_photo_for_a_result(tmp_path: Path, overwrite: bool) -> None:
    folder = tmp_path / "in"
    make_image(folder / "x.jpg", 0)
    make_image(folder / "x_deblurred.jpg", 1)  # the user's own photo, named like a result
    mine = sha(folder / "x_deblurred.jpg")
    result = deblur_batch(InvertDeblurrer(), folder, folder, SaveOptions(overwrite=overwrite))
    assert sha(folder / "x_deblurred.jpg") == mine
    assert [p.name for p, _ in result.failed] == ["x.jpg"]
    assert "x_deblurred.jpg" in result.failed[0][1] and "deblur did not write" in result.failed[0][1]
    assert [(s.name, d.name) for s, d in result.processed] == [("x_deblurred.jpg", "x_deblurred_deblurred.jpg")]
    again = deblur_batch(InvertDeblurrer(), folder, folder)  # its result is known for one
    assert [s.name for s, _ in again.skipped] == ["x_deblurred.jpg"]
    assert not (folder / "x_deblurred_deblurred_deblurred.jpg").exists()


def test_a_result_the_user_edited_is_theirs_again(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    make_image(folder / "a.png", 0)
    deblur_batch(InvertDeblurrer(), folder, folder)
    result = folder / "a_deblurred.png"
    assert ledger.written_by_deblur(result)
    make_image(result, 5)  # edited and saved by the user
    os.utime(result, ns=(1, 1))
    assert not ledger.written_by_deblur(result)
    again = deblur_batch(InvertDeblurrer(), folder, folder, SaveOptions(overwrite=True))
    assert [p.name for p, _ in again.failed] == ["a.png"]  # it would replace the user's file


def test_results_of_an_earlier_glob_run_are_left_out(tmp_path: Path) -> None:
    """`deblur *.jpg` a second time: the first run's results are not inputs."""
    names = ["a.png", "b.png"]
    for i, name in enumerate(names):
        make_image(tmp_path / name, i)
    run_image(InvertDeblurrer(), plan_image([tmp_path / n for n in names]))
    again = sorted(tmp_path.glob("*.png"))  # a.png a_deblurred.png b.png b_deblurred.png
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        plan_image(again)
    plan = plan_image(again, options=SaveOptions(overwrite=True))
    assert [(s.name, d.name) for s, d in plan.jobs] == [("a.png", "a_deblurred.png"), ("b.png", "b_deblurred.png")]
    assert [p.name for p, _ in plan.notes] == ["a_deblurred.png", "b_deblurred.png"]
    run_image(InvertDeblurrer(), plan)
    assert_inverted(tmp_path / "a.png", tmp_path / "a_deblurred.png")


def test_a_users_photo_named_like_a_result_is_an_input_of_a_glob(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", 0)
    make_image(tmp_path / "a_deblurred.png", 1)  # not written by deblur
    with pytest.raises(OutputError, match="is the input file"):
        plan_image([tmp_path / "a.png", tmp_path / "a_deblurred.png"], options=SaveOptions(overwrite=True))


def test_plan_batch_in_place_lists_the_users_look_alike_as_an_input(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    make_image(folder / "x.jpg", 0)
    make_image(folder / "x_deblurred.jpg", 1)
    plan = plan_batch(folder, folder)
    assert [s.name for s, _ in plan.jobs] == ["x_deblurred.jpg"]
    assert [p.name for p, _ in plan.problems] == ["x.jpg"]
