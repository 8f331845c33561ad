"""Weights files: safetensors (architecture name and config in the metadata) and plain torch
checkpoints.

The bottom layer of :mod:`deblur_cli.weights`: it knows file formats only, nothing of the
registry, the cache or downloads, and nothing of any network's inside: configs are read
back, bounded and inferred by their architecture (:mod:`deblur_cli.network.architectures`).
A ``.pth``/``.pt``/``.ckpt`` file is read with ``torch.load(weights_only=True)`` only, so
that a pickle can never run code.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deblur_cli.errors import OutputError, WeightsError
from deblur_cli.files.fsutil import atomic_path
from deblur_cli.network import architectures
from deblur_cli.network.architectures import NetworkConfig

FORMAT_VERSION = 1
META_CONFIG = "deblur.config"
META_FORMAT = "deblur.format"
#: The architecture's registered name; files written before it existed are the default one.
META_ARCHITECTURE = "deblur.architecture"
SAFETENSORS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt")
_SAVE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
CHUNK = 1 << 20


def one_line(error: object, limit: int = 200) -> str:
    """An exception's text on one line, at most ``limit`` characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
    return digest.hexdigest()


def check_sha(path: Path, expected: str) -> str:
    """The file's sha256, or WeightsError when it is not ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(
            f"weights file {path} is corrupt or tampered with: sha256 {actual} expected {expected}"
        )
    return actual


def check_weights_name(path: Path) -> None:
    """The one rule for the name of a weights file we write: it ends in ``.safetensors``.

    An OutputError (exit 4) like every other unwritable output name.
    """
    if Path(path).suffix.lower() != SAFETENSORS_SUFFIX:
        raise OutputError(f"the weights file name must end in {SAFETENSORS_SUFFIX}: {path}")


def save_weights(
    model: nn.Module,
    path: Path,
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
    *,
    overwrite: bool = False,
) -> str:
    """Write ``model``'s weights as safetensors (atomically) and return the file's sha256.

    An existing file at ``path`` is replaced only with ``overwrite``.

    The architecture's name and config go into the metadata (the config as JSON) so the
    file is self-describing.
    ``dtype=torch.float16`` (or bfloat16) halves the file; loading casts back to float32.
    """
    path = Path(path)
    check_weights_name(path)
    if dtype is not None and dtype not in _SAVE_DTYPES:
        raise ValueError(f"dtype must be one of {_SAVE_DTYPES}, got {dtype}")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[META_FORMAT] = str(FORMAT_VERSION)
    config = architectures.config_of(model)
    meta[META_ARCHITECTURE] = architectures.of(config).name
    meta[META_CONFIG] = json.dumps(config.to_dict(), sort_keys=True)
    state = {}
    for key, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
            if not torch.isfinite(t).all():
                raise WeightsError(f"weight {key} overflows {dtype}; save in float32 instead")
        state[key] = t.contiguous()
    from safetensors.torch import save_file

    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return sha256_file(path)


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], NetworkConfig | None]:
    """Read a weights file by extension: (float32 state dict, config or None)."""
    suffix = path.suffix.lower()
    config: NetworkConfig | None
    if suffix == SAFETENSORS_SUFFIX:
        state, config = _read_safetensors(path)
    elif suffix in TORCH_SUFFIXES:
        state, config = _read_torch(path)
    else:
        raise WeightsError(
            f"unsupported weights file type {suffix or '(none)'!r} for {path}: "
            f"use {SAFETENSORS_SUFFIX} (or {', '.join(TORCH_SUFFIXES)})"
        )
    bad = [k for k, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise WeightsError(f"weights file {path} holds NaN or infinite values (e.g. in {bad[0]})")
    return {k: t.float() if t.is_floating_point() else t for k, t in state.items()}, config


def read_config(path: Path) -> NetworkConfig:
    """The architecture a weights file describes; for safetensors from its header alone."""
    if path.suffix.lower() == SAFETENSORS_SUFFIX:
        return _read_safetensors(path, tensors=False)[1]
    state, config = read_weights(path)
    return config if config is not None else infer_config(state, path)


def _read_safetensors(path: Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], NetworkConfig]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - SafetensorError and friends: the file is not valid safetensors
        reason = one_line(e)
        raise WeightsError(f"weights file {path} is not valid safetensors: {reason}") from None
    version = meta.get(META_FORMAT, str(FORMAT_VERSION))
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise WeightsError(f"weights file {path} has format {version!r}; upgrade deblur to load it")
    if META_CONFIG not in meta:
        raise WeightsError(
            f"weights file {path} has no architecture config in its metadata ({META_CONFIG}); "
            "save it with `deblur weights export`"
        )
    try:
        config_dict = json.loads(meta[META_CONFIG])
    except json.JSONDecodeError:
        raise WeightsError(f"weights file {path}: its {META_CONFIG} metadata is not JSON") from None
    return state, config_from(config_dict, f"weights file {path}", meta.get(META_ARCHITECTURE))


def _read_torch(path: Path) -> tuple[dict[str, torch.Tensor], NetworkConfig | None]:
    """torch.load with weights_only=True: a pickle that needs arbitrary globals is refused."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise WeightsError(
                f"refusing to load {path}: it contains Python objects ({found.group(1)}) "
                "that could run code; convert it to safetensors"
            ) from None
        raise WeightsError(
            f"refusing to load {path}: it is not a plain tensor checkpoint (corrupt, or it holds "
            "Python objects that could run code); convert it to safetensors"
        ) from None
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - truncated zip, empty file, ...
        reason = one_line(e) or type(e).__name__
        if re.search(r"%l?[dsu]", reason):  # a C format string torch did not fill in ("expected %ld got %ld")
            reason = "the sizes it declares for its tensors do not match the data it holds"
        raise WeightsError(f"weights file {path} is corrupt: {reason}") from None
    config = None
    if isinstance(obj, dict) and "model" in obj:
        if obj.get("config") is not None:
            config = config_from(obj["config"], f"weights file {path}", obj.get("architecture"))
        obj = obj["model"]
    return _as_state_dict(obj, path), config


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"weights file {path} holds no state dict")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise WeightsError(f"weights file {path} holds a dict that is not a tensor state dict")
    # DistributedDataParallel wraps the model; its keys carry a "module." prefix.
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def config_from(value: Any, where: str, architecture: Any = None) -> NetworkConfig:
    """The config of a stored dict, read back by the architecture it names (None: the
    default, for files written before architectures had names); WeightsError naming ``where``."""
    if architecture is not None and not isinstance(architecture, str):
        raise WeightsError(f"{where}: the architecture name must be text, got {architecture!r}")
    try:
        arch = architectures.get(architecture)
    except KeyError:
        raise WeightsError(
            f"{where}: architecture {architecture!r} is not one this deblur knows "
            f"({', '.join(architectures.names())}); upgrade deblur to load it"
        ) from None
    return arch.read_config(value, where)


def infer_config(state: dict[str, torch.Tensor], path: Path) -> NetworkConfig:
    """The config of a raw state dict (no config stored): the first registered architecture
    whose tensors these are. Files saved by deblur carry their config and never come here."""
    for name in architectures.names():
        try:
            return architectures.get(name).infer_config(state)
        except (KeyError, IndexError, ValueError, StopIteration):
            continue
        except WeightsError as e:  # recognised, but out of bounds
            raise WeightsError(f"weights file {path}: {e.message.removeprefix('state dict: ')}") from None
    raise WeightsError(
        f"weights file {path} stores no architecture config and its tensors are not this "
        "network's; convert it with `deblur weights export`"
    )


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; WeightsError counting missing/unexpected/wrong keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong-shaped"
        example = (wrong or missing or unexpected)[0]
        raise WeightsError(
            f"weights {source} do not fit the architecture: {counts} keys (e.g. {example})"
        )
    model.load_state_dict(state, strict=True)
