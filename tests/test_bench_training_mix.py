"""bench/training_mix.py: builds a mix folder from its list, refusing missing or changed photos."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import training_mix as tm  # noqa: E402


def _sources(tmp_path: Path) -> tuple[Path, Path, Path]:
    corpus, train = tmp_path / "corpus", tmp_path / "train"
    corpus.mkdir()
    train.mkdir()
    (corpus / "a.jpg").write_bytes(b"photo a")
    (corpus / "b.jpg").write_bytes(b"photo b")
    (train / "c.jpg").write_bytes(b"photo c")
    listing = tmp_path / "mix.tsv"
    rows = [("a.jpg", "corpus", "a.jpg", b"photo a"), ("train_c.jpg", "train", "c.jpg", b"photo c")]
    listing.write_text("# comment\nfile\torigin\tsource_file\tsha256\tpackage\n" + "".join(
        f"{f}\t{o}\t{s}\t{hashlib.sha256(data).hexdigest()}\tpkg\n" for f, o, s, data in rows))
    return corpus, train, listing


def test_builds_exactly_the_listed_photos(tmp_path):
    corpus, train, listing = _sources(tmp_path)
    out = tmp_path / "mix"
    assert tm.build(tm.read_list(listing), corpus, train, out) == 2
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "train_c.jpg"]  # b.jpg is not listed
    assert (out / "train_c.jpg").read_bytes() == b"photo c"


def test_changed_or_missing_photo_writes_nothing(tmp_path):
    corpus, train, listing = _sources(tmp_path)
    (corpus / "a.jpg").write_bytes(b"another photo")
    (train / "c.jpg").unlink()
    out = tmp_path / "mix"
    with pytest.raises(ValueError, match=r"2 of 2 photos.*a\.jpg.*differs.*c\.jpg is missing"):
        tm.build(tm.read_list(listing), corpus, train, out)
    assert not out.exists()


def test_refuses_a_folder_that_is_not_empty(tmp_path):
    corpus, train, listing = _sources(tmp_path)
    out = tmp_path / "mix"
    out.mkdir()
    (out / "keep.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="not empty"):
        tm.build(tm.read_list(listing), corpus, train, out)
    assert [p.name for p in out.iterdir()] == ["keep.jpg"]


def test_committed_list_is_consistent_with_the_corpus_manifest():
    import csv

    entries = tm.read_list(tm.DEFAULT_LIST)
    with open(ROOT / "bench" / "data" / "photo_corpus.tsv", encoding="utf-8") as f:
        corpus = {r["file"]: r["sha256"] for r in csv.DictReader(f, delimiter="\t")}
    assert len({e.file for e in entries}) == len(entries) >= 140
    for e in entries:
        if e.origin == "corpus":
            assert corpus[e.source_file] == e.sha256, e.file
        else:
            assert e.origin == "train" and e.file == f"train_{e.source_file}"
    gcompris = sum(e.package == "gcompris-qt-data" for e in entries)
    assert gcompris <= len(entries) / 2  # the cap the list documents
