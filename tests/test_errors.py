"""deblur_cli.errors: exit codes are distinct, and redact keeps URL credentials out of messages."""

from __future__ import annotations

import pytest

from deblur_cli.errors import DeblurError, WeightsError, redact


@pytest.mark.parametrize(
    "text, shown",
    [
        ("http://user:secret@host/w.safetensors", "http://***@host/w.safetensors"),
        ("HTTPS://tok@host:8443/a", "HTTPS://***@host:8443/a"),
        ("https://a:b@c@host/w", "https://***@host/w"),  # the last @ of the authority ends the userinfo
        ("see http://h/p@x.safetensors", "see http://h/p@x.safetensors"),  # an @ in the path is not userinfo
        ("https://h/w?token=abc&v=1&api_key=k#f", "https://h/w?token=***&v=1&api_key=***#f"),
        ("https://h/w?X-Amz-Signature=s&X-Amz-Credential=c", "https://h/w?X-Amz-Signature=***&X-Amz-Credential=***"),
        ("two: http://u:p@a/ and https://v:q@b/", "two: http://***@a/ and https://***@b/"),
        ("no url, user:secret@host", "no url, user:secret@host"),
    ],
)
def test_redact(text, shown):
    assert redact(text) == shown


def test_every_error_message_is_redacted():
    error = WeightsError("download of http://alice:secret@h/w failed")
    assert str(error) == error.message == "download of http://***@h/w failed"
    assert isinstance(error, DeblurError) and "secret" not in repr(error)
