"""bench/photo_corpus.py: the photo filter, near-duplicate removal, licences and manifest (no network)."""

from __future__ import annotations

import csv
import hashlib
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import photo_corpus as pc  # noqa: E402


def _photo(w: int = 640, h: int = 480, seed: int = 0) -> Image.Image:
    """Photo-like: smooth shading, textured regions of several scales, sensor noise, some colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.35 + 0.3 * np.sin(3 * xx + 2 * yy + seed)
    tex = np.zeros((h, w))
    for cell in (64, 16, 4):
        small = rng.random((h // cell + 2, w // cell + 2))
        big = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize(
            ((w // cell + 2) * cell, (h // cell + 2) * cell), Image.BICUBIC), dtype=np.float64)[:h, :w] / 255
        tex += (big - 0.5) * (0.25 if cell > 4 else 0.15)
    lum = base + tex
    rgb = np.stack([lum * 1.05, lum, lum * 0.85 + 0.08 * np.cos(5 * xx)], axis=-1)
    rgb = rgb * 255 + rng.normal(0, 2.0, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _drawing(w: int = 640, h: int = 480) -> Image.Image:
    img = Image.new("RGB", (w, h), (240, 240, 235))
    d = ImageDraw.Draw(img)
    d.rectangle((40, 40, 300, 200), fill=(30, 90, 200), outline=(0, 0, 0), width=3)
    d.ellipse((320, 150, 600, 420), fill=(220, 60, 40))
    d.line((0, 470, 640, 300), fill=(20, 20, 20), width=5)
    return img


def test_noisy_photo_is_kept_and_flat_drawing_is_dropped():
    keep, why = pc.photo_verdict(pc.photo_stats(_photo()))
    assert keep, why
    stats = pc.photo_stats(_drawing())
    assert stats["flat"] > pc.MAX_FLAT
    keep, why = pc.photo_verdict(stats)
    assert not keep and why.startswith("flat")


def test_each_statistic_can_reject():
    base = {"flat": 0.01, "colours": 20000, "grey": False, "grey_levels": 250, "noise": 1.0, "detail": 10.0}
    assert pc.photo_verdict(base) == (True, "photo")
    assert not pc.photo_verdict({**base, "colours": 500, "grey_levels": 40})[0]  # clip art
    assert pc.photo_verdict({**base, "colours": 500, "grey_levels": 250})[0]  # a grey photo keeps its levels
    assert not pc.photo_verdict({**base, "detail": pc.MIN_DETAIL / 2})[0]  # soft / upscaled
    blurred = _photo().resize((80, 60), Image.BILINEAR).resize((640, 480), Image.BICUBIC)
    assert pc.photo_stats(blurred)["detail"] < pc.photo_stats(_photo())["detail"] / 2


def test_size_and_transparency():
    assert not pc.size_verdict(_photo(500, 300))[0]  # short side below MIN_SIDE
    assert pc.size_verdict(_photo(500, 450))[0]
    cut_out = _photo().convert("RGBA")
    a = np.asarray(cut_out).copy()
    a[:50, :50, 3] = 0
    assert pc.size_verdict(Image.fromarray(a))[1] == "transparent"
    assert pc.size_verdict(_photo().convert("RGBA"))[0]  # opaque alpha is fine


def test_rescaled_duplicate_is_dropped_keeping_the_largest():
    big = _photo(1200, 900, seed=1)
    small = big.resize((600, 450), Image.LANCZOS)
    darker = Image.fromarray((np.asarray(big, dtype=np.float64) * 0.7).astype(np.uint8))
    other = _photo(1200, 900, seed=5)
    assert pc.hamming(pc.phash(big), pc.phash(small)) <= pc.HASH_THRESHOLD
    assert pc.hamming(pc.phash(big), pc.phash(darker)) <= pc.HASH_THRESHOLD  # light/dark variant
    assert pc.hamming(pc.phash(big), pc.phash(other)) > pc.HASH_THRESHOLD
    items = [{"path": n, "pixels": im.size[0] * im.size[1], "hash": pc.phash(im)}
             for n, im in (("small", small), ("big", big), ("other", other))]
    kept, dropped = pc.dedupe(items)
    assert [k["path"] for k in kept] == ["big", "other"]
    assert [(d["path"], k["path"]) for d, k in dropped] == [("small", "big")]


def test_downsize_caps_the_long_side():
    img = pc.downsize(_photo(2000, 1000))
    assert img.size == (pc.MAX_SIDE, 800) and img.mode == "RGB"
    assert pc.downsize(_photo(640, 480)).size == (640, 480)


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: x

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: wallpapers/16.04/*.jpg
Copyright: 2018 A Photographer
License: CC-BY-4.0

Files: 16.04/Bridge_by_X.jpg
Copyright: 2018 X
License: CC-BY-SA-4.0
"""


def test_licence_from_the_matching_files_stanza():
    assert pc.licence_for(DEP5, "usr/share/wallpapers/16.04/a.jpg") == ("CC-BY-4.0", "2018 A Photographer")
    # upstream folder differs from the install folder: the file name decides
    assert pc.licence_for(DEP5, "usr/share/backgrounds/Bridge_by_X.jpg") == ("CC-BY-SA-4.0", "2018 X")
    assert pc.licence_for(DEP5, "usr/share/other/b.png") == ("GPL-2+", "2020 Someone")
    lic, _ = pc.licence_for("This package is licensed under the GPL-2.\n", "usr/share/a.jpg")
    assert lic.startswith("non-DEP-5") and "GPL-2" in lic


def _rcc(files: dict[str, bytes]) -> bytes:
    """A minimal Qt resource file (format version 1): root/<dir>/<files>, the second one zlib'd."""
    names, data = b"", b""
    name_off, data_off = {}, {}
    for n in ["d", *files]:
        name_off[n] = len(names)
        names += struct.pack(">HI", len(n), 0) + n.encode("utf-16-be")
    flags = {}
    for i, (n, payload) in enumerate(files.items()):
        data_off[n] = len(data)
        if i == 1:
            payload, flags[n] = struct.pack(">I", len(payload)) + zlib.compress(payload), 1
        else:
            flags[n] = 0
        data += struct.pack(">I", len(payload)) + payload
    tree = struct.pack(">IHII", 0, 2, 1, 1)  # root: 1 child at index 1
    tree += struct.pack(">IHII", name_off["d"], 2, len(files), 2)
    for n in files:
        tree += struct.pack(">IHHHI", name_off[n], flags[n], 0, 0, data_off[n])
    header = 20
    return b"qres" + struct.pack(">IIII", 1, header, header + len(tree), header + len(tree) + len(data)) + tree + data + names


def test_rcc_entries_reads_plain_and_compressed_files():
    files = {"a.webp": b"plain bytes", "b.jpg": b"compressed " * 50}
    assert pc.rcc_entries(_rcc(files)) == {"d/a.webp": files["a.webp"], "d/b.jpg": files["b.jpg"]}
    with pytest.raises(ValueError):
        pc.rcc_entries(b"not a resource file")


def test_build_from_an_unpacked_package_writes_photos_and_manifest(tmp_path):
    """select + write on a cache that already holds the unpacked package (no download)."""
    pkg = pc.Package("fake-photos", "1.0-1", ("usr/share/fake/*",), ("*/skip_*",), short="fake")
    root = tmp_path / "cache" / "x" / pkg.name
    (root / "usr/share/fake").mkdir(parents=True)
    (root / "usr/share/doc/fake-photos").mkdir(parents=True)
    (root / "usr/share/doc/fake-photos/copyright").write_text(DEP5.replace("wallpapers/16.04/*.jpg", "fake/p*"))
    (root / ".deblur-version").write_text("1.0-1\n")
    big = _photo(2400, 1800, seed=2)
    big.save(root / "usr/share/fake/photo_big.png")
    big.resize((1200, 900), Image.LANCZOS).save(root / "usr/share/fake/photo_small.jpg", quality=95)
    _photo(800, 600, seed=3).save(root / "usr/share/fake/skip_me.jpg")
    _drawing().save(root / "usr/share/fake/drawing.png")
    _photo(300, 200, seed=4).save(root / "usr/share/fake/tiny.jpg")
    val = tmp_path / "val"
    val.mkdir()
    _photo(900, 700, seed=6).save(val / "held_out.jpg")
    _photo(900, 700, seed=6).save(root / "usr/share/fake/photo_val.jpg")  # a validation photo: excluded
    log: list[str] = []
    ref = pc.reference_hashes([val])
    items = pc.select([pkg], tmp_path / "cache", ref, log=log.append)
    out = tmp_path / "out"
    rows = pc.write(items, out, tmp_path / "m.tsv")
    assert [r["file"] for r in rows] == ["fake_photo_big.jpg"]
    joined = "\n".join(log)
    assert "photo_small.jpg: duplicate of fake-photos:usr/share/fake/photo_big.png" in joined
    assert "drawing.png: flat" in joined and "tiny.jpg: small" in joined
    assert "photo_val.jpg: like validation photo held_out.jpg" in joined
    assert "skip_me" not in joined  # excluded by glob before anything is measured
    with open(tmp_path / "m.tsv", newline="") as f:
        recs = list(csv.DictReader(f, delimiter="\t"))
    assert tuple(recs[0]) == pc.MANIFEST_COLUMNS
    r = recs[0]
    written = out / r["file"]
    assert r["sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()
    assert (r["package"], r["version"], r["licence"]) == ("fake-photos", "1.0-1", "CC-BY-4.0")
    assert r["original_path"] == "/usr/share/fake/photo_big.png" and r["original_size"] == "2400x1800"
    assert r["stored_size"] == "1600x1200" and Image.open(written).size == (1600, 1200)


def test_package_lists_keep_validation_sources_out_of_training():
    train = {p.name for p in pc.PACKAGES}
    cross = {p.name for p in pc.VAL_CROSS_PACKAGES}
    assert not train & cross and len(cross) >= 3 and len(train) >= 10
    reserved = ("scikit-image", "skimage", "matplotlib", "imageio", "opencv")
    assert not [n for n in train | cross if any(r in n for r in reserved)]
    for name in ("grand_canyon_2", "pool.jpg", "snow", "Bridge_by_Sander_Klootwijk", "Storm", "citrus-fruits", "Kite"):
        assert any(name in e for e in pc.EXCLUDE_ALWAYS), name


def test_committed_manifest_matches_the_package_lists():
    path = ROOT / "bench" / "data" / "photo_corpus.tsv"
    with open(path, newline="") as f:
        recs = list(csv.DictReader(f, delimiter="\t"))
    packages = {r["package"] for r in recs}
    assert len(recs) >= 150 and len(packages) >= 10
    assert packages <= {p.name for p in pc.PACKAGES}
    versions = {p.name: p.version for p in pc.PACKAGES}
    assert all(r["version"] == versions[r["package"]] for r in recs)
    assert len({r["file"] for r in recs}) == len(recs) and len({r["sha256"] for r in recs}) == len(recs)
    for r in recs:
        w, h = map(int, r["stored_size"].split("x"))
        assert max(w, h) <= pc.MAX_SIDE


def test_rebuilding_removes_only_its_own_photos(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"x")
    manifest = out / "photo_corpus.tsv"
    manifest.write_text("\t".join(pc.MANIFEST_COLUMNS) + "\na.jpg\t" + "\t".join(["-"] * 12) + "\n")
    pc.clear_previous(out, manifest)
    assert not (out / "a.jpg").exists()
    (out / "mine.jpg").write_bytes(b"y")  # a photo the tool did not write
    with pytest.raises(SystemExit):
        pc.clear_previous(out, manifest)
    assert (out / "mine.jpg").exists()
