"""Image I/O: round trips (size, mode, bit depth, alpha, metadata) and hostile files."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from deblur_cli.errors import InputError, OutputError, UsageError
from deblur_cli.files import image_io
from deblur_cli.files.fsutil import TMP_PREFIX
from deblur_cli.files.image_io import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_SUFFIXES,
    SUPPORTED_SUFFIXES,
    load_image,
    read_size,
    save_image,
)

try:
    from PIL import ImageCms
except ImportError:  # pragma: no cover
    ImageCms = None  # type: ignore[assignment]

# ----------------------------------------------------------------- helpers


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _u8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return _rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _u16(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return _rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png_bytes(samples: np.ndarray, width: int | None = None, height: int | None = None) -> bytes:
    """A PNG written by hand (filter 0), independent of the code under test.

    ``samples`` is H x W x C, uint8 or uint16; width/height override the header
    (to fake a decompression bomb).
    """
    h, w, c = samples.shape
    depth = 16 if samples.dtype == np.uint16 else 8
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    data = samples.astype(">u2" if depth == 16 else np.uint8)
    raw = b"".join(b"\x00" + data[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", width or w, height or h, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _read_png16(path: Path) -> np.ndarray:
    """Decode a 16-bit PNG using filters 0/1 (what our writer emits) with numpy only."""
    blob = Path(path).read_bytes()
    pos, idat, header = 8, b"", None
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        kind, payload = blob[pos + 4 : pos + 8], blob[pos + 8 : pos + 8 + length]
        header = struct.unpack(">IIBBBBB", payload) if kind == b"IHDR" else header
        idat += payload if kind == b"IDAT" else b""
        pos += 12 + length
    w, h, depth, colour_type = header[:4]
    assert depth == 16
    c = {0: 1, 4: 2, 2: 3, 6: 4}[colour_type]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * c * 2)
    assert set(np.unique(rows[:, 0])) <= {0, 1}
    data = rows[:, 1:].reshape(h, w, c * 2).copy()
    sub = rows[:, 0] == 1
    data[sub] = np.cumsum(data[sub], axis=1, dtype=np.uint8)
    return data.reshape(h, w * c * 2).view(">u2").reshape(h, w, c).astype(np.uint16)


def _exif_bytes(orientation: int | None = None, make: str = "TestCam") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    if orientation is not None:
        exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal
    return exif.tobytes()


def _srgb_icc() -> bytes:
    if ImageCms is None:
        pytest.skip("Pillow built without LittleCMS")
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _as_u8(rgb: np.ndarray) -> np.ndarray:
    return np.rint(rgb * 255).astype(np.uint8)


def _as_u16(rgb: np.ndarray) -> np.ndarray:
    return np.rint(rgb * 65535).astype(np.uint16)


def _only_file(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ----------------------------------------------------------- basic contract


def test_is_supported_by_suffix_any_case() -> None:
    for name in ["a.jpg", "a.JPEG", "b.png", "c.TIF", "d.tiff", "e.webp", "f.bmp", "g.gif", "h.jfif", "i.HEIC", "j.avif"]:
        assert image_io.is_supported(Path(name)), name
    for name in ["a.txt", "b", "c.jpg.bak", "d.psd", "e.jxl"]:
        assert not image_io.is_supported(Path(name)), name
    assert ".gif" in SUPPORTED_SUFFIXES and ".gif" not in OUTPUT_SUFFIXES
    assert DEFAULT_MAX_PIXELS == 200_000_000


def test_truncated_images_stay_refused_by_pillow_setting() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_rgb8_png_round_trip(tmp_path: Path) -> None:
    pixels = _u8((7, 11, 3))
    src = tmp_path / "in.png"
    Image.fromarray(pixels).save(src)
    img = load_image(src)
    assert img.rgb.dtype == np.float32 and img.rgb.shape == (7, 11, 3)
    assert img.size == (11, 7)
    assert (img.bit_depth, img.is_grey, img.format, img.alpha, img.n_frames) == (8, False, "PNG", None, 1)
    assert np.array_equal(_as_u8(img.rgb), pixels)
    out = tmp_path / "out.png"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        assert back.mode == "RGB" and np.array_equal(np.asarray(back), pixels)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_grey16_round_trip(tmp_path: Path, suffix: str) -> None:
    pixels = _u16((9, 5))
    src = tmp_path / f"in{suffix}"
    Image.fromarray(pixels).save(src)
    img = load_image(src)
    assert img.is_grey and img.bit_depth == 16
    assert np.array_equal(img.rgb[..., 0], img.rgb[..., 2])
    assert np.array_equal(_as_u16(img.rgb[..., 0]), pixels)
    out = tmp_path / f"out{suffix}"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        assert back.mode.startswith("I") and back.size == (5, 9)
        assert np.array_equal(np.asarray(back).astype(np.uint16), pixels)
    again = load_image(out)
    assert again.is_grey and again.bit_depth == 16


def test_rgb16_png_keeps_all_16_bits(tmp_path: Path) -> None:
    pixels = _u16((6, 9, 3), seed=1)
    src = tmp_path / "in16.png"
    src.write_bytes(_png_bytes(pixels))
    img = load_image(src)
    assert img.bit_depth == 16 and not img.is_grey
    assert np.array_equal(_as_u16(img.rgb), pixels)
    out = tmp_path / "out16.png"
    save_image(img.rgb, out, like=img)
    assert np.array_equal(_read_png16(out), pixels)  # independent decoder
    with Image.open(out) as back:  # Pillow sees the high bytes
        assert back.size == (9, 6) and np.array_equal(np.asarray(back), (pixels >> 8).astype(np.uint8))


def test_rgb16_tiff_round_trip(tmp_path: Path) -> None:
    pixels = _u16((5, 8, 3), seed=2)
    src = tmp_path / "in16.png"
    src.write_bytes(_png_bytes(pixels))
    out = tmp_path / "out16.tif"
    save_image(load_image(src).rgb, out, like=load_image(src))
    with Image.open(out) as back:
        assert back.mode == "RGB" and np.array_equal(np.asarray(back), (pixels >> 8).astype(np.uint8))
    again = load_image(out)
    assert again.bit_depth == 16 and np.array_equal(_as_u16(again.rgb), pixels)


def test_rgb16_tiff_against_tifffile(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    pixels = _u16((6, 7, 3), seed=3)
    for compression in (None, "zlib"):  # raw decoder and libtiff decoder
        src = tmp_path / f"tf-{compression}.tif"
        tifffile.imwrite(src, pixels, photometric="rgb", compression=compression)
        img = load_image(src)
        assert img.bit_depth == 16 and np.array_equal(_as_u16(img.rgb), pixels)
        turned = tmp_path / f"tf-{compression}-o6.tif"
        tifffile.imwrite(
            turned, pixels, photometric="rgb", compression=compression, extratags=[(274, "H", 1, 6, True)]
        )
        assert np.array_equal(_as_u16(load_image(turned).rgb), np.rot90(pixels, -1))
    icc = _srgb_icc()
    out = tmp_path / "ours.tif"
    save_image(img.rgb, out, like=dataclasses.replace(img, icc_profile=icc))
    assert np.array_equal(tifffile.imread(out), pixels)
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].tags["InterColorProfile"].value == icc


def test_rgba16_png_alpha_bit_exact(tmp_path: Path) -> None:
    pixels = _u16((4, 6, 4), seed=4)
    src = tmp_path / "rgba16.png"
    src.write_bytes(_png_bytes(pixels))
    img = load_image(src)
    assert img.bit_depth == 16 and img.alpha.dtype == np.uint16
    assert np.array_equal(img.alpha, pixels[..., 3])
    out = tmp_path / "rgba16-out.png"
    save_image(1.0 - img.rgb, out, like=img)
    back = _read_png16(out)
    assert np.array_equal(back[..., 3], pixels[..., 3])
    assert np.array_equal(back[..., :3], 65535 - pixels[..., :3])


def test_grey_alpha16_png(tmp_path: Path) -> None:
    pixels = _u16((5, 3, 2), seed=5)
    src = tmp_path / "la16.png"
    src.write_bytes(_png_bytes(pixels))
    img = load_image(src)
    assert img.is_grey and img.bit_depth == 16
    assert np.array_equal(_as_u16(img.rgb[..., 1]), pixels[..., 0])
    assert np.array_equal(img.alpha, pixels[..., 1])
    for suffix in (".png", ".tif"):
        out = tmp_path / f"la16-out{suffix}"
        save_image(img.rgb, out, like=img)
        again = load_image(out)
        assert again.bit_depth == 16 and np.array_equal(again.alpha, pixels[..., 1])
        assert np.array_equal(again.rgb, img.rgb)
        assert again.is_grey == (suffix == ".png")  # Pillow cannot read grey+alpha 16-bit TIFF


def test_rgba8_alpha_passes_through_untouched(tmp_path: Path) -> None:
    pixels = _u8((8, 8, 4), seed=6)
    src = tmp_path / "rgba.png"
    Image.fromarray(pixels).save(src)
    img = load_image(src)
    assert img.alpha.dtype == np.uint8 and np.array_equal(img.alpha, pixels[..., 3])
    for suffix in (".png", ".tif"):
        out = tmp_path / f"rgba-out{suffix}"
        save_image(np.full_like(img.rgb, 0.5), out, like=img)
        with Image.open(out) as back:
            assert back.mode == "RGBA" and np.array_equal(np.asarray(back)[..., 3], pixels[..., 3])
    for suffix in (".jpg", ".bmp"):  # no alpha in these formats: dropped
        out = tmp_path / f"rgba-out{suffix}"
        save_image(img.rgb, out, like=img)
        with Image.open(out) as back:
            assert back.mode == "RGB"
    out = tmp_path / "rgba-out.webp"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        assert back.mode == "RGBA"


def test_palette_png_with_and_without_transparency(tmp_path: Path) -> None:
    base = Image.fromarray(_u8((6, 6, 3), seed=7)).quantize(8)
    plain, clear = tmp_path / "p.png", tmp_path / "pt.png"
    base.save(plain)
    base.save(clear, transparency=0)
    img = load_image(plain)
    assert img.alpha is None and not img.is_grey and img.bit_depth == 8
    assert np.array_equal(_as_u8(img.rgb), np.asarray(base.convert("RGB")))
    timg = load_image(clear)
    with Image.open(clear) as im:
        assert np.array_equal(timg.alpha, np.asarray(im.convert("RGBA"))[..., 3])
    assert (timg.alpha == 0).any() and (timg.alpha == 255).any()


def test_bilevel_and_float_modes(tmp_path: Path) -> None:
    bits = tmp_path / "bits.png"
    Image.fromarray(_u8((5, 7)) > 127).save(bits)
    img = load_image(bits)
    assert img.is_grey and img.bit_depth == 8 and set(np.unique(img.rgb)) <= {0.0, 1.0}
    save_image(img.rgb, tmp_path / "bits-out.png", like=img)
    with Image.open(tmp_path / "bits-out.png") as back:
        assert back.mode == "L"
    values = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    flt = tmp_path / "float.tif"
    Image.fromarray(values).save(flt)
    fimg = load_image(flt)
    assert fimg.is_grey and fimg.bit_depth == 16
    assert np.allclose(fimg.rgb[..., 0], values)
    # samples outside 0..1 are refused, not clipped (issue 12 item 3: clipping made them white)
    Image.fromarray(values * 2 - 0.5).save(flt)
    with pytest.raises(InputError, match="outside the 0..1"):
        load_image(flt)


def test_a_float_tiff_within_rounding_of_0_1_is_read_and_clipped(tmp_path: Path) -> None:
    """Issue 27 item 9 (file sibling of the API's case): 1.0000001 is float rounding, not a
    wrong scale; 1.00001 is refused and named exactly (it read "samples from 1 to 1")."""
    values = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    values[0, 0], values[-1, -1] = -1e-7, 1.0000001
    flt = tmp_path / "rounded.tif"
    Image.fromarray(values).save(flt)
    img = load_image(flt)
    assert img.rgb.min() == 0.0 and img.rgb.max() == 1.0
    values[-1, -1] = 1.00001
    Image.fromarray(values).save(flt)
    with pytest.raises(InputError, match=r"samples from -1e-07 to 1\.00001, outside the 0\.\.1 its format means \(1 of 12 samples\)"):
        load_image(flt)


def test_cmyk_jpeg_becomes_rgb_and_drops_cmyk_profile(tmp_path: Path) -> None:
    src = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 8), (255, 0, 0, 0)).save(src, quality=95)  # pure cyan
    img = load_image(src)
    assert img.rgb.shape == (8, 16, 3) and not img.is_grey and img.icc_profile is None
    assert np.allclose(img.rgb.mean(axis=(0, 1)), [0.0, 1.0, 1.0], atol=0.05)
    out = tmp_path / "cmyk-out.jpg"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        assert back.mode == "RGB" and "icc_profile" not in back.info
    # A profile that does not fit CMYK data: plain conversion, profile not carried.
    tagged = tmp_path / "cmyk-icc.jpg"
    Image.new("CMYK", (4, 4), (0, 255, 0, 0)).save(tagged, icc_profile=_srgb_icc())
    timg = load_image(tagged)
    assert timg.icc_profile is None
    assert np.allclose(timg.rgb.mean(axis=(0, 1)), [1.0, 0.0, 1.0], atol=0.05)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_icc_profile_kept(tmp_path: Path, suffix: str) -> None:
    icc = _srgb_icc()
    src = tmp_path / "icc.png"
    Image.fromarray(_u8((6, 6, 3))).save(src, icc_profile=icc)
    img = load_image(src)
    assert img.icc_profile == icc
    out = tmp_path / f"icc-out{suffix}"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        assert back.info.get("icc_profile") == icc


def test_icc_profile_kept_in_16bit_png(tmp_path: Path) -> None:
    icc = _srgb_icc()
    src = tmp_path / "in16.png"
    src.write_bytes(_png_bytes(_u16((3, 4, 3))))
    img = dataclasses.replace(load_image(src), icc_profile=icc, exif=_exif_bytes(1))
    out = tmp_path / "out16.png"
    save_image(img.rgb, out, like=img)
    again = load_image(out)
    assert again.icc_profile == icc and again.bit_depth == 16
    with Image.open(out) as back:
        assert back.getexif()[0x010F] == "TestCam"


def test_exif_orientation_applied_and_reset(tmp_path: Path) -> None:
    pixels = _u8((4, 6, 3), seed=8)  # 6 wide, 4 high as stored
    src = tmp_path / "rot6.png"
    Image.fromarray(pixels).save(src, exif=_exif_bytes(orientation=6))
    img = load_image(src)
    assert img.size == (4, 6)
    assert np.array_equal(_as_u8(img.rgb), np.rot90(pixels, -1))  # 90 degrees clockwise
    for suffix in (".jpg", ".png", ".tif", ".webp"):
        out = tmp_path / f"rot6-out{suffix}"
        save_image(img.rgb, out, like=img)
        with Image.open(out) as back:
            exif = back.getexif()
            assert back.size == (4, 6)
            assert exif.get(0x0112) == 1 and exif.get(0x010F) == "TestCam"
            assert exif.get_ifd(0x8769).get(0x9003) == "2024:01:02 03:04:05"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    pixels = _u8((3, 5, 4), seed=orientation)
    src = tmp_path / "o.png"
    Image.fromarray(pixels).save(src, exif=_exif_bytes(orientation=orientation))
    img = load_image(src)
    with Image.open(src) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(_as_u8(img.rgb), expected[..., :3])
    assert np.array_equal(img.alpha, expected[..., 3])
    if orientation in (5, 6, 7, 8):
        assert img.size == (3, 5) and read_size(src) == (3, 5)
    # TIFF: Pillow >= 11 orients while decoding; the result must be the same.
    tif = tmp_path / "o.tif"
    Image.fromarray(pixels).save(tif, exif=_exif_bytes(orientation=orientation))
    timg = load_image(tif)
    assert np.array_equal(timg.rgb, img.rgb) and np.array_equal(timg.alpha, img.alpha)
    assert read_size(tif) == img.size


def test_jpeg_orientation_and_read_size(tmp_path: Path) -> None:
    src = tmp_path / "rot8.jpg"
    Image.fromarray(_u8((10, 30, 3))).save(src, exif=_exif_bytes(orientation=8))
    assert load_image(src).size == (10, 30)
    assert read_size(src) == (10, 30)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (13, 2)).save(plain)
    assert read_size(plain) == (13, 2)


def test_tiff_exif_does_not_carry_layout_tags(tmp_path: Path) -> None:
    src = tmp_path / "meta.tif"
    Image.fromarray(_u8((5, 5, 3))).save(src, exif=_exif_bytes(orientation=3))
    img = load_image(src)
    out = tmp_path / "meta-out.jpg"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        exif = back.getexif()
        assert exif.get(0x010F) == "TestCam" and exif.get(0x0112, 1) == 1
        assert exif.get_ifd(0x8769).get(0x9003) == "2024:01:02 03:04:05"
        assert not {256, 257, 273, 279} & set(exif)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_is_ignored(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_u8((6, 8, 3))).save(buf, "JPEG")
    jpeg = buf.getvalue()
    garbage = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\xff\xff"
    app1 = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    src = tmp_path / "badexif.jpg"
    src.write_bytes(jpeg[:2] + app1 + jpeg[2:])
    img = load_image(src)
    assert img.size == (8, 6)
    save_image(img.rgb, tmp_path / "badexif-out.jpg", like=img)
    assert (tmp_path / "badexif-out.jpg").stat().st_size > 0
    odd = tmp_path / "odd-orientation.png"
    Image.fromarray(_u8((2, 5, 3))).save(odd, exif=_exif_bytes(orientation=9))
    assert load_image(odd).size == (5, 2)


def test_grey_jpeg_gives_grey_jpeg(tmp_path: Path) -> None:
    src = tmp_path / "grey.jpg"
    Image.fromarray(_u8((12, 10))).save(src)
    img = load_image(src)
    assert img.is_grey and img.bit_depth == 8
    out = tmp_path / "grey-out.jpg"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        assert back.mode == "L" and back.size == (10, 12)


def test_16bit_input_written_as_8bit_jpeg(tmp_path: Path) -> None:
    src = tmp_path / "in16.png"
    src.write_bytes(_png_bytes(_u16((4, 4, 3))))
    img = load_image(src)
    out = tmp_path / "out.jpg"
    save_image(img.rgb, out, like=img)
    with Image.open(out) as back:
        assert back.mode == "RGB"


def test_quality_and_subsampling(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    noisy = ((np.sin(xx / 3.0) + np.cos(yy / 5.0)) * 60 + 128 + _rng(9).normal(0, 25, (64, 64))).clip(0, 255)
    src = tmp_path / "q.png"
    Image.fromarray(np.stack([noisy] * 3, axis=2).astype(np.uint8)).save(src)
    img = load_image(src)
    sizes = {}
    for q in (20, 95):
        out = tmp_path / f"q{q}.jpg"
        save_image(img.rgb, out, like=img, quality=q)
        sizes[q] = out.stat().st_size
        with Image.open(out) as back:
            assert JpegImagePlugin.get_sampling(back) == (0 if q >= 90 else 2)
    assert sizes[20] < sizes[95]
    low, high = tmp_path / "q10.webp", tmp_path / "q90.webp"
    save_image(img.rgb, low, like=img, quality=10)
    save_image(img.rgb, high, like=img, quality=90)
    assert low.stat().st_size < high.stat().st_size
    for bad in (0, 101, -5, 50.5, True):
        with pytest.raises(UsageError, match="quality"):
            save_image(img.rgb, tmp_path / "bad.jpg", like=img, quality=bad)
    assert not (tmp_path / "bad.jpg").exists()


def test_without_template_writes_8bit_rgb(tmp_path: Path) -> None:
    rgb = _rng(10).random((5, 6, 3), dtype=np.float32) * 1.4 - 0.2  # out of range: clipped
    out = tmp_path / "plain.png"
    save_image(rgb, out)
    with Image.open(out) as back:
        assert back.mode == "RGB"
        assert np.array_equal(np.asarray(back), np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    with pytest.raises(ValueError):
        save_image(rgb[..., :2], tmp_path / "two.png")


def test_unsupported_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "out.gif")
    assert ".png" in str(err.value) and ".jpg" in str(err.value)
    assert _only_file(tmp_path) == []


@pytest.mark.parametrize("size", [(1, 1), (20000, 3), (3, 20000)])
def test_extreme_sizes(tmp_path: Path, size: tuple[int, int]) -> None:
    w, h = size
    pixels = _u8((h, w, 3), seed=w)
    src = tmp_path / "tiny.png"
    Image.fromarray(pixels).save(src)
    img = load_image(src)
    assert img.size == (w, h) and read_size(src) == (w, h)
    for suffix in (".png", ".jpg"):
        out = tmp_path / f"out{suffix}"
        save_image(img.rgb, out, like=img)
        with Image.open(out) as back:
            assert back.size == (w, h)
    with Image.open(tmp_path / "out.png") as back:
        assert np.array_equal(np.asarray(back), pixels)


def test_animated_gif_and_multipage_tiff_use_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = load_image(gif)
    assert img.n_frames == 3 and img.format == "GIF"
    assert np.allclose(img.rgb[0, 0], [1.0, 0.0, 0.0], atol=0.02)
    tif = tmp_path / "pages.tif"
    frames[1].save(tif, save_all=True, append_images=[frames[2]])
    timg = load_image(tif)
    assert timg.n_frames == 2 and np.allclose(timg.rgb[0, 0], [0.0, 1.0, 0.0])


def test_non_utf8_file_names(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("byte file names are a POSIX feature")
    src = tmp_path / os.fsdecode(b"\xff\xfe.png")
    try:
        Image.fromarray(_u8((4, 5, 3))).save(src)
    except OSError:
        pytest.skip("file system refuses non-UTF-8 names")
    img = load_image(src)
    out = tmp_path / os.fsdecode(b"out-\xfe\xff.jpg")
    save_image(img.rgb, out, like=img)
    assert out.exists()
    with pytest.raises(InputError) as err:
        load_image(tmp_path / os.fsdecode(b"missing-\xff.png"))
    message = str(err.value)
    message.encode("utf-8")  # printable without surrogate errors
    assert "\\xff" in message


# ------------------------------------------------------------- bad inputs


def _assert_refused(path: Path, *match: str) -> InputError:
    before = _sha(path) if path.is_file() else None
    with pytest.raises(InputError) as err:
        load_image(path)
    message = str(err.value)
    assert "\n" not in message and message
    for text in match:
        assert text in message, message
    if before is not None:
        assert _sha(path) == before
    return err.value


def test_missing_folder_empty_and_text_files(tmp_path: Path) -> None:
    _assert_refused(tmp_path / "nope.jpg", "no such file")
    _assert_refused(tmp_path, "folder")
    empty = tmp_path / "empty.png"
    empty.touch()
    _assert_refused(empty, "empty")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n" * 20)
    _assert_refused(text, "not an image")
    for bad in (tmp_path / "nope.jpg", empty, text):
        with pytest.raises(InputError):
            read_size(bad)


def test_fifo_and_control_characters_in_names(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    _assert_refused(fifo, "not a regular file")
    _assert_refused(tmp_path / "two\nlines.png", "no such file", "two\\nlines")
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    _assert_refused(loop, "cannot read")


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files regardless of permissions")
    src = tmp_path / "locked.png"
    Image.new("RGB", (2, 2)).save(src)
    src.chmod(0)
    try:
        _assert_refused(src, "cannot read")
    finally:
        src.chmod(0o600)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files(tmp_path: Path, fmt: str) -> None:
    buf = io.BytesIO()
    Image.fromarray(_u8((64, 64, 3), seed=11)).save(buf, fmt)
    data = buf.getvalue()
    src = tmp_path / f"cut.{fmt.lower()}"
    src.write_bytes(data[: len(data) * 2 // 3])
    _assert_refused(src, "corrupt or truncated")


def test_unsupported_mode(tmp_path: Path) -> None:
    src = tmp_path / "lab.tif"
    Image.new("LAB", (4, 4)).save(src)
    _assert_refused(src, "unsupported colour mode", "LAB")


def test_decompression_bomb_header(tmp_path: Path) -> None:
    src = tmp_path / "bomb.png"
    src.write_bytes(_png_bytes(np.zeros((1, 1, 1), np.uint8), width=100_000, height=100_000))
    _assert_refused(src, "10,000,000,000", "200,000,000", "--max-pixels", "DEBLUR_MAX_PIXELS")
    assert read_size(src) == (100_000, 100_000)  # the header alone is harmless


def test_pixel_limit_option_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "small.png"
    Image.new("RGB", (20, 20)).save(src)
    with pytest.raises(InputError, match="400 pixels"):
        load_image(src, max_pixels=399)
    assert load_image(src, max_pixels=400).size == (20, 20)
    monkeypatch.setenv("DEBLUR_MAX_PIXELS", "100")
    with pytest.raises(InputError, match="limit of 100"):
        load_image(src)
    assert load_image(src, max_pixels=0).size == (20, 20)  # explicit beats environment
    monkeypatch.setenv("DEBLUR_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="DEBLUR_MAX_PIXELS"):
        load_image(src)
    with pytest.raises(UsageError):
        load_image(src, max_pixels=-1)


def test_our_limit_replaces_pillows_and_restores_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "over-pillow.png"
    Image.new("RGB", (30, 30)).save(src)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 900 px
    assert load_image(src, max_pixels=1000).size == (30, 30)
    assert load_image(src, max_pixels=0).size == (30, 30)
    assert read_size(src) == (30, 30)
    assert Image.MAX_IMAGE_PIXELS == 100


# ------------------------------------------------------------ bad outputs


def _loaded(tmp_path: Path) -> image_io.LoadedImage:
    src = tmp_path / "input.png"
    Image.fromarray(_u8((6, 6, 3), seed=12)).save(src)
    return load_image(src)


def test_output_equal_to_input_is_refused(tmp_path: Path) -> None:
    img = _loaded(tmp_path)
    before = _sha(img.path)
    link = tmp_path / "alias.png"
    link.symlink_to(img.path)
    for target in (img.path, link, tmp_path / "." / "input.png"):
        with pytest.raises(OutputError, match="overwrite the input"):
            save_image(np.zeros_like(img.rgb), target, like=img)
    assert _sha(img.path) == before
    assert _only_file(tmp_path) == ["alias.png", "input.png"]


def test_missing_output_folder(tmp_path: Path) -> None:
    img = _loaded(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        save_image(img.rgb, tmp_path / "no" / "such" / "out.png", like=img)


def test_unwritable_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = _loaded(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:  # root ignores the mode bits: simulate below instead
        locked.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="cannot write"):
                save_image(img.rgb, locked / "out.png", like=img)
        finally:
            locked.chmod(0o700)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="Permission denied"):
        save_image(img.rgb, locked / "out.png", like=img)
    assert _only_file(locked) == []


def _disk_full_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    def save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"\x89PNG half written")  # type: ignore[arg-type]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", save)


def _disk_full_16bit(monkeypatch: pytest.MonkeyPatch) -> None:
    def write(path: Path, *args: object) -> None:
        Path(path).write_bytes(b"II*\x00 half written")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from deblur_cli.files import encode16

    monkeypatch.setitem(encode16.WRITERS, "TIFF", write)


@pytest.mark.parametrize("deep", [False, True])
def test_disk_full_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deep: bool) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(_png_bytes(_u16((4, 4, 3)) if deep else _u8((4, 4, 3))))
    img = load_image(src)
    (_disk_full_16bit if deep else _disk_full_pillow)(monkeypatch)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / "kept.tif"
    existing.write_bytes(b"previous output")
    for target in (out_dir / "new.tif", existing):
        with pytest.raises(OutputError, match="No space left"):
            save_image(img.rgb, target, like=img)
    assert _only_file(out_dir) == ["kept.tif"]
    assert existing.read_bytes() == b"previous output"
    assert not any(name.startswith(TMP_PREFIX) for name in os.listdir(out_dir))


# -------------------------------------------------------------- properties

_MODES = ["L", "LA", "RGB", "RGBA", "I;16", "RGB;16", "RGBA;16"]
_EXPECT = {  # mode -> (is_grey, bit_depth, has_alpha, mode Pillow reports on our output)
    "L": (True, 8, False, "L"),
    "LA": (True, 8, True, "LA"),
    "RGB": (False, 8, False, "RGB"),
    "RGBA": (False, 8, True, "RGBA"),
    "I;16": (True, 16, False, "I;16"),
    "RGB;16": (False, 16, False, "RGB"),
    "RGBA;16": (False, 16, True, "RGBA"),
}


def _write_source(folder: Path, mode: str, fmt: str, w: int, h: int, seed: int) -> Path:
    """A Pillow-made image in ``mode`` (16-bit colour: hand-made PNG, as Pillow cannot)."""
    if mode.endswith(";16"):
        path = folder / "src.png"
        path.write_bytes(_png_bytes(_u16((h, w, len(mode) - 3), seed)))
        return path
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1}[mode]
    data = _u16((h, w), seed) if mode == "I;16" else _u8((h, w, channels), seed)
    image = Image.fromarray(data[..., 0] if data.ndim == 3 and channels == 1 else data)
    path = folder / f"src.{fmt.lower()}"
    image.save(path, format=fmt)
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    w=st.integers(1, 64),
    h=st.integers(1, 64),
    mode=st.sampled_from(_MODES),
    fmt=st.sampled_from(["PNG", "TIFF"]),
    seed=st.integers(0, 2**16),
)
def test_round_trip_keeps_size_mode_depth(w: int, h: int, mode: str, fmt: str, seed: int) -> None:
    grey, depth, has_alpha, out_mode = _EXPECT[mode]
    with tempfile.TemporaryDirectory() as folder:
        src = _write_source(Path(folder), mode, fmt, w, h, seed)
        img = load_image(src)
        assert (img.size, img.is_grey, img.bit_depth) == ((w, h), grey, depth)
        assert (img.alpha is not None) == has_alpha
        out = Path(folder) / f"out.{fmt.lower()}"
        save_image(img.rgb, out, like=img)
        with Image.open(out) as back:
            assert back.size == (w, h) and back.mode == out_mode
        again = load_image(out)
        assert (again.is_grey, again.bit_depth) == (grey, depth)
        assert np.array_equal(again.rgb, img.rgb)
        if has_alpha:
            assert again.alpha.dtype == img.alpha.dtype and np.array_equal(again.alpha, img.alpha)
