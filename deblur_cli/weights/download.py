"""Downloads of weights into the user cache, streamed, size- and sha256-checked, atomic.

Knows URLs and the cache folder only; the registry decides what to fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from deblur_cli.errors import DeblurError, WeightsError
from deblur_cli.files.fsutil import atomic_path
from deblur_cli.files.ledger import ENV_CACHE_DIR, cache_dir
from deblur_cli.progress import Progress
from deblur_cli.weights.formats import CHUNK, one_line, sha256_file

__all__ = ["ENV_CACHE_DIR", "cache_dir", "cached_download", "download", "downloads_dir", "is_url", "url_filename"]


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def url_filename(url: str) -> str:
    """Cache name: a short hash of the URL (so different URLs never collide) + its base name."""
    base = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:100]
    tag = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return f"{tag}-{base}" if base else tag


def cached_download(url: str) -> Path:
    """Where :func:`download` keeps ``url`` (the file may not exist)."""
    return downloads_dir() / url_filename(url)


def download(
    url: str,
    sha256: str | None = None,
    *,
    dest_dir: Path | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Download ``url`` into ``dest_dir`` (default: the cache's downloads folder).

    A file already there (with the right sha256, when known, and passing ``check``) is
    reused. The body is streamed into a temporary file that is renamed only once complete
    and checked (size, sha256, then ``check(path)``, which raises a DeblurError for a file
    that is not usable, e.g. an HTML error page); on any failure nothing is left behind,
    so a bad answer is never cached. ``timeout`` bounds connecting and each read.
    """
    if not is_url(url):
        raise WeightsError(f"unsupported weights URL {url!r}: only http:// and https://")
    expected = sha256.lower() if sha256 else None
    folder = Path(dest_dir) if dest_dir is not None else downloads_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create cache folder {folder}: {e.strerror or e}") from None
    final = folder / url_filename(url)
    if final.is_file():
        if (expected is None or sha256_file(final) == expected) and _passes(check, final):
            return final
        with contextlib.suppress(OSError):  # a stale, damaged or unusable copy: fetch it again
            final.unlink()
    try:
        with atomic_path(final, overwrite=True) as tmp:  # the cache's own, checked copy
            _fetch(url, tmp, expected, progress, timeout)
            _check_download(check, tmp, url)
    except DeblurError as e:
        raise WeightsError(e.message) from None
    return final


def _check_download(check: Callable[[Path], None] | None, tmp: Path, url: str) -> None:
    """Run ``check`` on a finished download; its message names the URL, not the temp file."""
    if check is None:
        return
    try:
        check(tmp)
    except DeblurError as e:
        reason = e.message.replace(str(tmp), "the file")
        raise WeightsError(f"download of {url} is not usable weights, so it was not kept: {reason}") from None


def _passes(check: Callable[[Path], None] | None, path: Path) -> bool:
    """True when ``check`` accepts ``path`` (or there is no check)."""
    if check is None:
        return True
    try:
        check(path)
    except DeblurError:
        return False
    return True


#: Largest download: the biggest weights the architecture bounds allow (500 M float32
#: parameters, weights.formats.check_bounds) and their header. A declared size over it is
#: refused before a byte is read; a body that grows past it is cut there.
MAX_DOWNLOAD_BYTES = 2_100_000_000
#: Progress floor: a download that brings fewer than MIN_PROGRESS_BYTES in any
#: PROGRESS_WINDOW_S seconds is stopped (a server dripping a byte every few seconds would
#: otherwise pass every per-read timeout for ever).
MIN_PROGRESS_BYTES = 1024
PROGRESS_WINDOW_S = 60.0


class _Floor:
    """Fails a transfer that brings fewer than MIN_PROGRESS_BYTES in a PROGRESS_WINDOW_S window."""

    def __init__(self, url: str) -> None:
        self.url, self.start, self.bytes = url, time.monotonic(), 0

    def add(self, n: int) -> None:
        self.bytes += n
        now = time.monotonic()
        if now - self.start < PROGRESS_WINDOW_S:
            return
        if self.bytes < MIN_PROGRESS_BYTES:
            raise WeightsError(
                f"download of {self.url} stopped: {self.bytes} bytes in {now - self.start:.0f} s, under the "
                f"floor of {MIN_PROGRESS_BYTES} bytes per {PROGRESS_WINDOW_S:g} s"
            )
        self.start, self.bytes = now, 0


def _fetch(
    url: str, tmp: Path, expected: str | None, progress: Progress | None, timeout: float
) -> None:
    """Stream ``url`` into ``tmp``: identity encoding only, the size cap, the progress floor,
    ``timeout`` per read; sha256 checked against ``expected``."""
    import requests
    from urllib3.exceptions import HTTPError as Urllib3Error

    digest = hashlib.sha256()
    received, total = 0, None
    floor = _Floor(url)
    try:
        # identity encoding: Content-Length counts the bytes we receive, and no decoder can
        # turn a small body into an endless one
        with requests.get(
            url, stream=True, timeout=(timeout, timeout), headers={"Accept-Encoding": "identity"}
        ) as r:
            if r.status_code >= 400:
                status = f"HTTP {r.status_code} {r.reason or ''}".rstrip()
                raise WeightsError(f"download of {url} failed: {status}")
            total = _declared_size(r, url)
            if progress is not None:
                progress(0, total or 0)
            with open(tmp, "wb") as f:
                while chunk := r.raw.read1(CHUNK, decode_content=False):  # returns what has arrived
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise WeightsError(
                            f"download of {url} passed {_size(MAX_DOWNLOAD_BYTES)}, more than any weights "
                            "file can need; stopped there"
                        )
                    f.write(chunk)
                    digest.update(chunk)
                    floor.add(len(chunk))
                    if progress is not None:
                        progress(received, total or 0)
    except requests.exceptions.Timeout:
        raise WeightsError(f"download of {url} timed out after {timeout:g} s") from None
    except requests.exceptions.RequestException as e:
        raise WeightsError(_request_failure(url, e, total, timeout)) from None
    except (OSError, Urllib3Error) as e:  # read1 raises urllib3's own errors, not requests'
        raise WeightsError(_stream_failure(url, e, tmp, total, timeout)) from None
    if total is not None and received != total:
        raise WeightsError(f"download of {url} was cut short: received {received} of {total} bytes")
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        raise WeightsError(
            f"download of {url} is corrupt or tampered with: sha256 {actual} expected {expected}"
        )


def _declared_size(response: Any, url: str) -> int | None:
    """Content-Length, refused at once when over the cap; an encoded body is refused too."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise WeightsError(
            f"download of {url} came {encoding}-encoded although only identity was accepted; refusing it"
        )
    try:
        total = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    if total > MAX_DOWNLOAD_BYTES:
        raise WeightsError(
            f"download of {url} announces {_size(total)}, more than any weights file can need "
            f"({_size(MAX_DOWNLOAD_BYTES)} at most); nothing was downloaded"
        )
    return total


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n:,} bytes"


def _stream_failure(url: str, e: Exception, tmp: Path, total: int | None, timeout: float) -> str:
    """One line for a failure while the body streams: a read timeout, a connection closed
    early (urllib3's errors), or the cache folder refusing the bytes (OSError)."""
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    if isinstance(e, (ReadTimeoutError, TimeoutError)):
        return f"download of {url} timed out after {timeout:g} s"
    if isinstance(e, ProtocolError) or not isinstance(e, OSError):
        size = f"all {total} bytes" if total is not None else "the whole file"
        return f"download of {url} was cut short: the connection closed before {size} arrived"
    return f"cannot write download to {tmp.parent}: {e.strerror or e}"


def _request_failure(url: str, e: Exception, total: int | None, timeout: float) -> str:
    """One line saying why a request failed (timeouts, cut-short bodies, no connection)."""
    import requests

    if _is_read_timeout(e):
        return f"download of {url} timed out after {timeout:g} s"
    if isinstance(e, requests.exceptions.ChunkedEncodingError):  # connection closed early
        size = f"all {total} bytes" if total is not None else "the whole file"
        return f"download of {url} was cut short: the connection closed before {size} arrived"
    if isinstance(e, requests.exceptions.ConnectionError):
        found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(e))
        reason = found.group(1).strip() if found else "connection failed"
        return f"download of {url} failed: cannot connect to {_host(url)}: {reason}"
    return f"download of {url} failed: {one_line(e)}"


def _host(url: str) -> str:
    """The host and port of ``url``, never its userinfo (the netloc holds ``user:password@``)."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or "?"
    try:
        return f"{host}:{parts.port}" if parts.port is not None else host
    except ValueError:  # a port that is not a number
        return host


def _is_read_timeout(error: Exception) -> bool:
    # requests wraps a read timeout during iter_content in a ConnectionError
    from urllib3.exceptions import ReadTimeoutError

    return any(isinstance(a, ReadTimeoutError) for a in error.args)
