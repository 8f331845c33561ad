"""One record per image format (deblur_cli.files.formats): every record is complete, and
every table of the package is the records' (no second list to forget)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deblur_cli.files import encode16, formats, image_io, metadata, writers
from deblur_cli.files.formats import FORMATS, METADATA, ImageFormat

IDS = [f.name for f in FORMATS]


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_every_format_record_is_complete(fmt: ImageFormat):
    assert fmt.name.isupper() and fmt.label and re.fullmatch(r"image/[a-z0-9.+-]+", fmt.mime)
    assert fmt.suffixes and all(re.fullmatch(r"\.[a-z0-9]+", s) for s in fmt.suffixes)
    assert fmt.read or fmt.write
    assert fmt.holds <= METADATA
    if fmt.write:
        assert fmt.max_side is not None and fmt.max_side > 0, "a writer has a largest side"
        assert (fmt.max_bytes is None) == (fmt.file_bytes is None), "a byte limit needs its size formula"
        if fmt.deep:
            assert fmt.name in encode16.WRITERS, "a 16-bit format needs its 16-bit writer"
    else:
        assert not (fmt.alpha or fmt.deep or fmt.holds or fmt.quality or fmt.max_side), "only writers keep things"
    if fmt.file_bytes is not None:
        assert fmt.file_bytes(100, 50, 3, 1) >= 100 * 50 * 3


def test_names_and_suffixes_belong_to_one_format_each():
    names = [n for f in FORMATS for n in (f.name, *f.aliases)]
    suffixes = [s for f in FORMATS for s in f.suffixes]
    assert len(names) == len(set(names)) and len(suffixes) == len(set(suffixes))
    assert formats.by_name(formats.FALLBACK).write  # results of read-only formats need a writer


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.write and (f.enable is None or f.enable())], ids=lambda f: f.name)
def test_every_writable_format_round_trips_through_pillow(fmt: ImageFormat, tmp_path: Path):
    """The record's Pillow name encodes, and what is written opens as that format again."""
    rgb = np.random.default_rng(0).random((12, 16, 3), dtype=np.float32)
    path = tmp_path / f"x{fmt.suffix}"
    image_io.save_picture(path, rgb)
    loaded = image_io.load_image(path)
    assert formats.by_name(loaded.format) is fmt and loaded.size == (16, 12)


def test_readable_formats_are_what_pillow_may_try():
    decoders = formats.pillow_decoders()
    assert set(decoders) == {f.name for f in FORMATS if f.read and (f.enable is None or f.enable())}
    Image.init()
    assert all(n in Image.OPEN for n in decoders), decoders  # each is a Pillow decoder's name


def test_the_tables_come_from_the_records():
    assert {s for f in FORMATS if f.read for s in f.suffixes} == image_io.SUPPORTED_SUFFIXES
    assert {s for f in FORMATS if f.write for s in f.suffixes} == image_io.OUTPUT_SUFFIXES
    assert ".gif" in image_io.SUPPORTED_SUFFIXES and ".gif" not in image_io.OUTPUT_SUFFIXES
    assert formats.written_as("GIF").name == "PNG" and formats.written_as("MPO").name == "JPEG"
    assert not hasattr(writers, "MAX_SIDE") and not hasattr(metadata, "HOLDS")  # no second table


def test_the_page_accepts_what_deblur_reads():
    from deblur_cli.serve.page import Page

    page = Page().files["index.html"].decode()
    accept = re.search(r'<input id="pick" type="file" accept="([^"]*)"', page).group(1)
    assert set(accept.split(",")) == {f.mime for f in FORMATS if f.read} | set(image_io.SUPPORTED_SUFFIXES)
