"""The frame loop of `deblur video`: demux, decode, deblur, encode, mux; audio packets copied.

Knows PyAV and timestamps, not the CLI's options: :mod:`deblur_cli.tools.video` plans the job and
hands this module an opened input and output container. Timestamps: without a start time
every timestamp is kept as is (A/V sync, encoder priming, edit lists survive); with one, the
output starts at the first video frame kept, and audio packets are shifted by the same amount
(cut at packet boundaries, never re-encoded).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from deblur_cli.files.image_io import to_uint8  # the one float -> integer rule

#: Slack when comparing frame times with the requested piece (seconds): rounding of timestamps.
_EPS = 1e-6


@dataclass(frozen=True)
class Encoding:
    """The output video stream: FFmpeg encoder, its options, frame rate, size (frames smaller
    than it are padded by repeating their last column and row), display matrix, pixel format."""

    encoder: str
    options: dict[str, str]
    frame_rate: Fraction
    width: int
    height: int
    display_matrix: tuple[int, ...] | None
    pix_fmt: str = "yuv420p"


#: The pixel format every player plays: 4:2:0 (chroma at half resolution).
PIX_FMT = "yuv420p"
#: Encoders whose 4:2:0 needs even sides (no odd crop in their bitstream).
EVEN_SIDES = frozenset({"libx264", "libx265"})


def plan_encoding(
    av: Any, codec: str, encoder: str, options: dict[str, str], frame_rate: Fraction,
    size: tuple[int, int], display_matrix: tuple[int, ...] | None,
) -> tuple[Encoding, tuple[str, ...]]:
    """The encoding of a video of ``size``, checked by opening the encoder with it, and what
    was changed to make it playable (one phrase each). UsageError when ``codec`` cannot
    encode it at all (e.g. hevc below 16 px): known while planning, not after the run."""
    width, height = size
    notes: list[str] = []
    if encoder in EVEN_SIDES and (width % 2 or height % 2):
        out = (width + width % 2, height + height % 2)
        notes.append(
            f"its {width}x{height} frames are written as {out[0]}x{out[1]} (last column/row repeated): "
            f"{codec} in 4:2:0, the pixel format every player plays, needs even sides"
        )
        width, height = out
    encoding = Encoding(encoder, options, frame_rate, width, height, display_matrix, PIX_FMT)
    _probe(av, codec, encoding)
    return encoding, tuple(notes)


def _probe(av: Any, codec: str, enc: Encoding) -> None:
    """Open (and drop) the encoder with exactly these settings."""
    from deblur_cli.errors import UsageError

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise
    try:
        ctx = av.CodecContext.create(enc.encoder, "w")
        ctx.width, ctx.height, ctx.pix_fmt = enc.width, enc.height, enc.pix_fmt
        ctx.framerate = enc.frame_rate
        ctx.time_base = 1 / enc.frame_rate
        ctx.options = dict(enc.options)
        ctx.open()
    except Exception as e:  # noqa: BLE001 - any refusal of the encoder is the answer
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(
            f"{codec} cannot encode {enc.width}x{enc.height} {enc.pix_fmt} video ({reason}); try --codec vp9"
        ) from None


@dataclass
class Counts:
    """What the loop wrote: video frames, seconds of video, audio packets."""

    frames: int = 0
    seconds: float = 0.0
    audio_packets: int = 0


class Transcoder:
    """One pass over ``src`` into ``dst``; ``deblur`` maps a float32 H x W x 3 frame in [0, 1]."""

    def __init__(
        self, av: Any, src: Any, dst: Any, deblur: Callable[[np.ndarray], np.ndarray], encoding: Encoding,
        *, audio: bool, start: float | None, duration: float | None, on_frame: Callable[[int], None],
    ) -> None:
        self.av, self.src, self.dst, self.deblur, self.on_frame = av, src, dst, deblur, on_frame
        self.v_in = src.streams.video[0]
        self.a_in = src.streams.audio[0] if audio and src.streams.audio else None
        self.cut = start or 0.0
        self.end = self.cut + duration if duration is not None else None
        self.offset: float | None = 0.0 if not start else None  # output time 0, once known
        self.first = 0.0  # input time of the first frame written
        self.pending: list[Any] = []  # audio packets waiting for the offset
        self.v_done = False
        self.a_done = self.a_in is None
        self.counts = Counts()
        self.frame_s = float(1 / encoding.frame_rate)
        self.size = (encoding.width, encoding.height)
        self.v_out = self._video_stream(encoding)
        self.a_out = dst.add_stream_from_template(self.a_in) if self.a_in is not None else None

    def _video_stream(self, enc: Encoding) -> Any:
        for key, value in self.src.metadata.items():
            if key not in ("major_brand", "minor_version", "compatible_brands", "encoder", "duration"):
                self.dst.metadata[key] = value  # creation time, location, title...; not the muxer's own
        out = self.dst.add_stream(enc.encoder, rate=enc.frame_rate)
        out.width, out.height = enc.width, enc.height
        out.pix_fmt = enc.pix_fmt  # planned (plan_encoding): odd sides padded where 4:2:0 needs even ones
        out.time_base = out.codec_context.time_base = self.v_in.time_base  # frames keep their timestamps
        out.options = enc.options
        if self.v_in.language:
            out.metadata["language"] = self.v_in.language
        if enc.display_matrix is not None:  # must precede the header, i.e. any packet
            out.set_display_matrix(list(enc.display_matrix))
        return out

    def run(self) -> Counts:
        """Copy the requested piece; returns what was written (the encoder is flushed)."""
        if self.cut > 0:
            self.src.seek(int(self.cut / self.v_in.time_base), stream=self.v_in, backward=True, any_frame=False)
        streams = [self.v_in] + ([self.a_in] if self.a_in is not None else [])
        # demux ends with an empty packet per stream, whose decode() flushes held-back frames.
        for packet in self.src.demux(*streams):
            if packet.stream.type == "audio":
                self._audio(packet)
            elif not self.v_done:
                for frame in packet.decode():
                    if self._video(frame):
                        break
            if self.v_done and self.a_done:
                break
        if self.counts.frames:
            for out_packet in self.v_out.encode(None):
                self.dst.mux(out_packet)
        return self.counts

    def _audio(self, packet: Any) -> None:
        if self.a_done or packet.pts is None or packet.size == 0:
            return
        t = float(packet.pts * packet.time_base)
        if self.end is not None and t >= self.end:
            self.a_done = True
        elif t >= self.cut or self.offset == 0.0:
            if self.offset is None:
                self.pending.append(packet)  # until the first video frame fixes t = 0
            else:
                self._mux_audio(packet)

    def _video(self, frame: Any) -> bool:
        """Deblur and write one decoded frame if it lies in the piece; True once past its end."""
        t = frame.time
        if t is None or t < self.cut - _EPS:
            return False
        if self.end is not None and t >= self.end - _EPS:
            self.v_done = True
            return True
        if self.offset is None:
            self.offset = t
            for early in self.pending:
                self._mux_audio(early)
            self.pending.clear()
        if self.counts.frames == 0:
            self.first = t
        self._encode(frame, t)
        self.counts.frames += 1
        self.counts.seconds = t - self.first + self.frame_s
        self.on_frame(self.counts.frames)
        return False

    def _encode(self, frame: Any, t: float) -> None:
        rgb = frame.to_ndarray(format="rgb24")
        sharp = to_uint8(self.deblur(np.divide(rgb, 255.0, dtype=np.float32)))
        grow = (self.size[1] - sharp.shape[0], self.size[0] - sharp.shape[1])
        if any(grow):
            sharp = np.pad(sharp, ((0, grow[0]), (0, grow[1]), (0, 0)), mode="edge")
        out = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(sharp), format="rgb24")
        out.pts = int(round((t - (self.offset or 0.0)) / self.v_in.time_base))
        out.time_base = self.v_in.time_base
        for packet in self.v_out.encode(out):
            self.dst.mux(packet)

    def _mux_audio(self, packet: Any) -> None:
        shift = int(round((self.offset or 0.0) / packet.time_base))
        if shift:
            if packet.pts - shift < 0:
                return  # before the cut
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = self.a_out
        self.dst.mux(packet)
        self.counts.audio_packets += 1
