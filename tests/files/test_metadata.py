"""Issue 21, item 5: metadata besides EXIF and ICC is carried where the output can hold it
(DPI, XMP, PNG gamma, comments, PNG text; lossless WebP stays lossless), and a ``note:``
phrase names what it cannot hold (EXIF over a JPEG's 64 KB, gamma in a JPEG, anything in a BMP).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from deblur_cli.files import image_io
from deblur_cli.files.metadata import _webp_is_lossless

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _pixels(seed: int = 0, shape=(24, 32, 3)) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


def _roundtrip(src: Path, out: Path) -> tuple[image_io.LoadedImage, list[str]]:
    loaded = image_io.load_image(src)
    image_io.save_image(loaded.rgb, out, like=loaded)
    return loaded, image_io.dropped_on_save(loaded, out)


def _png_with_extras(path: Path, deep: bool = False, exif: bytes | None = None) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "a comment")
    info.add_text("Author", "someone")
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    pixels = (_pixels()[..., 0].astype(np.uint16) * 257) if deep else _pixels()
    options = {"exif": exif} if exif else {}
    Image.fromarray(pixels).save(path, pnginfo=info, dpi=(300, 300), **options)
    return path


def test_jpeg_dpi_comment_and_xmp_are_carried(tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(_pixels()).save(src, dpi=(300, 300), comment=b"holiday", xmp=XMP)
    _, notes = _roundtrip(src, tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.info["dpi"] == (300, 300)
        assert out.info["comment"] == b"holiday"
        assert out.info["xmp"] == XMP
    assert notes == []


@pytest.mark.parametrize("deep", [False, True], ids=["8-bit", "16-bit"])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_png_gamma_text_dpi_and_xmp_are_carried(tmp_path, deep, suffix):
    src = _png_with_extras(tmp_path / "in.png", deep)
    out = tmp_path / f"out{suffix}"
    loaded, notes = _roundtrip(src, out)
    assert loaded.extras.gamma == pytest.approx(0.45455)
    with Image.open(out) as im:
        im.load()
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.05)
        if suffix == ".png":
            assert im.info["gamma"] == pytest.approx(0.45455)
            assert im.text["Comment"] == "a comment" and im.text["Author"] == "someone"
            assert im.info["xmp"] == XMP and notes == []
        else:  # TIFF holds no gamma or free text: said
            assert im.tag_v2[700] == XMP and im.tag_v2[270] == "a comment"
            assert notes == ["its gamma (gAMA) and text chunks are dropped: TIFF cannot store them; write PNG to keep them"]


def test_png_gamma_written_as_jpeg_is_said(tmp_path):
    src = _png_with_extras(tmp_path / "in.png")
    _, notes = _roundtrip(src, tmp_path / "out.jpg")
    assert notes == ["its gamma (gAMA) and text chunks are dropped: JPEG cannot store them; write PNG to keep them"]


def test_lossless_webp_stays_lossless(tmp_path):
    src = tmp_path / "in.webp"
    pixels = _pixels()
    Image.fromarray(pixels).save(src, lossless=True)
    assert _webp_is_lossless(src)
    loaded, notes = _roundtrip(src, tmp_path / "out.webp")
    assert loaded.extras.lossless and notes == []
    assert _webp_is_lossless(tmp_path / "out.webp")
    with Image.open(tmp_path / "out.webp") as out:
        np.testing.assert_array_equal(np.asarray(out.convert("RGB")), pixels)  # nothing lost
    Image.fromarray(pixels).save(tmp_path / "lossy.webp", quality=80)
    assert not _webp_is_lossless(tmp_path / "lossy.webp")


def test_exif_over_64_kb_in_a_jpeg_is_said_and_kept_in_png(tmp_path):
    exif = Image.Exif()
    exif[270] = "x" * 70_000  # ImageDescription: the block is now larger than a JPEG segment
    src = _png_with_extras(tmp_path / "in.png", exif=exif.tobytes())
    _, notes = _roundtrip(src, tmp_path / "out.jpg")
    assert any(n.startswith("its EXIF (") and "a JPEG holds at most 65,533 bytes" in n for n in notes), notes
    _, notes = _roundtrip(src, tmp_path / "out.png")
    assert notes == []
    with Image.open(tmp_path / "out.png") as out:
        out.load()
        assert out.getexif()[270] == "x" * 70_000


def test_a_bmp_says_what_it_drops(tmp_path):
    src = tmp_path / "in.jpg"
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    Image.fromarray(_pixels()).save(src, dpi=(200, 200), comment=b"c", exif=exif.tobytes())
    _, notes = _roundtrip(src, tmp_path / "out.bmp")
    assert notes == ["its EXIF and comment are dropped: BMP cannot store them; write JPEG or PNG or TIFF to keep them"]
    with Image.open(tmp_path / "out.bmp") as out:
        assert out.info["dpi"] == pytest.approx((200, 200), abs=0.5)


def test_nothing_to_say_for_a_plain_photo(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_pixels()).save(buffer, "PNG")
    (tmp_path / "in.png").write_bytes(buffer.getvalue())
    for suffix in (".jpg", ".png", ".tif", ".webp", ".bmp"):
        assert _roundtrip(tmp_path / "in.png", tmp_path / f"out{suffix}")[1] == []
