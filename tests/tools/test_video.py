"""`deblur video`: frames through the engine; timing, size, rotation and audio kept; atomic output."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deblur_cli.api import Deblurrer
from deblur_cli.cli import app
from deblur_cli.errors import EXIT_INPUT, EXIT_OUTPUT, EXIT_USAGE, InputError, OutputError, UsageError
from deblur_cli.network.model import AttentiveDeblurNet
from deblur_cli.tools import video
from deblur_cli.weights import save_weights
from tests.conftest import TINY

av = pytest.importorskip("av")
runner = CliRunner()

FRAMES, RATE, SIDE = 6, 25, (64, 48)  # 0.24 s at 25 frames/s, 64 x 48 px
SAMPLE_RATE = 16000


def make_clip(path: Path, rotation: int | None = 90, audio: bool = True, frames: int = FRAMES) -> Path:
    """A tiny H.264 clip with a moving bar, a display rotation and an AAC sine track."""
    w, h = SIDE
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=Fraction(RATE, 1))
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "10"}
        if rotation is not None:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            a = out.add_stream("aac", rate=SAMPLE_RATE)
            a.layout = "mono"
        out.metadata["title"] = "test clip"
        rng = np.random.default_rng(0)
        for i in range(frames):
            img = (rng.random((h, w, 3)) * 60).astype(np.uint8)
            img[:, (i * 8) % w : (i * 8) % w + 8] = 230
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            n = SAMPLE_RATE * frames // RATE
            for start in range(0, n, 1024):
                t = np.arange(start, start + 1024) / SAMPLE_RATE
                samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                af.sample_rate, af.pts = SAMPLE_RATE, start
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def first_frame_rotation(path: Path) -> int:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).rotation


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def deblurrer() -> Deblurrer:
    torch.manual_seed(0)
    return Deblurrer(model=AttentiveDeblurNet(TINY), device="cpu", precision="fp32")


def test_frames_go_through_the_engine_and_everything_is_kept(clip: Path, tmp_path: Path, deblurrer: Deblurrer) -> None:
    out = tmp_path / "out.mp4"
    seen: list[video.VideoProgress] = []
    plan = video.plan_video(clip, out, video.VideoOptions(crf=0, preset="ultrafast"))
    assert plan.expected_frames == FRAMES and plan.has_audio and plan.display_matrix is not None
    result = video.deblur_video(deblurrer, plan, progress=seen.append)
    assert result.frames == FRAMES and result.rotation == 90
    assert [p.done for p in seen] == list(range(FRAMES + 1))
    assert seen[-1].total == FRAMES and seen[-1].eta_s == 0 and seen[-1].frames_per_s > 0
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", *SIDE)
        assert v.average_rate == RATE
        assert c.metadata.get("title") == "test clip"
        decoded = [f for f in c.decode(video=0)]
    assert len(decoded) == FRAMES
    assert [round(f.time, 3) for f in decoded] == [round(i / RATE, 3) for i in range(FRAMES)]
    assert first_frame_rotation(out) == 90
    assert audio_packets(out) == audio_packets(clip)  # copied byte for byte, not re-encoded
    # The pixels are the engine's output for the decoded input frames (up to H.264 rounding at CRF 0).
    originals = list(video.frames(clip))
    expected = deblurrer.run(originals[2] / np.float32(255))
    got = decoded[2].to_ndarray(format="rgb24") / np.float32(255)
    assert np.abs(got - expected).mean() < 0.02
    assert np.abs(got - originals[2] / np.float32(255)).mean() > 2 * np.abs(got - expected).mean()


def test_start_and_duration_cut_video_and_audio(clip: Path, tmp_path: Path, deblurrer: Deblurrer) -> None:
    out = tmp_path / "piece.mp4"
    plan = video.plan_video(clip, out, video.VideoOptions(start=0.08, duration=0.1, preset="ultrafast"))
    result = video.deblur_video(deblurrer, plan)
    assert result.frames == 3  # frames at 0.08, 0.12, 0.16 s
    with av.open(str(out)) as c:
        times = [round(f.time, 3) for f in c.decode(video=0)]
    assert times == [0.0, 0.04, 0.08]
    cut = audio_packets(out)
    assert 0 < len(cut) < len(audio_packets(clip)) and all(p in audio_packets(clip) for p in cut)


def test_no_audio_and_a_clip_without_rotation(tmp_path: Path, deblurrer: Deblurrer) -> None:
    plain = make_clip(tmp_path / "plain.mkv", rotation=None, frames=2)
    out = tmp_path / "out.mkv"
    result = video.deblur_video(deblurrer, video.plan_video(plain, out, video.VideoOptions(audio=False, codec="vp9", crf=40)))
    assert result.frames == 2 and result.rotation is None
    with av.open(str(out)) as c:
        assert not c.streams.audio and c.streams.video[0].codec_context.name == "vp9"
    assert first_frame_rotation(out) == 0


def test_interrupt_leaves_no_file_under_the_final_name(clip: Path, tmp_path: Path, deblurrer: Deblurrer) -> None:
    out = tmp_path / "out.mp4"

    def stop_after_two(p: video.VideoProgress) -> None:
        if p.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.deblur_video(deblurrer, video.plan_video(clip, out), progress=stop_after_two)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (dict(codec="mpeg2"), UsageError),
        (dict(crf=52), UsageError),
        (dict(codec="vp9", crf=63, preset="fastest"), UsageError),
        (dict(start=-1.0), UsageError),
        (dict(duration=0.0), UsageError),
    ],
)
def test_bad_options(options: dict, error: type) -> None:
    with pytest.raises(error):
        video.VideoOptions(**options)


def test_plan_refuses_bad_inputs_and_outputs(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        video.plan_video(tmp_path / "missing.mp4", None)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError):
        video.plan_video(junk, tmp_path / "o.mp4")
    with pytest.raises(OutputError):
        video.plan_video(clip, clip, video.VideoOptions(overwrite=True))  # never the input
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError):
        video.plan_video(clip, existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(UsageError):
        video.plan_video(clip, tmp_path / "o.avi")
    with pytest.raises(UsageError):
        video.plan_video(clip, tmp_path / "o.webm")  # .webm takes vp9/av1 only
    with pytest.raises(UsageError):
        video.plan_video(clip, tmp_path / "o.webm", video.VideoOptions(codec="vp9"))  # AAC audio
    with pytest.raises(UsageError):
        video.plan_video(clip, tmp_path / "o.mp4", video.VideoOptions(start=5.0))  # past the end
    assert video.plan_video(clip, None).output == clip.with_name("clip_deblurred.mp4")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("1.5", 1.5), ("1:30", 90.0), ("0:01:30.5", 90.5), (None, None)]
)
def test_parse_time(text: str | None, seconds: float | None) -> None:
    assert video.parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1::2", "-3", "1:2:3:4", "nan"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        video.parse_time(text)


def test_missing_pyav_is_a_clear_usage_error(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    with pytest.raises(UsageError, match=r"pip install 'deblur-cli\[video\]'"):
        video.plan_video(clip, None)
    result = runner.invoke(app, ["video", str(clip)])
    assert result.exit_code == EXIT_USAGE and "deblur-cli[video]" in result.output


def test_video_command_end_to_end(clip: Path, tmp_path: Path) -> None:
    weights = tmp_path / "tiny.safetensors"
    torch.manual_seed(0)
    save_weights(AttentiveDeblurNet(TINY), weights)
    out = tmp_path / "sharp.mp4"
    args = ["video", str(clip), "-o", str(out), "--weights", str(weights), "--precision", "fp32", "--preset", "ultrafast"]
    result = runner.invoke(app, [*args, "--duration", "0.1"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "frames/s" in result.output
    assert len(list(video.frames(out))) == 3
    assert runner.invoke(app, args).exit_code == EXIT_OUTPUT  # exists
    assert runner.invoke(app, [*args, "--start", "x"]).exit_code == EXIT_USAGE
    assert runner.invoke(app, ["video", str(tmp_path / "none.mp4")]).exit_code == EXIT_INPUT


def test_display_matrix_is_read_from_both_side_data_shapes():
    """PyAV 18.1 made frame.side_data a Mapping (iterating gives types); 18.0 iterated the entries."""
    import struct
    from types import SimpleNamespace

    from deblur_cli.tools import video

    matrix = (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)

    class Entry(bytes):
        type = SimpleNamespace(name="DISPLAYMATRIX")

    entry = Entry(struct.pack("=9i", *matrix))
    other = SimpleNamespace(type=SimpleNamespace(name="SEI_UNREGISTERED"))
    as_mapping = SimpleNamespace(side_data={"SEI": other, "DISPLAYMATRIX": entry})
    as_list = SimpleNamespace(side_data=[other, entry])
    for frame in (as_mapping, as_list):
        assert [e for e in video._side_data_entries(frame) if e is entry] == [entry]
    assert video._side_data_entries(SimpleNamespace(side_data=None)) == []
