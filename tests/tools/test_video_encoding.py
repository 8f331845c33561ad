"""Issue 21, item 12: codec, size and pixel format are settled while planning.

Odd sizes failed after the whole run with av1 (``avcodec_open2 ... returned 22``) and came
out as yuv444p H.264 that many players cannot play. Now the plan opens the encoder with the
exact settings; every output is 4:2:0, odd sides are padded where the codec needs even ones,
and the note says so.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from deblur_cli.errors import UsageError
from deblur_cli.tools import video

av = pytest.importorskip("av")


class Invert:
    def run(self, rgb, progress=None):
        return (1.0 - rgb).astype(np.float32)


def odd_clip(path: Path, size: tuple[int, int] = (161, 97), frames: int = 3) -> Path:
    """A tiny VP9 clip of an odd size (VP9 takes odd sides in 4:2:0)."""
    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libvpx-vp9", rate=Fraction(10, 1))
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        rng = np.random.default_rng(0)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray((rng.random((h, w, 3)) * 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    return path


def _stream(path: Path) -> tuple[str, int, int, str]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.name, s.codec_context.width, s.codec_context.height, s.codec_context.pix_fmt


@pytest.mark.parametrize(
    "codec, suffix, size, changed",
    [
        ("av1", ".mkv", (161, 97), False),
        ("vp9", ".webm", (161, 97), False),
        ("h264", ".mp4", (162, 98), True),
        ("hevc", ".mkv", (162, 98), True),
    ],
)
def test_odd_sizes_are_planned_for_each_codec(tmp_path, codec, suffix, size, changed):
    src = odd_clip(tmp_path / "odd.mkv")
    plan = video.plan_video(src, tmp_path / f"o{suffix}", video.VideoOptions(codec=codec, preset="ultrafast" if codec in ("h264", "hevc") else None, crf=30))
    assert plan.encoding is not None and plan.encoding.pix_fmt == "yuv420p"
    assert (plan.encoding.width, plan.encoding.height) == size
    assert bool(plan.notes) == changed
    if changed:
        assert "161x97 frames are written as 162x98" in plan.notes[0]
    result = video.deblur_video(Invert(), plan)
    assert result.frames == 3
    name, w, h, pix = _stream(result.output)
    assert (w, h, pix) == (*size, "yuv420p")
    if changed:  # the added column and row repeat the last ones
        first = next(video.frames(result.output)).astype(int)
        assert np.abs(first[:, -1] - first[:, -2]).mean() < 12 and np.abs(first[-1] - first[-2]).mean() < 12


def test_a_size_a_codec_cannot_encode_is_refused_while_planning(tmp_path):
    src = odd_clip(tmp_path / "tiny.mkv", size=(8, 8), frames=1)
    with pytest.raises(UsageError, match="hevc cannot encode 8x8 yuv420p video"):
        video.plan_video(src, tmp_path / "o.mkv", video.VideoOptions(codec="hevc"))
    assert not (tmp_path / "o.mkv").exists()
