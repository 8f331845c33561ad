"""Is onnxruntime faster than torch on this CPU? Seconds per megapixel of both on the same graph.

    python bench/onnx_speed.py [--weights lite] [--size 512] [--threads 2] [--repeats 3]

Exports the weights with ``deblur_cli.tools.onnx_export`` (checked against torch), then times, on
one ``size x size`` image, the engine (``deblur_cli.network.engine.Engine``, fp32, one pass, as
``deblur`` runs it) and an onnxruntime CPU session of the exported graph, with the same number
of threads, alternating the two and keeping the best of ``--repeats`` runs each (a machine
shared with other jobs makes every figure pessimistic; alternating makes them comparable).
CPU seconds (all threads of this process) are printed too: they suffer less from other jobs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deblur_cli.methods import InferenceOptions
from deblur_cli.network.engine import Engine
from deblur_cli.quality.metrics import psnr
from deblur_cli.tools.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx, require, sample_image
from deblur_cli.weights import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ort = require("onnxruntime")
    torch.set_num_threads(args.threads)
    model, info = load_model(args.weights)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        t0 = time.perf_counter()
        exported = export_onnx(model, path)
        print(f"exported {info.source} (opset {exported.opset}) in {time.perf_counter() - t0:.1f} s; "
              f"check {exported.check_psnr_db:.1f} dB")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        engine = Engine(model, InferenceOptions(device="cpu", precision="fp32"))
        rgb = sample_image(args.size, args.size, seed=1)
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
        mp = args.size * args.size / 1e6
        times: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
        cpu: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
        out_t = engine.run(rgb)  # warm-up both
        out_o = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0][0].transpose(1, 2, 0)
        for _ in range(args.repeats):
            for name, run in (("torch", lambda: engine.run(rgb)), ("onnxruntime", lambda: session.run([OUTPUT_NAME], {INPUT_NAME: x}))):
                t, c = time.perf_counter(), time.process_time()
                run()
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    print(f"{args.size}x{args.size}, {args.threads} threads, fp32, best of {args.repeats}; outputs agree to {psnr(out_o, out_t):.1f} dB")
    for name, ts in times.items():
        print(f"  {name:12s} {min(ts) / mp:6.2f} s/MP wall, {min(cpu[name]) / mp:6.2f} CPU-s/MP  (runs: {', '.join(f'{t:.2f}' for t in ts)} s)")
    ratio = min(times["torch"]) / min(times["onnxruntime"])
    print(f"  onnxruntime is {ratio:.2f}x the speed of torch")


if __name__ == "__main__":
    main()
