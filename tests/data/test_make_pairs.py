"""Tests for deblur_cli.data.make_pairs: the command writes a dataset that datasets reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deblur_cli.data.datasets import detect_layout, find_pairs
from deblur_cli.data.make_pairs import make_pairs, plan_make_pairs
from deblur_cli.errors import DataError, OutputError
from deblur_cli.synthesis import SynthesisConfig

SMALL = SynthesisConfig(margin=8, max_shake_px=6.0, max_object_px=6.0)


def write_image(path: Path, w: int = 40, h: int = 30, seed: int = 0, ext_format: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=ext_format)
    return path


def photo_folder(root: Path) -> Path:
    write_image(root / "big.jpg", w=120, h=90, seed=1, ext_format="JPEG")
    write_image(root / "sub" / "tiny.png", w=20, h=12, seed=2)  # smaller than the crop
    return root


def test_make_pairs_writes_gopro_layout(tmp_path: Path) -> None:

    photos = photo_folder(tmp_path / "photos")
    write_image(photos / "big.png", w=50, h=50, seed=9)  # same stem as big.jpg
    out = tmp_path / "pairs"
    calls = []
    count = make_pairs(
        photos, out, cfg=SMALL, seed=1, crop=32, pairs_per_image=2, progress=lambda d, t: calls.append((d, t))
    )
    assert count == 6 and calls[-1] == (3, 3)
    assert detect_layout(out) == "gopro"
    pairs = find_pairs(out)
    assert len(pairs) == 6 and {p.sequence for p in pairs} == {"big", "big_2", "tiny"}
    assert sorted(p.name for p in pairs if p.sequence == "tiny") == ["tiny_0", "tiny_1"]
    for p in pairs:
        assert Image.open(p.blur).size == Image.open(p.sharp).size == (32, 32)
    assert not list(out.rglob(".deblur-tmp-*"))
    # same seed, same pairs; a non-empty output folder is refused
    again = tmp_path / "again"
    make_pairs(photos, again, cfg=SMALL, seed=1, crop=32, pairs_per_image=2)
    assert (again / "tiny" / "blur" / "tiny_1.png").read_bytes() == (out / "tiny" / "blur" / "tiny_1.png").read_bytes()
    from deblur_cli.errors import OutputError

    with pytest.raises(OutputError, match="not empty"):
        make_pairs(photos, out, cfg=SMALL)


def test_make_pairs_whole_photos_and_bad_files(tmp_path: Path) -> None:
    from deblur_cli.errors import InputError

    photos = photo_folder(tmp_path / "photos")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "pairs"
    with pytest.raises(InputError, match="1 of 3 photos could not be used: broken.jpg"):
        make_pairs(photos, out, cfg=SMALL)
    assert Image.open(out / "big" / "sharp" / "big_0.png").size == (120 - 16, 90 - 16)  # margin removed
    errors = []
    assert make_pairs(photos, tmp_path / "p2", cfg=SMALL, on_error=lambda p, m: errors.append(p.name)) == 2
    assert errors == ["broken.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        make_pairs(tmp_path / "empty", tmp_path / "p3")
    with pytest.raises(DataError, match="not found"):
        make_pairs(tmp_path / "missing", tmp_path / "p4")



def test_plan_creates_nothing_and_skips_hidden_files_and_its_own_output(tmp_path: Path) -> None:
    photos = photo_folder(tmp_path / "photos")
    write_image(photos / "._big.jpg", seed=3)  # macOS AppleDouble: hidden, never a photo
    out = photos / "pairs"  # inside the photo folder: left out of the walk
    plan = plan_make_pairs(photos, out, cfg=SMALL, crop=16)
    assert [p.relative_to(photos).as_posix() for p in plan.photos] == ["big.jpg", "sub/tiny.png"]
    assert not out.exists(), "a plan writes nothing"


def test_unwritable_output_is_refused_before_any_work(tmp_path: Path) -> None:
    photos = photo_folder(tmp_path / "photos")
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="file.txt"):
        plan_make_pairs(photos, blocker / "pairs", cfg=SMALL)
    assert blocker.read_text() == "a file where a folder should be"
