"""`deblur weights export-onnx`: the network as an ONNX file for deployment, checked with onnxruntime.

The graph (ONNX opset :data:`OPSET`) takes ``blurry``, float32 ``1 x 3 x H x W`` RGB in [0, 1],
any height and width of at least 16 px (both dynamic), and returns ``sharp``, the same shape,
clipped to [0, 1]: the reflect-padding to the network's size multiple, the finest scale's
output and the crop back are inside the graph, exactly as the engine does them for an image
that fits in one pass. Tiling of very large images is not in the graph (run tiles yourself).

The export uses torch's TorchScript-based exporter: it works on every torch the package
accepts (2.1 and newer) and needs no onnxscript; the newer torch.export-based exporter gave
the same graph quality here but took 3 to 10 times longer to export the same network.
Every export is checked before it is renamed onto its final name: onnxruntime runs it on a
test image and its output must match the engine's (torch, fp32) to :data:`MIN_PSNR_DB` or more.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur_cli.errors import OutputError, UsageError
from deblur_cli.files.fsutil import atomic_path, make_folder

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

#: ONNX operator set of the exported graph (onnxruntime 1.14 and newer run it).
OPSET = 17
INPUT_NAME = "blurry"
OUTPUT_NAME = "sharp"
#: The smallest side the graph accepts: reflect padding needs the pad (< 16) below the side.
MIN_SIDE = 16
#: The export is refused unless onnxruntime's output matches torch's to this PSNR.
MIN_PSNR_DB = 50.0
INSTALL_HINT = "ONNX export needs onnx and onnxruntime: pip install 'deblur-cli[onnx]'"


@dataclass(frozen=True)
class OnnxExport:
    """What was written: the file, its opset, and the check (PSNR in dB of onnxruntime vs torch)."""

    path: Path
    opset: int
    check_psnr_db: float | None  # None when the check was skipped
    check_size: tuple[int, int]  # (height, width) of the test image


def require(module: str) -> Any:
    """Import ``onnx`` or ``onnxruntime``, or UsageError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(INSTALL_HINT) from None


def check_onnx_output(path: Path, overwrite: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Before any work: the output ends in .onnx and may be written (paths' one rule set)."""
    from deblur_cli.files.paths import FileSet, check_output_file

    if Path(path).suffix.lower() != ".onnx":
        raise UsageError(f"the ONNX file name must end in .onnx: {path}")
    check_output_file(Path(path), FileSet(inputs), overwrite, create_folder=True)  # made by export_onnx


def _graph_module(model: nn.Module) -> Any:
    """The network wrapped as the exported graph: pad, run, take the finest scale, crop, clip."""
    import torch
    import torch.nn.functional as F

    from deblur_cli.network import architectures

    class WholeImage(torch.nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.multiple = architectures.config_of(net).size_multiple

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, w = x.shape[-2], x.shape[-1]
            ph = (self.multiple - h % self.multiple) % self.multiple
            pw = (self.multiple - w % self.multiple) % self.multiple
            padded = F.pad(x, (0, pw, 0, ph), mode="reflect")  # as the engine pads its tiles
            return self.net(padded)[-1][:, :, :h, :w].clamp(0.0, 1.0)

    return WholeImage(model).eval()


def sample_image(height: int = 88, width: int = 120, seed: int = 0) -> np.ndarray:
    """A deterministic float32 ``H x W x 3`` test image: smooth shapes, edges and fine texture.

    Sides that are not multiples of 16 exercise the padding inside the graph.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(x / (7 + 3 * c) + y / (11 - 2 * c)) for c in range(3)], axis=2)
    for _ in range(12):
        y0, x0 = rng.integers(0, height - 8), rng.integers(0, width - 8)
        img[y0 : y0 + rng.integers(4, 24), x0 : x0 + rng.integers(4, 24)] = rng.random(3)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def export_onnx(
    model: nn.Module, path: Path, *, overwrite: bool = False, check: bool = True
) -> OnnxExport:
    """Write ``model`` as an ONNX graph to ``path`` (atomically) and check it with onnxruntime.

    UsageError when onnx (or, with ``check``, onnxruntime) is missing; OutputError when the
    path may not be written or the check fails (then nothing is left under ``path``).
    """
    import torch

    require("onnx")
    if check:
        require("onnxruntime")
    check_onnx_output(path, overwrite)
    path = Path(path)
    graph = _graph_module(model.float().eval())
    sample = torch.from_numpy(sample_image(48, 64)).permute(2, 0, 1).unsqueeze(0).contiguous()
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:  # torch >= 2.5 has both exporters
        kwargs["dynamo"] = False
    psnr = None
    size = (88, 120)
    make_folder(path.parent)  # a missing folder of the output (the plan checked it can be made)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with warnings.catch_warnings():
            # The size-multiple check in forward() is traced as a constant: padding guarantees it.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph, (sample,), str(tmp), opset_version=OPSET, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], do_constant_folding=True,
                dynamic_axes={INPUT_NAME: {2: "height", 3: "width"}, OUTPUT_NAME: {2: "height", 3: "width"}},
                **kwargs,
            )
        if check:
            psnr = compare_with_torch(model, tmp, sample_image(*size))
            if psnr < MIN_PSNR_DB:
                raise OutputError(
                    f"the ONNX graph's output differs from torch's ({psnr:.1f} dB < {MIN_PSNR_DB:g} dB); not written"
                )
    return OnnxExport(path, OPSET, psnr, size)


def run_onnx(path: Path, rgb: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Run an exported graph with onnxruntime on a float32 ``H x W x 3`` image in [0, 1]."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
    (y,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    return np.ascontiguousarray(y[0].transpose(1, 2, 0))


def compare_with_torch(model: nn.Module, onnx_path: Path, rgb: np.ndarray) -> float:
    """PSNR (dB) between onnxruntime's output and the engine's (torch, fp32, one pass) on ``rgb``."""
    from deblur_cli.methods import InferenceOptions
    from deblur_cli.network.engine import Engine
    from deblur_cli.quality.metrics import psnr

    reference = Engine(model, InferenceOptions(device="cpu", precision="fp32")).run(rgb)
    got = run_onnx(onnx_path, rgb)
    if got.shape != reference.shape:
        raise OutputError(f"the ONNX graph returned shape {got.shape}, expected {reference.shape}")
    if np.array_equal(got, reference):
        return float("inf")
    return float(psnr(got, reference))
