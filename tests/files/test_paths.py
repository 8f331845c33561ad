"""Tests for deblur_cli.files.paths: the one output rule set and the one folder walker."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from deblur_cli.errors import OutputError, UsageError
from deblur_cli.files import fsutil
from deblur_cli.files.paths import (
    FileSet,
    check_distinct,
    check_image_output,
    check_output_file,
    check_output_folder,
    is_inside,
    output_in_folder,
    split_collisions,
    walk_images,
)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_fileset_knows_a_file_under_every_spelling(tmp_path: Path, monkeypatch) -> None:
    src = touch(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.png").symlink_to(src)
    os.link(src, tmp_path / "hard.png")
    inputs = FileSet([src])
    monkeypatch.chdir(tmp_path / "sub")
    for spelling in (src, tmp_path / "link.png", tmp_path / "hard.png", Path("..") / "a.png", tmp_path / "sub" / ".." / "a.png"):
        assert spelling in inputs and inputs.find(spelling) == src
    assert tmp_path / "b.png" not in inputs


def test_output_rules_in_order(tmp_path: Path) -> None:
    src = touch(tmp_path / "in.png")
    inputs = FileSet([src])
    with pytest.raises(OutputError, match="is the input file"):
        check_output_file(src, inputs, overwrite=True)
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, inputs, overwrite=True)
    with pytest.raises(OutputError, match="folder does not exist"):
        check_output_file(tmp_path / "missing" / "o.png", inputs, overwrite=False)
    check_output_file(tmp_path / "missing" / "o.png", inputs, overwrite=False, create_folder=True)
    assert not (tmp_path / "missing").exists(), "a check creates nothing"
    blocker = touch(tmp_path / "file.txt")
    with pytest.raises(OutputError, match="file.txt is not a folder"):
        check_output_file(blocker / "o.png", inputs, overwrite=False)
    with pytest.raises(OutputError, match="file.txt is a file"):
        check_output_file(blocker / "deeper" / "o.png", inputs, overwrite=False, create_folder=True)
    existing = touch(tmp_path / "old.png")
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        check_output_file(existing, inputs, overwrite=False)
    check_output_file(existing, inputs, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "in.png", "old.png"]  # probes cleaned up


def test_unwritable_folder_is_found_by_probing(tmp_path: Path, monkeypatch) -> None:
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fsutil, "tempfile", SimpleNamespace(mkstemp=denied))
    with pytest.raises(OutputError, match="Permission denied"):
        check_output_file(tmp_path / "o.png", FileSet(), overwrite=False)
    with pytest.raises(OutputError, match="Permission denied"):
        check_output_folder(tmp_path / "new" / "deeper")


def test_image_suffix_and_distinct_outputs(tmp_path: Path) -> None:
    check_image_output(tmp_path / "a.JPG")
    with pytest.raises(UsageError, match=r"'\.xyz' files"):
        check_image_output(tmp_path / "a.xyz")
    with pytest.raises(UsageError, match="end it with / for a folder"):
        check_image_output(tmp_path / "a")
    a, b = tmp_path / "a.jpg", tmp_path / "a.png"
    out = tmp_path / "o" / "a.png"
    kept, refused = split_collisions([(a, out), (b, out), (touch(tmp_path / "c.png"), tmp_path / "c.png")], FileSet([tmp_path / "c.png"]))
    assert kept == [(a, out)] and [why.split(";")[0] for _, why in refused] == [
        f"output {out} is also the output of {a}",
        f"output {tmp_path / 'c.png'} would replace an input",
    ]
    with pytest.raises(OutputError, match="also the output"):
        check_distinct([(a, out), (b, out)])


def test_names_inside_a_folder(tmp_path: Path) -> None:
    src = tmp_path / "photos" / "IMG.gif"
    assert output_in_folder(src, tmp_path / "out") == tmp_path / "out" / "IMG.png"  # GIF cannot be written
    assert output_in_folder(src, tmp_path / "photos") == tmp_path / "photos" / "IMG_deblurred.png"
    assert output_in_folder(src, tmp_path / "out", fmt=".jpg") == tmp_path / "out" / "IMG.jpg"
    assert is_inside(tmp_path / "a" / "b", tmp_path / "a") and not is_inside(tmp_path / "a", tmp_path / "a")
    assert not is_inside(tmp_path / "ab", tmp_path / "a")


def test_walker_sorted_hidden_skipped_links_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for rel in ("b.jpg", "a.PNG", "sub/c.webp", "sub/notes.txt", ".hidden/d.png", "._e.jpg", ".deblur-tmp-x.png", "out/f.png"):
        touch(root / rel)
    (root / "sub" / "loop").symlink_to(root)  # a folder loop: never entered
    (root / "link.jpg").symlink_to(root / "b.jpg")  # a file link: listed
    walk = walk_images(root, exclude=[root / "out"])
    assert [p.relative_to(root).as_posix() for p in walk.images] == ["a.PNG", "b.jpg", "link.jpg", "sub/c.webp"]
    assert walk.problems == ()
