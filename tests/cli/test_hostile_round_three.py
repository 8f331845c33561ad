"""Issue 27 (the third hostile round and a new user's first hour), end to end through the
command line: what was silent or unclear, and what a new user tripped over. The serve items
are in tests/serve/; docs/hostile-inputs.md lists every case with its test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

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


# ============================================================================ item 15: help, completion, --json, -q/-v, ...


def _commands() -> list[list[str]]:
    """Every command line that has a help page: `deblur NAME` and `deblur weights NAME`."""
    from deblur_cli.cli.main import COMMANDS, WEIGHTS_COMMANDS

    return [[name] for name, _ in COMMANDS] + [["weights", name] for name, _ in WEIGHTS_COMMANDS] + [[], ["weights"]]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "deblur")
def test_help_names_values_not_python_types(command):
    """`--help` showed `<list[Path]>`, `<str>`, `<int>`; it shows FILE, FOLDER, NAME, N."""
    import re

    text = _ok(_run(*command, "--help", env={"COLUMNS": "200"}))
    found = re.findall(r"<(?:str|int|float|bool|path|Path|list\[[^\]]*\]|int range|float range)>", text)
    assert not found, found


def test_help_value_names_say_what_to_give():
    image = _ok(_run("image", "--help", env={"COLUMNS": "200"}))
    assert "image [OPTIONS] FILE..." in image
    for shown in ("FILE|FOLDER|-", "NAME|PATH|URL", "FORMAT", "--tile", "FILE|-"):
        assert shown in image, shown
    assert "batch [OPTIONS] FOLDER" in _ok(_run("batch", "--help", env={"COLUMNS": "200"}))
    assert "RUN_FOLDER FILE" in _ok(_run("weights", "export", "--help", env={"COLUMNS": "200"}))


def test_shell_completion_is_offered_and_completes(tmp_path):
    import subprocess
    import sys

    from tests.cli.test_hostile import _env

    assert "--install-completion" in _ok(_run("--help")) and "--show-completion" in _ok(_run("--help"))
    script = _piped(["--show-completion", "bash"], tmp_path, b"")
    assert script.returncode == 0 and b"_deblur_completion" in script.stdout, script.stderr
    for words, cword, expected in (("deblur ima", 1, "image"), ("deblur batch --only", 2, "--only-blurry"),
                                    ("deblur weights d", 2, "download"), ("deblur photo.jpg --ov", 2, "--overwrite")):
        env = {**_env(tmp_path), "_DEBLUR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        done = subprocess.run([sys.executable, "-m", "deblur_cli"], capture_output=True, env=env, cwd=tmp_path, timeout=60)
        assert done.stdout.decode().split() == [expected], (words, done.stdout, done.stderr)


def test_json_report_of_image_and_batch(tmp_path, identity):
    import io

    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(_photo_bytes("PNG"))
    (folder / "bad.jpg").write_bytes(b"not a jpeg")
    one = _run(folder / "a.png", "-o", tmp_path / "a_out.png", "--weights", identity, "--json", "-", "-q")
    assert one.exit_code == 0, one.output
    doc = json.loads(one.stdout)  # standard output carries the JSON only
    assert doc["command"] == "image" and doc["counts"]["written"] == 1 and doc["weights_sha256"]
    assert doc["files"] == [{"input": str(folder / "a.png"), "status": "written", "output": str(tmp_path / "a_out.png"), "notes": []}]
    many = _run("batch", folder, "-o", tmp_path / "out", "--weights", identity, "--json", tmp_path / "reports" / "batch.json")
    assert many.exit_code == 1  # bad.jpg failed
    doc = json.loads((tmp_path / "reports" / "batch.json").read_text())  # its missing folder made
    assert doc["counts"] == {"written": 1, "skipped": 0, "failed": 1, "left alone": 0}
    failed = next(f for f in doc["files"] if f["status"] == "failed")
    assert failed["input"].endswith("bad.jpg") and ("not an image" in failed["reason"] or "corrupt" in failed["reason"])
    Image.open(io.BytesIO((tmp_path / "out" / "a.png").read_bytes())).verify()
    _refused(_run(folder / "a.png", "-o", tmp_path / "x.png", "--json", tmp_path / "x.png", "--weights", identity, "--overwrite"),
             4, "is also an image output of this run")


def test_quiet_and_verbose(tmp_path, identity):
    src = tmp_path / "a.png"
    src.write_bytes(_photo_bytes("PNG"))
    quiet = _run(src, "-o", tmp_path / "q.png", "--weights", identity, "-q")
    assert quiet.exit_code == 0 and quiet.output == "", quiet.output
    failing = _run(tmp_path / "missing.png", "-q", "--weights", identity)
    assert failing.exit_code == 3 and failing.output.startswith("error: no such file"), failing.output  # errors still said
    loud = _ok(_run(src, "-o", tmp_path / "v.png", "--weights", identity, "-v"))
    assert f"{src} -> {tmp_path / 'v.png'}" in loud and "sha256" in loud and "threads" in loud
    _refused(_run(src, "-q", "-v", "--weights", identity), EXIT_USAGE, "-q (quiet) and -v (verbose) contradict")
    score = _run("score", src, "-q")
    assert score.exit_code == 0 and score.output.strip().endswith(str(src)) and "blurry (threshold" not in score.output


@pytest.mark.parametrize("what", ["image", "score-json", "weights-export"])
def test_an_output_in_a_missing_folder_is_made(tmp_path, identity, what):
    """`-o newdir/x.jpg` failed although `-o newdir/` creates the folder; the same for other file outputs."""
    src = tmp_path / "a.png"
    src.write_bytes(_photo_bytes("PNG"))
    target = tmp_path / "new" / "deeper" / {"image": "x.jpg", "score-json": "s.json", "weights-export": "w.safetensors"}[what]
    if what == "image":
        _ok(_run(src, "-o", target, "--weights", identity))
    elif what == "score-json":
        _ok(_run("score", src, "--json", target))
    else:
        data, run = _lite_run(tmp_path)
        _ok(_run("weights", "export", run, target))
    assert target.is_file()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _refused(_run(src, "-o", blocker / "x.jpg", "--weights", identity), 4, "is a file, not a folder")


def test_unknown_weights_are_said_before_an_existing_output(tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(_photo_bytes("PNG"))
    (tmp_path / "out.png").write_bytes(b"earlier")
    _refused(_run(src, "-o", tmp_path / "out.png", "--weights", "no-such-weights"), 5, "weights 'no-such-weights' not found")
    _refused(_run("batch", tmp_path, "-o", tmp_path / "file.png", "--weights", "nope"), 5, "weights 'nope' not found")


def test_weights_download_of_bundled_weights_says_nothing_was_downloaded():
    from deblur_cli.files.bundled import registered_names

    default, _ = registered_names()
    text = _ok(_run("weights", "download", default))
    assert f"{default} is bundled with deblur: nothing to download" in text and "saved" not in text


# ============================================================================ second pass: siblings in other commands


def test_options_that_would_be_ignored_are_refused(tmp_path, identity):
    """The class of item 7 elsewhere: `batch --threshold` without --only-blurry and `video
    --preset` with vp9/av1 did nothing, silently."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(_photo_bytes("PNG"))
    _refused(_run("batch", folder, "--threshold", "0.5", "--weights", identity), EXIT_USAGE, "without --only-blurry every photo is deblurred")
    assert not (tmp_path / "in_deblurred").exists()
    from deblur_cli.errors import UsageError
    from deblur_cli.tools.video import VideoOptions

    with pytest.raises(UsageError, match="vp9 has none"):
        VideoOptions(codec="vp9", preset="slow")
    assert VideoOptions(codec="h264").preset is None  # medium, unless given


def test_export_onnx_and_train_init_say_a_weights_typo_first(tmp_path):
    """The class of item 15 ("unknown weights" after "output exists") in the other commands that name weights."""
    (tmp_path / "x.onnx").write_bytes(b"earlier")
    _refused(_run("weights", "export-onnx", "typo", tmp_path / "x.onnx", "--no-check"), 5, "weights 'typo' not found")
    data = _pairs(tmp_path / "data")
    _refused(_run("train", "--data", data, "--output", tmp_path / "run", "--init", "typo", "--steps", "1", "--device", "cpu"), 5, "weights 'typo' not found")
    assert not (tmp_path / "run").exists()  # said while planning, before the run folder is made


def test_score_reads_standard_input(tmp_path):
    """The class of item 13 in `deblur score`: `deblur score - < photo.jpg`."""
    done = _piped(["score", "-"], tmp_path, _photo_bytes("JPEG", size=(64, 80)))
    assert done.returncode == 0, done.stderr
    line = done.stdout.decode().strip()
    assert line.endswith("standard input") and line.split()[1] in ("sharp", "blurry"), line
    as_json = _piped(["score", "-", "--json", "-"], tmp_path, _photo_bytes("JPEG", size=(64, 80)))
    assert json.loads(as_json.stdout)["images"][0]["path"] == "standard input"
    bad = _piped(["score", "-"], tmp_path, b"not an image")
    assert bad.returncode == 1 and b"failed standard input:" in bad.stderr, bad.stderr


# ============================================================================ item 11: the blurriest region


def test_only_blurry_deblurs_a_sharp_street_with_one_moving_car(tmp_path, identity):
    """`--only-blurry` left alone a sharp street with one motion-blurred car (0.27, "sharp")."""
    import numpy as np
    from PIL import Image

    from tests.quality.test_score import _scene, _street_with_a_moving_car

    folder = tmp_path / "street"
    folder.mkdir()
    car, _ = _street_with_a_moving_car(0)
    for name, img in (("car.png", car), ("still.png", _scene(240, 320, 0))):
        Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(folder / name)
    scored = _ok(_run("score", folder, "--json", tmp_path / "scores.json"))
    car_line = next(line for line in scored.splitlines() if line.rstrip().endswith(")") and "car.png" in line)
    whole = float(car_line.split()[0])
    assert whole <= 0.35 and " blurry " in car_line and "its blurriest region: " in car_line
    doc = {Path(i["path"]).name: i for i in json.loads((tmp_path / "scores.json").read_text())["images"]}
    assert doc["car.png"]["verdict"] == "blurry" and doc["car.png"]["region"]["score"] > 0.65
    assert doc["still.png"]["verdict"] == "sharp" and doc["still.png"]["region"]["score"] <= 0.65
    text = _ok(_run("batch", folder, "-o", tmp_path / "out", "--only-blurry", "--weights", identity))
    assert (tmp_path / "out" / "car.png").is_file() and not (tmp_path / "out" / "still.png").exists()
    assert "still.png: blur score" in text and "blurriest region" in text


# ============================================================================ item 12: phone photos, every suffix


def _phone_photo(path: Path, fmt: str, orientation: int = 6) -> Any:
    """A HEIF or AVIF photo with EXIF (camera make, an orientation), XMP and an sRGB profile;
    the pixels as stored (before the orientation)."""
    import numpy as np
    from PIL import Image, ImageCms

    from deblur_cli.files import formats

    formats.pillow_decoders()  # registers the HEIF plugin
    pixels = (np.random.default_rng(5).random((40, 56, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "PhoneMaker", orientation
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pixels).save(path, format=fmt, exif=exif.tobytes(), icc_profile=icc, quality=100,
                                 xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>phone</x:xmpmeta>")
    return pixels


@pytest.mark.parametrize("suffix, fmt", [(".heic", "HEIF"), (".avif", "AVIF")])
def test_phone_photos_are_read_kept_and_written(tmp_path, identity, suffix, fmt):
    """HEIC/HEIF and AVIF inputs were refused; they are read, their metadata kept, and written."""
    from PIL import Image

    src = tmp_path / f"IMG_0001{suffix}"
    _phone_photo(src, fmt)
    before = _tree(tmp_path)
    text = _ok(_run(src, "--weights", identity, "--precision", "fp32"))
    out = tmp_path / f"IMG_0001_deblurred{suffix}"
    assert "note:" not in text and out.is_file()
    with Image.open(out) as im:
        assert im.format == fmt and im.size == (40, 56)  # turned upright once, not twice
        assert im.getexif().get(0x010F) == "PhoneMaker" and im.getexif().get(0x0112, 1) == 1
        assert im.info.get("icc_profile") and b"phone" in (im.info.get("xmp") or b"")
    assert {k: v for k, v in _tree(tmp_path).items() if k in before} == before  # the input untouched
    as_jpeg = tmp_path / "as.jpg"
    _ok(_run(src, "-o", as_jpeg, "--weights", identity))
    with Image.open(as_jpeg) as im:
        assert im.format == "JPEG" and im.size == (40, 56) and im.getexif().get(0x010F) == "PhoneMaker"
    back = tmp_path / f"back{suffix}"
    _ok(_run(as_jpeg, "-o", back, "--weights", identity))  # written when asked, from another format
    with Image.open(back) as im:
        assert im.format == fmt


def test_every_common_suffix_of_a_format_is_a_photo(tmp_path, identity):
    """`deblur batch` skipped JPEGs saved as .jfif (what browsers on Windows save), and others."""
    from tests.cli.test_hostile import _encoded, _u8

    folder = tmp_path / "downloads"
    folder.mkdir()
    made = {"a.jfif": "JPEG", "b.jpe": "JPEG", "c.JFIF": "JPEG", "d.tif": "TIFF", "e.dib": "BMP", "f.apng": "PNG"}
    for name, fmt in made.items():
        (folder / name).write_bytes(_encoded(_u8((16, 20, 3), 1), fmt))
    _phone_photo(folder / "g.heif", "HEIF")
    _phone_photo(folder / "h.hif", "HEIF")
    text = _ok(_run("batch", folder, "-o", tmp_path / "out", "--weights", identity))
    written = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert written == sorted([*made, "g.heif", "h.hif"]), text
    scored = _ok(_run("score", folder))
    assert "skipped" not in scored and scored.count("\n") >= len(made) + 2


def test_without_the_plugin_a_heic_is_named_for_what_it_lacks(tmp_path, identity, monkeypatch):
    from deblur_cli.files import formats

    src = tmp_path / "IMG_0002.heic"
    _phone_photo(src, "HEIF")
    monkeypatch.setattr(formats, "_enabled", tuple(n for n in formats.pillow_decoders() if n != "HEIF"))
    _refused(_run(src, "-o", tmp_path / "x.png", "--weights", identity), 3,
             "IMG_0002.heic is HEIF (HEIC), which deblur reads with the heif extra: pip install \".[heif]\"")
    jpg = tmp_path / "p.jpg"
    from tests.cli.test_hostile import _encoded, _u8

    jpg.write_bytes(_encoded(_u8((16, 20, 3)), "JPEG"))
    _refused(_run(jpg, "-o", tmp_path / "x.heic", "--weights", identity), 2, "deblur writes HEIF (HEIC) with the heif extra")
