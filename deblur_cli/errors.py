"""Error types and their exit codes. The CLI maps these to one-line messages in one place.

Also :func:`redact`, the one rule that keeps the credentials of a URL (``user:password@``,
``?token=...``) out of everything shown or logged: every message of a :class:`DeblurError`
passes through it, and so does whatever the command line prints.
"""

from __future__ import annotations

import re

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILURES = 1  # a batch finished but some files failed; or an unexpected internal error
EXIT_USAGE = 2  # bad command-line usage (also Typer/Click's own code)
EXIT_INPUT = 3  # an input file is missing, unreadable, corrupt, unsupported or too large
EXIT_OUTPUT = 4  # an output cannot be written (unwritable folder, equals the input, disk full)
EXIT_WEIGHTS = 5  # weights missing, untrained, corrupt, checksum mismatch, download failed
EXIT_RESOURCE = 6  # out of memory even at the smallest tile, or device not available
EXIT_DATA = 7  # a dataset folder has the wrong layout or no usable images
EXIT_INTERRUPTED = 130


#: ``scheme://USERINFO@``: everything before the last ``@`` of the authority is userinfo.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")
#: A query parameter whose name says it holds a secret (``?token=``, ``&X-Amz-Signature=``).
_SECRET_PARAM = re.compile(
    r"(?i)([?&][^=&#\s]*(?:token|secret|passw(?:or)?d|pwd|signature|sig|key|auth|credential)[^=&#\s]*=)[^&#\s]*"
)
REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: the userinfo
    (``http://user:secret@host`` -> ``http://***@host``) and the values of query parameters
    named like a secret (token, key, signature, password, auth, ...). Text without URLs
    comes back unchanged."""
    if "://" not in text:
        return text
    return _SECRET_PARAM.sub(rf"\1{REDACTED}", _USERINFO.sub(rf"\1{REDACTED}@", text))


class DeblurError(Exception):
    """Base class: an expected failure with a one-line, user-facing message (URL
    credentials redacted: :func:`redact`)."""

    exit_code: int = EXIT_FAILURES

    def __init__(self, message: str) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(DeblurError):
    """An input image cannot be used."""

    exit_code = EXIT_INPUT


class OutputError(DeblurError):
    """An output cannot be written safely."""

    exit_code = EXIT_OUTPUT


class WeightsError(DeblurError):
    """Weights are missing, corrupt, untrusted or do not match the architecture."""

    exit_code = EXIT_WEIGHTS


class ResourceError(DeblurError):
    """The device is unavailable or memory ran out even with the smallest tiles."""

    exit_code = EXIT_RESOURCE


class UsageError(DeblurError):
    """An option value is invalid (e.g. fp16 on CPU, unknown block name)."""

    exit_code = EXIT_USAGE


class DataError(DeblurError):
    """A dataset folder matches no known layout or holds no usable pairs."""

    exit_code = EXIT_DATA
