"""What a user pastes into a bug report: versions, devices, threads, weights and cache.

:func:`gather` collects it into a frozen :class:`Report` without printing, downloading or
building a network; :meth:`Report.rows` gives it as (label, value) text lines. It never
raises for a broken installation (no torch, a corrupt registry, a missing weights file):
the problem becomes the value of its row, because that is what the report is for.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from deblur_cli import __version__
from deblur_cli.errors import redact

if TYPE_CHECKING:  # the weights package imports torch; the report must work without it
    from deblur_cli.weights import WeightsEntry

#: Distribution whose version the report shows, and the libraries a bug usually depends on.
DISTRIBUTION = "deblur-cli"
LIBRARIES = ("typer", "rich", "numpy", "pillow", "pillow-heif", "safetensors", "platformdirs", "requests")
#: Environment variables that change what deblur does; shown when set.
ENVIRONMENT = (
    "DEBLUR_CACHE_DIR", "DEBLUR_MAX_PIXELS", "DEBLUR_DEBUG", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
)


@dataclass(frozen=True)
class Device:
    """One compute device torch can use."""

    name: str  # "cpu", "cuda:0", ...
    description: str  # CPU model or GPU name, with memory for GPUs
    bf16: bool  # bf16 runs natively (CPU: AVX512-BF16/AMX-BF16; GPU: torch says it is supported)


@dataclass(frozen=True)
class WeightsCheck:
    """The weights a plain `deblur photo.jpg` (or ``--weights SPEC``) would load, checked."""

    spec: str | None  # the registered name, path or URL; None when nothing is registered
    path: Path | None  # the local file; None when there is none (not downloaded, missing)
    sha256: str | None  # the file's actual sha256; None when it could not be read
    expected: str | None  # the registry's sha256; None for unregistered files
    ok: bool  # the file exists, is readable and (when registered) matches its sha256
    message: str  # one line: what was found

    @property
    def status(self) -> str:
        return "ok" if self.ok else "FAILED"


@dataclass(frozen=True)
class Report:
    """Everything :func:`gather` found. Strings are for people; fields are stable for tests."""

    version: str  # deblur_cli.__version__
    installed_version: str | None  # the distribution's metadata version; None if not installed
    python: str  # e.g. "3.11.7 (CPython, /usr/bin/python3)"
    platform: str  # e.g. "Linux-6.1-x86_64-with-glibc2.36"
    torch: str  # torch version, or why it cannot be imported
    torch_ok: bool
    cuda: str | None  # CUDA version torch was built with; None for CPU-only builds
    devices: tuple[Device, ...]
    auto_device: str | None  # what --device auto picks; None without torch
    auto_precision: str | None  # what --precision auto picks there; None without torch
    cpu_bf16: bool  # the CPU has native bf16 (what makes --precision auto pick bf16 on CPU)
    threads: int | None  # torch's intra-op threads (--threads overrides); None without torch
    cpu_count: int | None  # logical CPUs the OS reports
    weights: WeightsCheck
    cache_dir: Path | None  # where downloaded weights go ($DEBLUR_CACHE_DIR overrides)
    libraries: tuple[tuple[str, str], ...]  # (name, version or "not installed")
    environment: tuple[tuple[str, str], ...]  # the ENVIRONMENT variables that are set
    image_formats: tuple[tuple[str, str], ...] = ()  # (label, "" when read here, else what to install)

    @property
    def ok(self) -> bool:
        """No problem found: torch imports and the weights pass their check."""
        return self.torch_ok and self.weights.ok

    def rows(self) -> list[tuple[str, str]]:
        """The report as (label, value) lines, in the order a reader wants them."""
        installed = self.installed_version
        version = self.version if installed in (None, self.version) else f"{self.version} (metadata says {installed})"
        rows = [
            ("deblur", f"{version} ({DISTRIBUTION}{'' if installed else ', not installed: source checkout'})"),
            ("python", self.python),
            ("platform", self.platform),
            ("torch", self.torch + (f", CUDA {self.cuda}" if self.cuda else "")),
        ]
        for device in self.devices:
            bf16 = "bf16 native" if device.bf16 else "no native bf16 (auto precision: fp32)"
            if device.name != "cpu":
                bf16 = "bf16 supported" if device.bf16 else "no bf16"
            rows.append((f"device {device.name}", f"{device.description}; {bf16}"))
        if self.auto_device is not None:
            rows.append(("auto picks", f"--device {self.auto_device} --precision {self.auto_precision}"))
        if not self.devices:  # without torch there is no cpu device row to say it
            rows.append(("cpu bf16", "native (AVX512-BF16 or AMX-BF16)" if self.cpu_bf16 else "not native"))
        threads = "unknown (no torch)" if self.threads is None else str(self.threads)
        rows.append(("threads", f"{threads} torch threads, {self.cpu_count or '?'} logical CPUs"))
        w = self.weights
        rows.append(("weights", f"{w.spec or 'none'}: {w.status}, {w.message}"))
        if w.path is not None:
            rows.append(("weights file", str(w.path)))
        if w.sha256 is not None:
            rows.append(("sha256", w.sha256 + ("" if w.expected in (None, w.sha256) else f" (expected {w.expected})")))
        rows.append(("cache", str(self.cache_dir) if self.cache_dir else "unknown"))
        rows.append(("libraries", ", ".join(f"{name} {v}" for name, v in self.libraries)))
        if self.image_formats:
            usable = ", ".join(label for label, missing in self.image_formats if not missing)
            lacking = "; ".join(f"{label} needs {missing}" for label, missing in self.image_formats if missing)
            rows.append(("image formats", usable + (f" (not here: {lacking})" if lacking else "")))
        if self.environment:
            rows.append(("environment", ", ".join(f"{k}={v}" for k, v in self.environment)))
        return [(label, redact(value)) for label, value in rows]  # pasted into bug reports: no URL credentials


def gather(weights: str | None = None) -> Report:
    """Collect the report. ``weights``: a registered name, file path or URL (None: the default).

    Reads files and asks torch about devices; never downloads, never builds a network.
    """
    torch_text, torch_ok, cuda, threads = _torch_summary()
    cpu_bf16 = _cpu_bf16()
    devices: tuple[Device, ...] = ()
    auto_device = auto_precision = None
    if torch_ok:
        devices = _devices(cpu_bf16)
        auto_device, auto_precision = _auto_choice()
    return Report(
        version=__version__,
        installed_version=_version_of(DISTRIBUTION),
        python=f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})",
        platform=platform.platform(),
        torch=torch_text,
        torch_ok=torch_ok,
        cuda=cuda,
        devices=devices,
        auto_device=auto_device,
        auto_precision=auto_precision,
        cpu_bf16=cpu_bf16,
        threads=threads,
        cpu_count=os.cpu_count(),
        weights=check_weights(weights) if torch_ok else _no_torch_weights(weights),
        cache_dir=_cache_dir(),
        libraries=tuple((name, _version_of(name) or "not installed") for name in LIBRARIES),
        environment=tuple((k, os.environ[k]) for k in ENVIRONMENT if k in os.environ),
        image_formats=_image_formats(),
    )


def _image_formats() -> tuple[tuple[str, str], ...]:
    """Each image format deblur knows, with what it lacks here ("" when it reads it)."""
    from deblur_cli.files import formats

    return tuple((f.label, "" if formats.available(f) else f.missing) for f in formats.FORMATS if f.read)


def check_weights(spec: str | None = None) -> WeightsCheck:
    """Find the weights ``spec`` names (None: the default registered ones) and check their sha256.

    A registered file is compared with the registry; a plain file or an already downloaded
    URL only gets its sha256 shown. A URL is never downloaded here.
    """
    from deblur_cli.errors import DeblurError
    from deblur_cli.weights.formats import sha256_file
    from deblur_cli.weights.registry import read_registry

    try:
        default, entries = read_registry()
    except DeblurError as e:
        return WeightsCheck(spec, None, None, None, False, e.message)
    spec = default if spec is None else spec
    if spec is None:
        return WeightsCheck(None, None, None, None, False, "no weights are registered; pass --weights")
    entry = next((e for e in entries if e.name == spec), None)
    expected = entry.sha256 if entry is not None else None
    path = _local_file(spec, entry)
    if path is None:
        missing = "not downloaded yet (`deblur weights download`)" if _remote(spec, entry) else "file not found"
        return WeightsCheck(spec, None, None, expected, _remote(spec, entry), missing)
    try:
        actual = sha256_file(path)
    except DeblurError as e:
        return WeightsCheck(spec, path, None, expected, False, e.message)
    if expected is None:
        try:  # no sha256 to compare: at least the architecture must be readable and sane
            from deblur_cli.weights.formats import read_config

            read_config(path)
        except DeblurError as e:
            return WeightsCheck(spec, path, actual, None, False, e.message)
        return WeightsCheck(spec, path, actual, None, True, "not registered, so there is no sha256 to compare")
    if actual != expected:
        return WeightsCheck(spec, path, actual, expected, False, "sha256 does not match the registry: corrupt or tampered with")
    return WeightsCheck(spec, path, actual, expected, True, "sha256 matches the registry")


def _local_file(spec: str, entry: WeightsEntry | None) -> Path | None:
    """The file the weights would load from, without downloading; None when there is none."""
    from deblur_cli.weights.download import cached_download
    from deblur_cli.weights.registry import locate

    if entry is not None:
        return locate(entry, fetch=False)
    if "://" in spec:
        cached = cached_download(spec)
        return cached if cached.is_file() else None
    path = Path(spec).expanduser()
    return path if path.is_file() else None


def _remote(spec: str, entry: WeightsEntry | None) -> bool:
    """True when a missing local file is normal: it is fetched on first use."""
    return ("://" in spec) if entry is None else bool(entry.url)


def _no_torch_weights(spec: str | None) -> WeightsCheck:
    return WeightsCheck(spec, None, None, None, False, "not checked: torch cannot be imported")


def _torch_summary() -> tuple[str, bool, str | None, int | None]:
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure is what the report must show
        return f"cannot be imported ({type(e).__name__}: {e})", False, None, None
    return torch.__version__, True, torch.version.cuda, torch.get_num_threads()


def _cpu_bf16() -> bool:
    try:
        from deblur_cli.network.engine import cpu_has_native_bf16
    except Exception:  # noqa: BLE001 - engine needs torch; without it the answer is unknown
        return False
    return cpu_has_native_bf16()


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what the platform module knows
    (also the name bench/speed.py prints)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _devices(cpu_bf16: bool) -> tuple[Device, ...]:
    import torch

    devices = [Device("cpu", f"{cpu_name()}, {os.cpu_count() or '?'} logical CPUs", cpu_bf16)]
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken driver must not hide the rest of the report
        count = 0
    for i in range(count):
        props = torch.cuda.get_device_properties(i)
        with torch.cuda.device(i):
            bf16 = bool(torch.cuda.is_bf16_supported())
        description = f"{props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability {props.major}.{props.minor}"
        devices.append(Device(f"cuda:{i}", description, bf16))
    return tuple(devices)


def _auto_choice() -> tuple[str | None, str | None]:
    try:
        from deblur_cli.network.engine import resolve_device, resolve_precision

        device = resolve_device("auto")
        return str(device), resolve_precision("auto", device)
    except Exception:  # noqa: BLE001 - report what we can
        return None, None


def _cache_dir() -> Path | None:
    try:
        from deblur_cli.weights.download import cache_dir
    except Exception:  # noqa: BLE001 - the weights package needs torch
        return None
    return cache_dir()


def _version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
