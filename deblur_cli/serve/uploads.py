"""Reading an upload: the multipart body streamed and counted, refused as soon as it is too big.

The body is never trusted for its size: a declared ``Content-Length`` over the limit is
refused before a byte of the body is read (:func:`check_declared_length`), and the bytes
actually received are counted while they arrive, so a chunked or lying upload is refused
once it passes the limit (:func:`read_upload`). Only the ``file`` field is kept, in memory;
its file name is used for nothing but the name of the download.

:class:`ServeError` carries the HTTP status and the one-line message every refusal answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

#: The field the image travels in.
FIELD = "file"
#: How to send an image, for error messages.
HOW_TO_SEND = "send the image as multipart/form-data in the field 'file' (curl -F file=@photo.jpg)"
#: Seconds without a byte of the body before an upload counts as stalled (408).
IDLE_TIMEOUT = 60.0
#: Text fields kept besides the file (what the client chooses; see serve.choices), and their
#: longest value in bytes. Other fields are read past and dropped.
TEXT_FIELDS = ("weights", "method")
MAX_TEXT_FIELD = 200
#: Part headers are few and short; more is a hostile or broken client.
_MAX_PART_HEADER = 4096


class ServeError(Exception):
    """A refusal: an HTTP status and a one-line message for the JSON error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(str(message).split()) or "error"


@dataclass(frozen=True)
class Upload:
    """The uploaded file: its bytes, and the name and type the client gave it (untrusted);
    ``fields``: the :data:`TEXT_FIELDS` the form carried (untrusted, checked by their user)."""

    data: bytes
    filename: str
    content_type: str
    fields: Mapping[str, str] = field(default_factory=dict)


def too_big(limit: int) -> ServeError:
    return ServeError(413, f"the upload is larger than this server's limit of {limit / 2**20:g} MB (deblur serve --max-upload-mb)")


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse a request whose ``Content-Length`` is over ``limit`` bytes (or is not a number)."""
    raw = headers.get("content-length")
    if raw is None:
        return  # chunked: counted while it arrives
    try:
        declared = int(raw)
    except ValueError:
        raise ServeError(400, f"Content-Length is not a number: {raw[:40]!r}") from None
    if declared < 0:
        raise ServeError(400, "Content-Length is negative")
    if declared > limit:
        raise too_big(limit)


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary from a Content-Type header; ServeError 400 if it is not multipart."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise ServeError(400, HOW_TO_SEND)
    return boundary


class _Collector:
    """Multipart callbacks: keeps the one ``file`` part, skips the others."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.files = 0
        self.filename = ""
        self.content_type = ""
        self._headers: dict[bytes, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._keep = False
        self.fields: dict[str, str] = {}
        self._text: bytearray | None = None  # the value of the text field being read
        self._text_name = ""

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._grow(self._field, data[start:end]),
            "on_header_value": lambda data, start, end: self._grow(self._value, data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    @staticmethod
    def _grow(buffer: bytearray, data: bytes) -> None:
        if len(buffer) + len(data) > _MAX_PART_HEADER:
            raise ServeError(400, "a multipart part header is too long")
        buffer += data

    def _begin(self) -> None:
        self._headers, self._keep, self._text = {}, False, None

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name in TEXT_FIELDS:
            if name in self.fields:
                raise ServeError(400, f"the field '{name}' came more than once")
            self._text, self._text_name = bytearray(), name
            return
        if name != FIELD:
            return
        self.files += 1
        if self.files > 1:
            raise ServeError(400, f"send one image per request (the field '{FIELD}' came more than once)")
        self._keep = True
        self.filename = params.get(b"filename", b"").decode("utf-8", "replace")
        self.content_type = self._headers.get(b"content-type", b"").decode("latin-1")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._keep:
            self.data += data[start:end]
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_TEXT_FIELD:
                raise ServeError(400, f"the field '{self._text_name}' is longer than {MAX_TEXT_FIELD} bytes")

    def _part_end(self) -> None:
        if self._text is not None:
            self.fields[self._text_name] = self._text.decode("utf-8", "replace").strip()
            self._text = None


async def read_upload(
    headers: Mapping[str, str],
    body: AsyncIterator[bytes],
    limit: int,
    idle_timeout: float = IDLE_TIMEOUT,
    time_limit: float | None = None,
) -> Upload:
    """Stream the multipart ``body`` and return its ``file`` field.

    ServeError: 413 once more than ``limit`` bytes arrived, 408 after ``idle_timeout`` seconds
    without data or once the whole upload has taken ``time_limit`` seconds (None: no limit;
    a client trickling a byte now and then cannot keep its place in the queue), 400 when the
    body is not multipart, is malformed, or has no (or an empty) ``file`` field.
    """
    collector = _Collector()
    parser = MultipartParser(boundary_of(headers.get("content-type", "")), collector.callbacks())  # type: ignore[arg-type]  # the TypedDict's callbacks
    received = 0
    chunks = body.__aiter__()
    deadline = None if time_limit is None else time.monotonic() + time_limit
    while True:
        left = idle_timeout if deadline is None else min(idle_timeout, deadline - time.monotonic())
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(left, 0.0))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                raise ServeError(
                    408, f"the upload did not arrive within {time_limit:g} s (deblur serve --upload-timeout)"
                ) from None
            raise ServeError(408, f"the upload stalled (no data for {idle_timeout:g} s)") from None
        received += len(chunk)
        if received > limit:
            raise too_big(limit)
        _feed(parser, chunk)
    _feed(parser, None)
    if not collector.files:
        raise ServeError(400, f"no field '{FIELD}' in the upload; {HOW_TO_SEND}")
    if not collector.data:
        raise ServeError(400, "the uploaded file is empty (0 bytes)")
    return Upload(bytes(collector.data), collector.filename, collector.content_type, dict(collector.fields))


def _feed(parser: MultipartParser, chunk: bytes | None) -> None:
    """Write a chunk (None: the end) into the parser; its errors become a 400."""
    try:
        if chunk is None:
            parser.finalize()
        elif chunk:
            parser.write(chunk)
    except ServeError:
        raise
    except Exception:  # noqa: BLE001 - python-multipart raises several types for bad bodies
        raise ServeError(400, f"the multipart body is malformed; {HOW_TO_SEND}") from None


__all__ = ["FIELD", "MAX_TEXT_FIELD", "TEXT_FIELDS", "ServeError", "Upload", "boundary_of", "check_declared_length", "read_upload", "too_big"]
