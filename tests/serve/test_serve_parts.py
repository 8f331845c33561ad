"""The server's parts without a server: names, format sniffing, upload limits, install check."""

from __future__ import annotations

import asyncio
import fnmatch
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from deblur_cli.errors import UsageError
from deblur_cli.serve import check_installed
from deblur_cli.serve.guard import is_loopback
from deblur_cli.serve.images import display_name, download_name, other_format
from deblur_cli.serve.page import STATIC_FILES
from deblur_cli.serve.server import listen
from deblur_cli.serve.uploads import ServeError, check_declared_length, read_upload
from tests.serve import images

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "given, shown",
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\IMG 1.JPG", "IMG 1.JPG"),
        ("", "photo"),
        ("..", "photo"),
        ('a"b\r\nc.png', "abc.png"),
        ("x" * 300 + ".png", "x" * 120),
    ],
)
def test_display_name_is_a_base_name_and_never_a_path(given, shown):
    assert display_name(given) == shown


def test_download_name_follows_the_written_format():
    assert download_name("holiday.jpeg", ".jpg") == "holiday_deblurred.jpg"
    assert download_name("anim.gif", ".png") == "anim_deblurred.png"
    assert download_name("../secret", ".png") == "secret_deblurred.png"
    assert download_name("", ".tif") == "photo_deblurred.tif"


def test_other_formats_are_recognised_and_ours_are_not():
    assert other_format(images.heic_start()) is None  # HEIC and AVIF are read since issue 27 (item 12)
    assert other_format(b"8BPS\x00\x01" + bytes(20)) == "Photoshop (PSD)"
    assert other_format(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">') == "SVG"
    assert other_format(b"P6\n4 4\n255\n" + bytes(48)) == "Netpbm"
    for ours in (images.png(), images.jpeg_with_metadata(), images.tiff(), b"hello world", b""):
        assert other_format(ours) is None


def test_declared_length():
    check_declared_length({"content-length": "100"}, 100)
    check_declared_length({}, 100)
    for headers, status in (({"content-length": "101"}, 413), ({"content-length": "x"}, 400), ({"content-length": "-1"}, 400)):
        with pytest.raises(ServeError) as e:
            check_declared_length(headers, 100)
        assert e.value.status == status


def _body(*chunks: bytes, stall: bool = False):
    async def gen():
        for chunk in chunks:
            yield chunk
        if stall:
            await asyncio.sleep(60)

    return gen()


def _multipart(data: bytes, name: str = "file") -> bytes:
    return (
        f'--b0undary\r\nContent-Disposition: form-data; name="{name}"; filename="p.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + data + b"\r\n--b0undary--\r\n"


HEADERS = {"content-type": "multipart/form-data; boundary=b0undary"}


def test_read_upload_keeps_the_file_field():
    body = _multipart(b"\x89PNG-bytes" * 100)
    upload = asyncio.run(read_upload(HEADERS, _body(body[:7], body[7:500], body[500:]), limit=len(body)))
    assert upload.data == b"\x89PNG-bytes" * 100 and upload.filename == "p.png" and upload.content_type == "image/png"


@pytest.mark.parametrize(
    "headers, chunks, limit, status",
    [
        (HEADERS, [_multipart(bytes(1000))], 999, 413),  # counted, whatever was declared
        ({"content-type": "image/png"}, [b"x"], 100, 400),
        (HEADERS, [b"garbage without boundary"], 100, 400),
        (HEADERS, [_multipart(b"abc", name="other")], 1000, 400),
    ],
    ids=["over-limit", "not-multipart", "malformed", "no-file-field"],
)
def test_read_upload_refusals(headers, chunks, limit, status):
    with pytest.raises(ServeError) as e:
        asyncio.run(read_upload(headers, _body(*chunks), limit=limit))
    assert e.value.status == status and "\n" not in e.value.message


def test_a_stalled_upload_is_408():
    with pytest.raises(ServeError) as e:
        asyncio.run(read_upload(HEADERS, _body(b"--b0undary\r\n", stall=True), limit=1000, idle_timeout=0.2))
    assert e.value.status == 408


def test_loopback_and_listen():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")
    with pytest.raises(UsageError):
        listen("127.0.0.1", 70000)
    with pytest.raises(UsageError):
        listen("no-such-host.invalid", 0)


def test_missing_extra_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(UsageError) as e:
        check_installed()
    assert "deblur-cli[serve]" in str(e.value) and "uvicorn" in str(e.value)


def test_the_page_files_exist_and_are_package_data():
    static = ROOT / "deblur_cli" / "serve" / "static"
    assert sorted(p.name for p in static.iterdir()) == sorted(STATIC_FILES)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "deblur_cli.serve" in pyproject["tool"]["setuptools"]["packages"]
    patterns = pyproject["tool"]["setuptools"]["package-data"]["deblur_cli.serve"]
    for name in STATIC_FILES:
        assert any(fnmatch.fnmatch(f"static/{name}", p) for p in patterns), name


def test_the_cli_imports_the_server_only_inside_its_command():
    code = (
        "import sys; import deblur_cli.cli; "
        "found = [m for m in ('deblur_cli.serve', 'starlette', 'uvicorn', 'python_multipart') if m in sys.modules]; "
        "print(found); sys.exit(1 if found else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_a_heic_upload_without_the_plugin_names_what_the_server_needs(tmp_path, monkeypatch):
    """Issue 27 item 12: HEIC is read with the heif extra; a server without it says so (415)."""
    from deblur_cli.files import formats
    from deblur_cli.serve.images import prepare
    from deblur_cli.serve.uploads import Upload

    monkeypatch.setattr(formats, "_enabled", tuple(n for n in formats.pillow_decoders() if n != "HEIF"))
    with pytest.raises(ServeError) as refused:
        prepare(Upload(images.heic_start(), "phone.heic", "image/heic"), 0, tmp_path)
    assert refused.value.status == 415 and "phone.heic is HEIF (HEIC)" in refused.value.message
    assert "pillow-heif" in refused.value.message and list(tmp_path.iterdir()) == []
