"""Issue 27 (the third hostile round and a new user's first hour), end to end through the
command line: what was silent or unclear, and what a new user tripped over. The serve items
are in tests/serve/; docs/hostile-inputs.md lists every case with its test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from deblur_cli.errors import EXIT_USAGE
from tests.cli.test_hostile import (  # noqa: F401 - _isolated: a private cache, no proxies; fixtures
    _isolated,
    _ok,
    _pairs,
    _refused,
    _run,
    _tree,
    identity,
)

# ============================================================================ item 7: train --resume


def _lite_run(tmp_path: Path) -> tuple[Path, Path]:
    """A `lite` run of 2 steps on 32 px crops, checkpointed at each step."""
    data, run = _pairs(tmp_path / "data"), tmp_path / "run"
    _ok(_run("train", "--data", data, "--output", run, "--model", "lite", "--crop", "32", "--batch-size", "2",
             "--steps", "2", "--workers", "0", "--checkpoint-every", "1", "--val-every", "1000", "--device", "cpu"))
    return data, run


def test_resume_refuses_what_contradicts_the_run(tmp_path):
    data, run = _lite_run(tmp_path)
    before = _tree(run)
    text = _refused(_run("train", "--data", data, "--output", run, "--resume", "--model", "k3", "--crop", "48",
                         "--lr", "0.5", "--steps", "3", "--device", "cpu"), EXIT_USAGE,
                    "model k3 (the run's: lite)", "crop 48 (the run's: 32)", "Leave them out")
    assert "lr 0.5" not in text  # lr may change: it is not refused
    assert _tree(run) == before  # nothing trained, nothing rewritten
    _refused(_run("train", "--data", data, "--output", run, "--resume", "--recipe", "paper", "--device", "cpu"),
             EXIT_USAGE, "recipe paper contradicts", "recipe cpu")


def test_resume_applies_what_may_change_with_a_note(tmp_path):
    data, run = _lite_run(tmp_path)
    text = _ok(_run("train", "--data", data, "--output", run, "--resume", "--model", "lite", "--crop", "32",
                    "--lr", "0.5", "--warmup-steps", "0", "--horizon", "100", "--steps", "3", "--device", "cpu"))
    assert "note: lr is now 0.5 (was 0.001)" in text and "note: steps is now 3 (was 2)" in text
    assert "model" not in text.split("trained")[0]  # given again, equal: no note
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["lr"] == 0.5 and saved["steps"] == 3
    ckpt = torch.load(run / "checkpoints" / "step_00000003.pt", weights_only=True)
    group = ckpt["optimizer"]["param_groups"][0]
    assert group["initial_lr"] == 0.5 and ckpt["scheduler"]["base_lrs"] == [0.5]
    step3 = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line][-1]
    assert step3["step"] == 3 and 0.45 < step3["lr"] < 0.5  # the new peak x the new schedule, not 0.001 x the old


def test_resume_says_init_is_not_used(tmp_path):
    data, run = _lite_run(tmp_path)
    text = _ok(_run("train", "--data", data, "--output", run, "--resume", "--init", "lite", "--steps", "3", "--device", "cpu"))
    assert "note: --init lite is not used: the run continues from its newest checkpoint" in text


# ============================================================================ item 8: URL credentials


def _secret_url(base: str, route: str) -> str:
    """``base`` (http://127.0.0.1:PORT) with a user, a password and a token in the query."""
    return base.replace("http://", "http://alice:secret@") + f"/{route}/w.safetensors?token=abc123&v=hunter2x"


def _no_secret(text: str) -> None:
    for word in ("secret", "abc123"):
        assert word not in text, text


@pytest.fixture
def weights_body(tmp_path) -> bytes:
    from deblur_cli import weights as W
    from deblur_cli.network.model import AttentiveDeblurNet
    from tests.conftest import TINY

    W.save_weights(AttentiveDeblurNet(TINY), tmp_path / "w.safetensors")
    return (tmp_path / "w.safetensors").read_bytes()


@pytest.mark.parametrize("route", ["error", "short", "refused"])
def test_a_weights_url_password_is_never_shown(tmp_path, weights_body, hostile_server, route):
    """Every command that takes a weights URL, on each way a download fails."""
    server = hostile_server(weights_body)
    base = "http://127.0.0.1:9" if route == "refused" else server.base  # port 9: nothing listens
    url = _secret_url(base, route)
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (16, 16), "grey").save(photo)
    for args in (
        [photo, "--weights", url],
        ["batch", tmp_path, "-o", tmp_path / "out", "--weights", url],
        ["weights", "download", url],
        ["weights", "export-onnx", url, tmp_path / "x.onnx", "--no-check"],
        ["train", "--data", tmp_path, "--output", tmp_path / "run", "--init", url, "--steps", "1", "--device", "cpu"],
    ):
        result = _run(*args)
        assert result.exit_code != 0
        _no_secret(result.output)
        assert "http://***@127.0.0.1" in result.output and "token=***" in result.output, result.output


def test_a_weights_url_password_stays_out_of_doctor_and_the_api(tmp_path, weights_body, hostile_server):
    from deblur_cli import Deblurrer
    from deblur_cli.errors import WeightsError
    from deblur_cli.methods import InferenceOptions

    server = hostile_server(weights_body)
    _no_secret(_run("doctor", "--weights", _secret_url(server.base, "ok")).output)
    with pytest.raises(WeightsError) as refused:
        Deblurrer(weights=_secret_url(server.base, "error"), device="cpu")
    _no_secret(str(refused.value))
    deblurrer = Deblurrer(weights=_secret_url(server.base, "ok"), device="cpu")
    assert deblurrer.weights_info is not None
    _no_secret(deblurrer.weights_info.source)
    assert deblurrer.weights_info.source.startswith("http://***@127.0.0.1")
    _no_secret(repr(InferenceOptions(weights=_secret_url(server.base, "ok"))))


def test_the_download_bar_never_shows_a_password():
    from deblur_cli.cli.app import printable

    shown = printable("Weights https://bob:pa55@example.org/w.safetensors?X-Amz-Signature=s3cr3t&x=1")
    assert shown == "Weights https://***@example.org/w.safetensors?X-Amz-Signature=***&x=1"


# ============================================================================ item 13: pipes


def _piped(args: list[object], tmp_path: Path, stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
    """`python -m deblur_cli ARGS` with ``stdin`` piped in (None: a closed, empty pipe)."""
    import sys

    from tests.cli.test_hostile import _env

    return subprocess.run(
        [sys.executable, "-m", "deblur_cli", *[str(a) for a in args]],
        input=stdin if stdin is not None else b"", capture_output=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
    )


def _photo_bytes(fmt: str, size=(24, 32)) -> bytes:
    from tests.cli.test_hostile import _encoded, _u8

    return _encoded(_u8((*size, 3), 3), fmt)


@pytest.mark.parametrize("fmt, asked, expected", [("JPEG", None, "JPEG"), ("PNG", None, "PNG"), ("JPEG", "png", "PNG"), ("GIF", None, "PNG")])
def test_standard_input_to_standard_output(tmp_path, identity, fmt, asked, expected):
    """`deblur - -o - < in.jpg > out.jpg` did not work; stdout carries the image and nothing else."""
    import io

    from PIL import Image

    data = _photo_bytes(fmt)
    extra = ["--format", asked] if asked else []
    piped = _piped(["-", "-o", "-", "--weights", identity, "--precision", "fp32", *extra], tmp_path, data)
    assert piped.returncode == 0, piped.stderr.decode()
    assert b"wrote standard output" in piped.stderr and b"pipe-" not in piped.stderr
    (tmp_path / f"in.{fmt.lower()}").write_bytes(data)  # the same image through files, for comparison
    suffix = {"JPEG": ".jpg", "PNG": ".png"}[expected]
    _ok(_run(tmp_path / f"in.{fmt.lower()}", "-o", tmp_path / f"ref{suffix}", "--weights", identity, "--precision", "fp32"))
    assert piped.stdout == (tmp_path / f"ref{suffix}").read_bytes()  # the image, whole, and nothing else
    assert Image.open(io.BytesIO(piped.stdout)).format == expected
    assert not list((tmp_path / "cache" / "pipes").glob("pipe-*"))  # the spooled copy is gone


def test_a_file_to_standard_output_and_standard_input_to_a_file(tmp_path, identity):
    src = tmp_path / "in.png"
    src.write_bytes(_photo_bytes("PNG"))
    to_stdout = _piped([src, "-o", "-", "--weights", identity], tmp_path, None)
    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith(b"\x89PNG"), to_stdout.stderr
    from_stdin = _piped(["-", "-o", tmp_path / "out.webp", "--weights", identity], tmp_path, src.read_bytes())
    assert from_stdin.returncode == 0 and from_stdin.stdout == b"", from_stdin.stderr
    assert (tmp_path / "out.webp").read_bytes()[8:12] == b"WEBP"


@pytest.mark.parametrize(
    "args, stdin, code, needle",
    [
        pytest.param(["-", "-o", "-"], b"", 3, "error: standard input is empty (0 bytes)", id="empty"),
        pytest.param(["-", "-o", "-"], b"hello, not an image\n" * 9, 3, "error: standard input is not an image", id="not-an-image"),
        pytest.param(["-"], "PNG", 2, "error: an image from standard input has no folder for its result: name it with -o FILE, or -o - for standard output", id="no-output"),
        pytest.param(["-", "PHOTO", "-o", "out/"], "PNG", 2, "error: - (standard input) is one image", id="with-others"),
        pytest.param(["PHOTO", "PHOTO2", "-o", "-"], None, 2, "error: -o - (standard output) takes one image, not 2", id="several-to-stdout"),
        pytest.param(["PHOTO", "-o", "x.jpg", "--format", "png"], None, 2, "error: the output x.jpg is named as JPEG but --format asks for PNG", id="format-contradicts"),
    ],
)
def test_what_a_pipe_cannot_do_is_said(tmp_path, identity, args, stdin, code, needle):
    (tmp_path / "p.png").write_bytes(_photo_bytes("PNG"))
    (tmp_path / "q.png").write_bytes(_photo_bytes("PNG"))
    args = [{"PHOTO": "p.png", "PHOTO2": "q.png"}.get(a, a) for a in args]
    data = _photo_bytes("PNG") if stdin == "PNG" else stdin
    piped = _piped([*args, "--weights", identity], tmp_path, data)
    err = piped.stderr.decode()
    assert piped.returncode == code and err.startswith(needle) and err.count("\n") == 1, err
    assert piped.stdout == b"" and "pipe-" not in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["p.png", "q.png"]


def test_a_file_named_dash_is_read_as_dot_slash_dash(tmp_path, identity):
    (tmp_path / "-").write_bytes(_photo_bytes("PNG"))
    done = _piped(["./-", "-o", "out.png", "--weights", identity], tmp_path, b"")
    assert done.returncode == 0 and (tmp_path / "out.png").is_file(), done.stderr
