"""Issue 27 (the third hostile round and a new user's first hour), end to end through the
command line: what was silent or unclear, and what a new user tripped over. The serve items
are in tests/serve/; docs/hostile-inputs.md lists every case with its test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deblur_cli.errors import EXIT_USAGE
from tests.cli.test_hostile import (  # noqa: F401 - _isolated: a private cache, no proxies
    _isolated,
    _ok,
    _pairs,
    _refused,
    _run,
    _tree,
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


def test_resume_says_init_is_not_used(tmp_path, weights=None):
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
