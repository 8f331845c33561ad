#!/usr/bin/env python3
"""Build the photo folder a set of weights was trained on, from its committed list.

    python bench/training_mix.py CORPUS_DIR OUT_DIR [--train ../shared/data/photos/train]
                                 [--list bench/data/training_mix.tsv]

CORPUS_DIR is the output of ``bench/photo_corpus.py`` (by default it builds it in
``~/.cache/deblur/photo_corpus``). The list (``bench/data/training_mix.tsv``, the photos of the
long run that made the k3-v3 weights, docs/training.md) names each photo of the mix, where it comes from (``corpus`` or ``train``),
that folder's file name and its sha256. The mix is the corpus with GCompris capped at two
thirds of its photos (every third one in sha256 order left out, so that one package is half of
the mix rather than 60 %), plus the photos of ``../shared/data/photos/train`` the corpus has no
copy of. Every file is checked against its sha256 before it is copied, so a corpus built from
other package versions fails here instead of training on other photos. OUT_DIR must be new or
empty; nothing is written to it when a photo is missing or differs.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from deblur_cli.weights.formats import sha256_file

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIST = ROOT / "bench" / "data" / "training_mix.tsv"
DEFAULT_TRAIN = ROOT.parent / "shared" / "data" / "photos" / "train"


@dataclass(frozen=True)
class MixEntry:
    """One photo of the mix: its name in the mix folder and where its bytes come from."""

    file: str
    origin: str  # "corpus" or "train"
    source_file: str
    sha256: str
    package: str


def read_list(path: Path) -> list[MixEntry]:
    """The rows of a mix list (tab-separated, ``#`` comment lines, a header line)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return [MixEntry(**row) for row in csv.DictReader(lines, delimiter="\t")]


def resolve(entries: list[MixEntry], corpus_dir: Path, train_dir: Path) -> list[tuple[Path, MixEntry]]:
    """Each entry's source file, checked; raises ValueError listing every photo missing or changed."""
    folders = {"corpus": corpus_dir, "train": train_dir}
    found, problems = [], []
    for e in entries:
        if e.origin not in folders:
            problems.append(f"{e.file}: unknown origin {e.origin!r}")
            continue
        src = folders[e.origin] / e.source_file
        if not src.is_file():
            problems.append(f"{e.file}: {src} is missing")
        elif sha256_file(src) != e.sha256:
            problems.append(f"{e.file}: {src} differs from the listed photo (sha256)")
        else:
            found.append((src, e))
    if problems:
        raise ValueError(f"{len(problems)} of {len(entries)} photos cannot be used: " + "; ".join(problems[:5]))
    return found


def build(entries: list[MixEntry], corpus_dir: Path, train_dir: Path, out_dir: Path) -> int:
    """Copy the mix into ``out_dir`` (new or empty); returns the number of photos."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty")
    sources = resolve(entries, corpus_dir, train_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for src, e in sources:
        shutil.copyfile(src, out_dir / e.file)
    return len(sources)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help="the shared training photos")
    ap.add_argument("--list", type=Path, default=DEFAULT_LIST, help="the mix list")
    args = ap.parse_args()
    try:
        n = build(read_list(args.list), args.corpus_dir, args.train, args.out_dir)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"wrote {n} photos to {args.out_dir}")


if __name__ == "__main__":
    main()
