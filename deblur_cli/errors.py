"""Error types and their exit codes. The CLI maps these to one-line messages in one place."""

from __future__ import annotations

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


class DeblurError(Exception):
    """Base class: an expected failure with a one-line, user-facing message."""

    exit_code: int = EXIT_FAILURES

    def __init__(self, message: str) -> None:
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
