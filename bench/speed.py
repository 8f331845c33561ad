"""Inference speed and memory benchmark for deblur.

Prints one table: the network's FLOPs per megapixel, this machine's matmul
ceiling, seconds per megapixel for whole-image and tiled inference in each
precision (with the fraction of the ceiling reached), the effect of the
channels_last layout, the peak memory of a 24 MP photo on CPU (in a
subprocess, so the peak is its own) and the end-to-end time of the `deblur`
command on a 12 MP JPEG.

    python bench/speed.py                # full run (about 10 minutes on 2 cores)
    python bench/speed.py --quick        # small sizes, a few minutes
    python bench/speed.py --threads 2 --skip-24mp --skip-cli

Random weights are used unless --weights is given: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deblur_cli.methods import InferenceOptions  # noqa: E402
from deblur_cli.network import architectures  # noqa: E402
from deblur_cli.network.architectures import NetworkConfig  # noqa: E402
from deblur_cli.network.engine import DEFAULT_OVERLAP, Engine, cpu_has_native_bf16  # noqa: E402
from deblur_cli.tools.doctor import cpu_name  # noqa: E402

CONFIGS = {"default": architectures.preset("paper"), **architectures.presets()}  # "default": the paper's network
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Row:
    what: str
    value: str
    note: str = ""


# ---- measurements ----------------------------------------------------------------------------


def flops_per_mp(config: NetworkConfig, side: int = 256) -> float:
    """Forward FLOPs per megapixel, counted by torch's FlopCounterMode on a side x side input."""
    from torch.utils.flop_counter import FlopCounterMode

    model = architectures.build(config).eval()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.rand(1, 3, side, side))
    return counter.get_total_flops() / (side * side / 1e6)


def matmul_ceiling(precision: str, device: torch.device, n: int, reps: int = 5) -> float:
    """GFLOP/s of a large square torch.mm (best of ``reps``)."""
    a = torch.randn(n, n, device=device).to(_DTYPES[precision])
    b = torch.randn(n, n, device=device).to(_DTYPES[precision])
    best = float("inf")
    for i in range(reps + 1):
        _sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        if i:  # the first is a warm-up
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def time_forward(
    model: torch.nn.Module, side: int, precision: str, channels_last: bool, device: torch.device, reps: int
) -> float:
    """Seconds for one raw forward pass on a side x side input (no engine), for layout comparisons."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt).eval()
    x = torch.rand(1, 3, side, side, device=device).contiguous(memory_format=fmt)
    enabled = precision != "fp32"
    dtype = _DTYPES[precision] if enabled else None

    def fn() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=enabled):
            model(x)

    return _best_time(fn, device, reps)


def time_engine(
    model: torch.nn.Module, rgb: np.ndarray, opts: InferenceOptions, reps: int, warmup: int = 1
) -> tuple[float, int, np.ndarray]:
    """Seconds for Engine.run on ``rgb``, the number of tiles, and the output."""
    d = Engine(model, opts)
    tiles = [0]
    out: list[np.ndarray] = []

    def fn() -> None:
        out[:] = [d.run(rgb, progress=lambda done, total: tiles.__setitem__(0, total))]

    return _best_time(fn, d.device, reps, warmup), tiles[0], out[0]


def make_image(h: int, w: int, path: str | None = None) -> np.ndarray:
    """A float32 h x w x 3 image: the centre crop of ``path`` (a real photo) or random pixels."""
    if path is None:
        return np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        scale = max(h / im.height, w / im.width, 1.0)
        if scale > 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
        left, top = (im.width - w) // 2, (im.height - h) // 2
        im = im.crop((left, top, left + w, top + h))
    return np.asarray(im, dtype=np.float32) / 255.0


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (VmHWM), or ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


# ---- child processes -------------------------------------------------------------------------


def child_big(args: argparse.Namespace) -> None:
    """Deblur an args.height x args.width image on CPU; print time and peak memory as JSON."""
    torch.set_num_threads(args.threads)
    model = _model(args)
    opts = InferenceOptions(device="cpu", precision=args.precision)
    d = Engine(model, opts)
    tile = d.tile_size_for(args.height, args.width)
    # What image_io hands over: a float32 H x W x 3 array (the decoded uint8 is dropped by then).
    rgb = np.random.default_rng(0).random((args.height, args.width, 3), dtype=np.float32)
    tiles = [0]
    t0 = time.perf_counter()
    out = d.run(rgb, progress=lambda done, total: tiles.__setitem__(0, total))
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_bytes": peak_rss_bytes(),
                "tile": tile,
                "tiles": tiles[0],
                "precision": d.precision,
                "shape": list(out.shape),
            }
        )
    )


def child_memory(args: argparse.Namespace) -> None:
    """Peak activation bytes per pixel of one forward pass (VmHWM after minus before)."""
    torch.set_num_threads(args.threads)
    model = _model(args).eval().to(memory_format=torch.channels_last)
    side = args.height
    x = torch.rand(1, 3, side, side).contiguous(memory_format=torch.channels_last)
    enabled = args.precision != "fp32"
    dtype = _DTYPES[args.precision] if enabled else None
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=enabled):
        model(torch.rand(1, 3, 16, 16))
        before = peak_rss_bytes()
        model(x)
        after = peak_rss_bytes()
    print(json.dumps({"bytes_per_px": (after - before) / side**2, "delta_bytes": after - before}))


def _run_child(args: argparse.Namespace, mode: str, *extra: str) -> dict | str:
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--child-{mode}", "--threads", str(args.threads)]
    cmd += ["--config", args.config, *extra]
    if args.weights:
        cmd += ["--weights", args.weights]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"failed (exit {proc.returncode}): {_last_line(proc.stderr)}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


# ---- end to end ------------------------------------------------------------------------------


def cli_end_to_end(args: argparse.Namespace, height: int, width: int, precision: str) -> list[Row]:
    """Time `python -m deblur_cli image` on a JPEG; tolerant of a missing CLI or weights."""
    if not (ROOT / "deblur_cli" / "cli" / "__init__.py").is_file():
        return [Row("CLI end to end", "skipped", "deblur_cli/cli/ is not there yet")]
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="deblur-bench-") as tmp:
        src, dst = Path(tmp) / "photo.jpg", Path(tmp) / "sharp.jpg"
        rng = np.random.default_rng(0)
        small = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(small).resize((width, height), Image.BILINEAR).save(src, quality=90)
        rows = _decode_encode(src, Path(tmp) / "copy.jpg")
        weights = args.weights or _random_weights_file(args, Path(tmp))
        if weights is None:
            why = "no weights given and deblur_cli.weights.save_weights is missing"
            return rows + [Row("CLI end to end", "skipped", why)]
        cmd = [sys.executable, "-m", "deblur_cli", "image", str(src), "-o", str(dst)]
        cmd += ["--device", "cpu", "--precision", precision, "--threads", str(args.threads)]
        cmd += ["--weights", str(weights)]
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not dst.is_file():
            why = _last_line(proc.stderr) or _last_line(proc.stdout)
            return rows + [Row("CLI end to end", "failed", f"exit {proc.returncode}: {why}")]
    mp = height * width / 1e6
    rows.append(Row(f"CLI end to end, {width}x{height} JPEG, {precision}", f"{seconds:.1f} s",
                    f"{seconds / mp:.2f} s/MP incl. start-up, decode, encode"))
    return rows


def _decode_encode(src: Path, dst: Path) -> list[Row]:
    """Time image_io's load and save of the JPEG: the cost outside the network."""
    try:
        from deblur_cli.files import image_io
    except ImportError:
        return [Row("decode / encode", "skipped", "deblur_cli.files.image_io is not there yet")]
    t0 = time.perf_counter()
    loaded = image_io.load_image(src)
    t1 = time.perf_counter()
    image_io.save_image(loaded.rgb, dst, like=loaded)
    t2 = time.perf_counter()
    return [Row("JPEG decode + encode (image_io)", f"{t1 - t0:.2f} + {t2 - t1:.2f} s", src.name)]


def _random_weights_file(args: argparse.Namespace, folder: Path) -> Path | None:
    try:
        from deblur_cli.weights import save_weights
    except ImportError:
        return None
    path = folder / "random.safetensors"
    save_weights(_model(args), path)
    return path


# ---- main ------------------------------------------------------------------------------------


def _model(args: argparse.Namespace) -> torch.nn.Module:
    if args.weights:
        from deblur_cli.weights import load_model

        return load_model(args.weights)[0]
    torch.manual_seed(0)
    return architectures.build(CONFIGS[args.config])


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes (1.5 MP instead of 24 MP, etc.)")
    p.add_argument("--threads", type=int, default=_default_threads(), help="torch CPU threads (default: all)")
    p.add_argument("--config", choices=sorted(CONFIGS), default="default", help="model config (random weights)")
    p.add_argument("--weights", help="use these weights (NAME|PATH) instead of random ones")
    p.add_argument("--image", help="a real photo for the bf16-vs-fp32 PSNR row (centre crop)")
    p.add_argument("--skip-24mp", action="store_true", help="skip the large-photo memory run")
    p.add_argument("--skip-cli", action="store_true", help="skip the end-to-end CLI timing")
    p.add_argument("--skip-layout", action="store_true", help="skip the channels_last comparison")
    p.add_argument("--memory-model", action="store_true", help="also measure activation bytes per pixel")
    p.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--height", type=int, default=4000, help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, default=6000, help=argparse.SUPPRESS)
    p.add_argument("--child-big", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-memory", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child_big:
        return child_big(args)
    if args.child_memory:
        return child_memory(args)
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    bf16 = cpu_has_native_bf16()
    cpu_precisions = ["fp32", "bf16"]
    whole = 256 if args.quick else 512
    tiled_side, tile = (512, 256) if args.quick else (1024, 512)
    rows: list[Row] = []

    def emit(row: Row) -> None:
        rows.append(row)
        print(f"  {row.what:<46} {row.value:>14}  {row.note}", flush=True)

    print(f"deblur speed benchmark: {cpu_name()}, {args.threads} threads, torch {torch.__version__}, "
          f"config {args.config}{' (weights ' + args.weights + ')' if args.weights else ' (random weights)'}, "
          f"native bf16: {'yes' if bf16 else 'no'}")
    flops = flops_per_mp(CONFIGS[args.config] if not args.weights else _model(args).config)
    emit(Row("network FLOPs per megapixel", f"{flops / 1e12:.3f} TFLOP", "FlopCounterMode, 256x256 input, scaled"))
    n = 1024 if args.quick else 4096
    ceiling = {p: matmul_ceiling(p, cpu, n) for p in cpu_precisions}
    for p in cpu_precisions:
        floor = flops / ceiling[p] / 1e9
        emit(Row(f"CPU matmul ceiling {p}", f"{ceiling[p]:.0f} GFLOP/s", f"torch.mm {n}x{n}; floor {floor:.1f} s/MP"))

    model = _model(args)

    def speed_row(label: str, seconds: float, pixels: int, precision: str, note: str = "") -> None:
        s_mp = seconds / (pixels / 1e6)
        frac = flops / s_mp / 1e9 / ceiling[precision]
        emit(Row(label, f"{s_mp:.2f} s/MP", f"{frac:.0%} of {precision} ceiling {note}".rstrip()))

    outputs: dict[str, np.ndarray] = {}
    for p in cpu_precisions:
        opts = InferenceOptions(device="cpu", precision=p)
        t, _, out = time_engine(model, make_image(whole, whole, args.image), opts, reps=2)
        outputs[p] = out
        speed_row(f"CPU whole image {whole}x{whole} {p}", t, whole * whole, p)
    emit(Row("bf16 vs fp32 output PSNR", f"{_psnr(outputs['bf16'], outputs['fp32']):.1f} dB",
             f"{whole}x{whole} {'crop of ' + Path(args.image).name if args.image else 'random pixels'}, "
             f"{'given' if args.weights else 'random'} weights"))
    for p in cpu_precisions:
        opts = InferenceOptions(device="cpu", precision=p, tile=tile)
        t, tiles, _ = time_engine(model, make_image(tiled_side, tiled_side), opts, reps=1, warmup=0)
        overlap = DEFAULT_OVERLAP if opts.tile_overlap is None else opts.tile_overlap
        speed_row(f"CPU tiled {tiled_side}x{tiled_side}, tile {tile} {p}", t, tiled_side**2, p,
                  f"({tiles} tiles, overlap {overlap}; per output MP)")

    if not args.skip_layout:
        for p in cpu_precisions:
            for cl in (False, True):
                t = time_forward(architectures.build(model.config), whole, p, cl, cpu, reps=2)
                layout = "channels_last" if cl else "contiguous (NCHW)"
                speed_row(f"CPU forward {whole}x{whole} {p} {layout}", t, whole * whole, p)

    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        name = torch.cuda.get_device_name(gpu)
        for p in ("fp16", "bf16"):
            c = matmul_ceiling(p, gpu, 8192)
            emit(Row(f"CUDA matmul ceiling {p}", f"{c / 1e3:.0f} TFLOP/s", name))
            opts = InferenceOptions(device="cuda", precision=p)
            t, _, _ = time_engine(model, make_image(720, 1280), opts, reps=10, warmup=3)
            frac = flops * 0.9216 / t / 1e9 / c
            emit(Row(f"CUDA 1280x720 {p}", f"{t * 1e3:.1f} ms", f"{frac:.0%} of ceiling"))
            big = InferenceOptions(device="cuda", precision=p, tile=2048)
            t, tiles, _ = time_engine(model, make_image(4000, 6000), big, reps=1)
            emit(Row(f"CUDA tiled 6000x4000 tile 2048 {p}", f"{t / 24:.3f} s/MP", f"{tiles} tiles"))
        model.to("cpu")

    if not args.skip_24mp:
        h, w = (1024, 1536) if args.quick else (4000, 6000)
        res = _run_child(args, "big", "--height", str(h), "--width", str(w), "--precision", "auto")
        label = f"CPU {w}x{h} ({h * w / 1e6:.1f} MP) auto tiles"
        if isinstance(res, str):
            emit(Row(label, "failed", res))
        else:
            emit(Row(f"{label}, peak memory", f"{res['peak_bytes'] / 2**30:.2f} GiB",
                     f"VmHWM of its own process; {res['precision']}, tile {res['tile']}, {res['tiles']} tiles"))
            emit(Row(f"{label}, time", f"{res['seconds']:.0f} s", f"{res['seconds'] / (h * w / 1e6):.2f} s/MP"))

    if args.memory_model:
        for p in cpu_precisions:
            for side in (512, 1024):
                res = _run_child(args, "memory", "--height", str(side), "--precision", p)
                value = res if isinstance(res, str) else f"{res['bytes_per_px']:.0f} B/px"
                emit(Row(f"activation memory {side}x{side} {p}", value, "VmHWM delta of one forward pass"))

    if not args.skip_cli:
        h, w = (768, 1024) if args.quick else (3000, 4000)
        for row in cli_end_to_end(args, h, w, "auto"):
            emit(row)
    print("note: timings on a shared machine vary; figures are best-of-N wall-clock times.")


if __name__ == "__main__":
    main()
