"""`deblur video`: a video deblurred frame by frame through the same engine as photos.

Video I/O uses PyAV (the ``av`` package, an optional extra: ``pip install 'deblur-cli[video]'``),
whose wheels carry their own FFmpeg, so no system FFmpeg is needed. What is kept:

* resolution, frame timing (every frame's timestamp, so variable frame rate survives) and
  the frame rate the container declares;
* rotation: the display matrix (phones store portrait video as landscape frames plus a
  rotation) is copied as is; frames are deblurred as stored;
* the audio stream, copied packet by packet (not re-encoded); with ``--start/--duration``
  it is cut at packet boundaries (~20 ms);
* container metadata such as creation time and location, and the video stream's language.

Subtitle and data streams are not copied. Frames are converted to 8-bit RGB for the
network and back to the encoder's pixel format by FFmpeg's default converter, so 10-bit
and HDR video comes out 8-bit SDR-tagged. The output is written under a temporary name in
the output folder and renamed when complete: after Ctrl-C or a crash no half-written file
exists under the final name.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from deblur_cli.errors import InputError, OutputError, UsageError
from deblur_cli.files.fsutil import atomic_path, make_folder
from deblur_cli.tools.video_codec import Encoding, Transcoder, plan_encoding

#: Codec names users type -> FFmpeg encoders shipped in PyAV's wheels, with their CRF range.
CODECS: dict[str, tuple[str, int]] = {
    "h264": ("libx264", 51),
    "hevc": ("libx265", 51),
    "vp9": ("libvpx-vp9", 63),
    "av1": ("libsvtav1", 63),
}
#: Containers we write (by extension) and the codecs each accepts.
CONTAINERS: dict[str, frozenset[str]] = {
    ".mp4": frozenset({"h264", "hevc", "vp9", "av1"}),
    ".mov": frozenset({"h264", "hevc"}),
    ".mkv": frozenset({"h264", "hevc", "vp9", "av1"}),
    ".webm": frozenset({"vp9", "av1"}),
}
#: x264/x265 speed presets (slower = smaller file at the same quality).
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
INSTALL_HINT = "deblur video needs PyAV: pip install 'deblur-cli[video]' (or pip install av)"


class FrameDeblurrer(Protocol):
    """Anything that turns an H x W x 3 float32 RGB image in [0, 1] into a sharp one."""

    def run(self, rgb: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class VideoOptions:
    """How to encode. ``crf``: constant quality (lower = better, larger; 18 is visually
    lossless for H.264). ``start``/``duration`` in seconds (None: from the start / to the end).
    ``audio``: copy the audio stream."""

    codec: str = "h264"
    crf: int = 18
    preset: str | None = None  # h264/hevc only; None: medium
    start: float | None = None
    duration: float | None = None
    audio: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        codec = self.codec.strip().lower()
        object.__setattr__(self, "codec", {"h265": "hevc", "x264": "h264", "x265": "hevc"}.get(codec, codec))
        if self.codec not in CODECS:
            raise UsageError(f"unknown codec {self.codec!r}; use one of {', '.join(CODECS)}")
        top = CODECS[self.codec][1]
        if not 0 <= self.crf <= top:
            raise UsageError(f"--crf for {self.codec} must be 0..{top}, got {self.crf}")
        if self.preset is not None and self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}")
        if self.preset is not None and self.codec not in ("h264", "hevc"):
            raise UsageError(f"--preset sets the speed of the h264 and hevc encoders; {self.codec} has none, so leave it out")
        if self.start is not None and self.start < 0:
            raise UsageError(f"--start must be >= 0 seconds, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise UsageError(f"--duration must be > 0 seconds, got {self.duration}")


@dataclass(frozen=True)
class VideoProgress:
    """Progress of a video: ``done`` frames of about ``total`` (None: unknown), the average
    speed in frames per second so far, and the estimated seconds left (None: unknown)."""

    done: int
    total: int | None
    frames_per_s: float
    eta_s: float | None


@dataclass(frozen=True)
class VideoPlan:
    """A checked job: the input, where the output goes and how it is encoded."""

    input: Path
    output: Path
    options: VideoOptions
    width: int
    height: int
    frame_rate: Fraction
    expected_frames: int | None
    has_audio: bool
    display_matrix: tuple[int, ...] | None = None  # the input's rotation/flip matrix (9 ints)
    encoding: Encoding | None = None  # checked by opening the encoder (video_codec.plan_encoding)
    notes: tuple[str, ...] = ()  # what the encoding changed (e.g. odd sides padded), for the user


@dataclass
class VideoResult:
    """What was written: frames, seconds of video, and wall-clock seconds spent."""

    output: Path
    frames: int = 0
    seconds: float = 0.0
    wall_s: float = 0.0
    audio_packets: int = 0
    rotation: float | None = None  # degrees counter-clockwise, when the input had a display matrix


def import_av() -> Any:
    """The ``av`` module, or UsageError with the install command when PyAV is missing."""
    try:
        import av
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return av


def parse_time(text: str | None) -> float | None:
    """``"90"``, ``"1.5"``, ``"1:30"``, ``"0:01:30.5"`` -> seconds; UsageError otherwise."""
    if text is None:
        return None
    parts = text.strip().split(":")
    try:
        if len(parts) > 3 or any(p.strip() == "" for p in parts):
            raise ValueError
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + float(p)
    except ValueError:
        raise UsageError(f"cannot read the time {text!r}; use seconds (90, 1.5) or [HH:]MM:SS") from None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        raise UsageError(f"cannot read the time {text!r}; use seconds (90, 1.5) or [HH:]MM:SS")
    return seconds


def default_video_output(input_path: Path) -> Path:
    """``clip.mov`` -> ``clip_deblurred.mov``; inputs we cannot write (e.g. .avi) get .mp4."""
    input_path = Path(input_path)
    ext = input_path.suffix.lower() if input_path.suffix.lower() in CONTAINERS else ".mp4"
    return input_path.with_name(f"{input_path.stem}_deblurred{ext}")


# ----------------------------------------------------------------------------- planning


def plan_video(input_path: Path, output_path: Path | None, options: VideoOptions = VideoOptions()) -> VideoPlan:
    """Check everything before any weights are loaded: PyAV present, input readable and a
    video, output allowed (never the input, never an existing file without ``overwrite``,
    a container that takes the codec), and the requested piece inside the video."""
    from deblur_cli.files.paths import FileSet, check_default_output_place, check_output_file

    av = import_av()
    input_path = Path(input_path)
    if not input_path.exists():
        raise InputError(f"input not found: {input_path}")
    if input_path.is_dir():
        raise InputError(f"input is a folder, not a video: {input_path}")
    if output_path is None:
        check_default_output_place(input_path)
    output = Path(output_path) if output_path is not None else default_video_output(input_path)
    if output.is_dir():
        output = output / default_video_output(input_path).name
    ext = output.suffix.lower()
    if ext not in CONTAINERS:
        raise UsageError(f"cannot write '{output.suffix}' video ({output}); use one of {', '.join(CONTAINERS)}")
    if options.codec not in CONTAINERS[ext]:
        raise UsageError(f"{ext} files cannot hold {options.codec} video; use {', '.join(sorted(CONTAINERS[ext]))}")
    check_output_file(output, FileSet([input_path]), options.overwrite, create_folder=True)  # made when written
    with _open_input(av, input_path) as container:
        stream = _video_stream(container, input_path)
        if _is_still_image(container, stream):
            raise InputError(f"{input_path} is a still image, not a video; deblur photos with 'deblur image'")
        ctx = stream.codec_context
        rate = _frame_rate(stream)
        length = _length_s(container, stream)
        if options.start is not None and length is not None and options.start >= length:
            raise UsageError(f"--start {options.start:g} s is past the end of {input_path.name} ({length:.2f} s)")
        has_audio = options.audio and bool(container.streams.audio)
        if has_audio and ext == ".webm" and container.streams.audio[0].codec_context.name not in ("opus", "vorbis"):
            name = container.streams.audio[0].codec_context.name
            raise UsageError(f".webm cannot hold the {name} audio of {input_path.name}; use .mkv or .mp4, or --no-audio")
        matrix = _display_matrix(container, input_path)
        size = (int(ctx.width), int(ctx.height))
        encoding, notes = plan_encoding(av, options.codec, CODECS[options.codec][0], _encoder_options(options), rate, size, matrix)
        return VideoPlan(
            input_path, output, options, size[0], size[1], rate,
            _expected_frames(stream, rate, length, options), has_audio, matrix, encoding, notes,
        )


def _display_matrix(container: Any, path: Path) -> tuple[int, ...] | None:
    """The display matrix of the first frame (FFmpeg attaches the stream's to every frame)."""
    try:
        frame = next(container.decode(video=0), None)
    except Exception as e:  # noqa: BLE001 - any decoder failure means an unusable input
        raise InputError(f"cannot decode video {path}: {_one_line(e)}") from None
    if frame is None:
        raise InputError(f"{path}: the video stream has no frames")
    for sd in _side_data_entries(frame):
        if getattr(getattr(sd, "type", None), "name", "") == "DISPLAYMATRIX" and len(bytes(sd)) >= 36:
            return tuple(struct.unpack("=9i", bytes(sd)[:36]))  # native byte order, as FFmpeg stores it
    return None


def _side_data_entries(frame: Any) -> list[Any]:
    """A frame's side-data entries. PyAV 18.1 made ``frame.side_data`` a Mapping (iterating it
    gives the types, its values the entries); earlier releases iterate the entries directly."""
    side = getattr(frame, "side_data", None)
    if side is None:
        return []
    return list(side.values()) if isinstance(side, Mapping) else list(side)


def _open_input(av: Any, path: Path) -> Any:
    """``av.open`` for reading, with decoding errors as InputError."""
    try:
        return av.open(str(path), "r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read video {path}: {_one_line(e)}") from None


def _video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        raise InputError(f"{path} has no video stream")
    stream = container.streams.video[0]
    if not stream.codec_context.width or not stream.codec_context.height:
        raise InputError(f"{path}: the video stream has no frame size")
    return stream


def _is_still_image(container: Any, stream: Any) -> bool:
    """True for a photo: FFmpeg reads one through its image demuxers (``image2``, ``png_pipe``,
    ``jpeg_pipe``, ...) as a one-frame "video", whatever the file's name; a GIF is a still
    image when it holds one frame (an animated GIF is a video)."""
    name = str(container.format.name)
    if name == "image2" or name.endswith("_pipe"):
        return True
    return name == "gif" and stream.frames == 1


def _frame_rate(stream: Any) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(30, 1)


def _length_s(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _expected_frames(stream: Any, rate: Fraction, length: float | None, options: VideoOptions) -> int | None:
    if length is None:
        return stream.frames or None
    span = length - (options.start or 0.0)
    if options.duration is not None:
        span = min(span, options.duration)
    if options.start is None and options.duration is None and stream.frames:
        return int(stream.frames)
    return max(1, math.ceil(span * float(rate) - 1e-6))


# ----------------------------------------------------------------------------- running


def deblur_video(
    deblurrer: FrameDeblurrer,
    plan: VideoPlan,
    progress: Callable[[VideoProgress], None] | None = None,
) -> VideoResult:
    """Deblur ``plan.input`` frame by frame into ``plan.output`` (atomically).

    ``progress`` gets a :class:`VideoProgress` before the first frame and after each one.
    KeyboardInterrupt (and any error) removes the temporary file; the final name is only
    ever a complete video.
    """
    av = import_av()
    opts = plan.options
    encoding = plan.encoding or Encoding(
        CODECS[opts.codec][0], _encoder_options(opts), plan.frame_rate, plan.width, plan.height, plan.display_matrix
    )
    started = time.perf_counter()
    report = _Reporter(plan.expected_frames, progress, started)
    report(0)
    try:
        make_folder(plan.output.parent)
        with atomic_path(plan.output, overwrite=opts.overwrite) as tmp, _open_input(av, plan.input) as src, av.open(str(tmp), "w") as dst:
            counts = Transcoder(
                av, src, dst, deblurrer.run, encoding,
                audio=plan.has_audio, start=opts.start, duration=opts.duration, on_frame=report,
            ).run()
            if counts.frames == 0:
                raise InputError(f"{plan.input}: no video frames in the requested piece")
    except av.error.FFmpegError as e:
        hint = "; if the audio does not fit this container, try .mkv or --no-audio" if plan.has_audio else ""
        raise OutputError(f"cannot write video {plan.output}: {_one_line(e)}{hint}") from None
    except OSError as e:
        raise OutputError(f"cannot write video {plan.output}: {e.strerror or e}") from None
    rotation = _rotation(plan.display_matrix) if plan.display_matrix is not None else None
    return VideoResult(plan.output, counts.frames, counts.seconds, time.perf_counter() - started, counts.audio_packets, rotation)


def _encoder_options(opts: VideoOptions) -> dict[str, str]:
    """FFmpeg encoder options for constant-quality encoding at ``opts.crf``."""
    options = {"crf": str(opts.crf)}
    if opts.codec in ("h264", "hevc"):
        options["preset"] = opts.preset or "medium"
    if opts.codec == "hevc":
        options["x265-params"] = "log-level=error"
    if opts.codec == "vp9":
        options["b"] = "0"  # constant quality mode
    return options


def _rotation(matrix: tuple[int, ...]) -> float:
    """Counter-clockwise degrees of a display matrix (as FFmpeg's av_display_rotation_get)."""
    a, b = matrix[0] / 65536, matrix[1] / 65536
    return -math.degrees(math.atan2(b, a)) if (a or b) else 0.0


class _Reporter:
    """Turns frame counts into VideoProgress (speed and ETA over the frames done so far)."""

    def __init__(self, total: int | None, progress: Callable[[VideoProgress], None] | None, started: float) -> None:
        self.total = total
        self.progress = progress
        self.started = started

    def __call__(self, done: int) -> None:
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self.started
        fps = done / elapsed if done and elapsed > 0 else 0.0
        total = max(self.total, done) if self.total is not None else None
        eta = (total - done) / fps if total is not None and fps > 0 else None
        self.progress(VideoProgress(done, total, fps, eta))


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def frames(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video as uint8 ``H x W x 3`` RGB arrays (for tests and checks)."""
    av = import_av()
    with _open_input(av, Path(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")
