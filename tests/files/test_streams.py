"""deblur_cli.files.streams: `-` as standard input and output (issue 27 item 13)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from deblur_cli.errors import InputError, OutputError, UsageError
from deblur_cli.files import streams


class _Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_a_spooled_pipe_is_a_file_named_as_its_stream():
    with streams.stream_folder() as folder:
        path = folder.spool(io.BytesIO(b"abc"))
        assert path.read_bytes() == b"abc" and folder.path in path.parents
        assert folder.shown(f"{path} is not an image") == "standard input is not an image"
        kept = folder.path
    assert not kept.exists()  # removed at the end


def test_limits_of_a_pipe():
    with streams.stream_folder() as folder:
        with pytest.raises(InputError, match="more than 10 bytes"):
            folder.spool(io.BytesIO(b"x" * 11), max_bytes=10)
        with pytest.raises(InputError, match="standard input is empty"):
            folder.spool(io.BytesIO(b""))
        with pytest.raises(UsageError, match="standard input is a terminal"):
            folder.spool(_Terminal(b"x"))
        with pytest.raises(OutputError, match="standard output is a terminal"):
            folder.send(folder.spool(io.BytesIO(b"x")), _Terminal())


def test_errors_inside_name_the_streams_not_the_folder():
    with pytest.raises(InputError) as refused, streams.stream_folder() as folder:
        path = folder.spool(io.BytesIO(b"abc"))
        raise InputError(f"{path} is corrupt")
    assert str(refused.value) == "standard input is corrupt"


def test_a_file_named_dash_is_given_as_dot_slash():
    assert streams.is_stream("-") and not streams.is_stream("./-") and not streams.is_stream("-x")
    assert not streams.is_stream(Path("-"))  # a Path was a file's name already
