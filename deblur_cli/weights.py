"""Weights: the bundled registry, safetensors save/load, sha256 checks and downloads.

A weights *spec* is one of:

- a registered name (``weights/registry.json``, bundled inside the package);
- a path to a ``.safetensors`` file (architecture config in its metadata) or to a
  ``.pth``/``.pt``/``.ckpt`` file, which is read with ``torch.load(weights_only=True)``
  only, so that a pickle can never run code;
- an ``http(s)://`` URL, downloaded into the user cache (``$DEBLUR_CACHE_DIR``
  overrides the platformdirs default) and then loaded as a path.

Every failure is a :class:`~deblur_cli.errors.WeightsError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import torch

from deblur_cli.errors import DeblurError, WeightsError
from deblur_cli.fsutil import atomic_path
from deblur_cli.model import AttentiveDeblurNet, ModelConfig

Progress = Callable[[int, int], None]

ENV_CACHE_DIR = "DEBLUR_CACHE_DIR"
#: Importable name of the installed ``weights/`` data folder (see pyproject's package-dir).
BUNDLED_PACKAGE = "deblur_cli.bundled_weights"
REGISTRY_FILE = "registry.json"
FORMAT_VERSION = 1
META_CONFIG = "deblur.config"
META_FORMAT = "deblur.format"
SAFETENSORS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt")
_SAVE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_CHUNK = 1 << 20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

NO_WEIGHTS_MESSAGE = (
    "no trained weights are installed; train some with `deblur train` and pass "
    "--weights PATH, or pass --weights with a registered name or an http(s) URL"
)


@dataclass(frozen=True)
class WeightsEntry:
    """One registered set of weights."""

    name: str
    file: str  # file name inside weights_dir() (and the cache name when downloaded)
    sha256: str
    config: ModelConfig
    licence: str
    provenance: str
    description: str = ""
    url: str | None = None  # optional download location if the file is not bundled


@dataclass(frozen=True)
class LoadedWeights:
    """Where loaded weights came from and what they describe."""

    source: str  # registry name, path or URL as given
    path: Path
    sha256: str
    config: ModelConfig
    entry: WeightsEntry | None


# --------------------------------------------------------------------------- folders


def weights_dir() -> Path:
    """Folder of the bundled weights and registry.

    The installed data package when there is one, else ``<repo>/weights`` (source checkout).
    """
    spec = None
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location, REGISTRY_FILE).is_file():
                return Path(location)
    return Path(__file__).resolve().parent.parent / "weights"


def cache_dir() -> Path:
    """User cache folder: ``$DEBLUR_CACHE_DIR`` when set, else the platformdirs default."""
    override = os.environ.get(ENV_CACHE_DIR, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("deblur", appauthor=False))


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


# --------------------------------------------------------------------------- registry


def _registry() -> tuple[str | None, list[WeightsEntry]]:
    """Parse ``registry.json``; a missing file is an empty registry."""
    path = weights_dir() / REGISTRY_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"weights registry {path} cannot be read: {_one_line(e)}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("weights", []), list):
        raise WeightsError(f"weights registry {path} must be an object with a 'weights' list")
    entries = [_parse_entry(item, path) for item in raw.get("weights", [])]
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise WeightsError(f"weights registry {path} names {', '.join(duplicates)} more than once")
    default = raw.get("default")
    if default is not None and default not in names:
        raise WeightsError(f"weights registry {path}: default {default!r} is not a registered name")
    return default, entries


def _parse_entry(item: Any, registry: Path) -> WeightsEntry:
    where = f"weights registry {registry}"
    if not isinstance(item, dict):
        raise WeightsError(f"{where}: every entry must be an object")
    name = item.get("name", "?")
    required = ("name", "file", "sha256", "config", "licence", "provenance")
    missing = [k for k in required if k not in item]
    if missing:
        raise WeightsError(f"{where}: entry {name!r} lacks {', '.join(missing)}")
    unknown = set(item) - set(required) - {"description", "url"}
    if unknown:
        raise WeightsError(f"{where}: entry {name!r} has unknown keys {', '.join(sorted(unknown))}")
    text_keys = ("name", "file", "sha256", "licence", "provenance", "description")
    if any(not isinstance(item.get(k, ""), str) for k in text_keys):
        raise WeightsError(f"{where}: entry {name!r} has a non-text value")
    file = item["file"]
    if not file or Path(file).name != file or file in (".", ".."):
        raise WeightsError(f"{where}: entry {name!r} file must be a plain file name, got {file!r}")
    sha = item["sha256"].lower()
    if not _SHA_RE.match(sha):
        raise WeightsError(f"{where}: entry {name!r} sha256 must be 64 hex digits")
    url = item.get("url")
    if url is not None and not (isinstance(url, str) and _is_url(url)):
        raise WeightsError(f"{where}: entry {name!r} url must be an http(s) URL")
    config = _config_from(item["config"], f"{where}: entry {name!r}")
    return WeightsEntry(
        name=name,
        file=file,
        sha256=sha,
        config=config,
        licence=item["licence"],
        provenance=item["provenance"],
        description=item.get("description", ""),
        url=url,
    )


def list_weights() -> list[WeightsEntry]:
    """All registered weights, in registry order."""
    return _registry()[1]


def default_weights_name() -> str | None:
    """Name of the default registered weights, or None when none is registered."""
    return _registry()[0]


def get_entry(name: str) -> WeightsEntry:
    """The registered weights called ``name``; WeightsError listing the known names otherwise."""
    entries = list_weights()
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries) or "none registered"
    raise WeightsError(f"unknown weights {name!r} (known: {known})")


# --------------------------------------------------------------------------- files


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
    return digest.hexdigest()


def save_weights(
    model: AttentiveDeblurNet,
    path: Path,
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> str:
    """Write ``model``'s weights as safetensors (atomically) and return the file's sha256.

    The architecture config goes into the metadata as JSON so the file is self-describing.
    ``dtype=torch.float16`` (or bfloat16) halves the file; loading casts back to float32.
    """
    path = Path(path)
    if path.suffix.lower() != SAFETENSORS_SUFFIX:
        raise WeightsError(f"weights file name must end in {SAFETENSORS_SUFFIX}: {path}")
    if dtype is not None and dtype not in _SAVE_DTYPES:
        raise ValueError(f"dtype must be one of {_SAVE_DTYPES}, got {dtype}")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[META_FORMAT] = str(FORMAT_VERSION)
    meta[META_CONFIG] = json.dumps(model.config.to_dict(), sort_keys=True)
    state = {}
    for key, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
            if not torch.isfinite(t).all():
                raise WeightsError(f"weight {key} overflows {dtype}; save in float32 instead")
        state[key] = t.contiguous()
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return sha256_file(path)


# --------------------------------------------------------------------------- loading


def load_state(
    spec: str, *, progress: Progress | None = None
) -> tuple[dict[str, torch.Tensor], LoadedWeights]:
    """Resolve ``spec`` (name, path or URL) to a CPU state dict and its description."""
    spec = str(spec)
    if "://" in spec:
        if not _is_url(spec):
            raise WeightsError(f"unsupported weights URL {spec!r}: only http:// and https://")
        path = download(spec, progress=progress)
        return _load_file(path, source=spec)
    path = Path(spec).expanduser()
    try:
        _, entries = _registry()
    except WeightsError:
        if not path.is_file():
            raise
        entries = []  # a broken registry must not block loading an explicit file
    entry = next((e for e in entries if e.name == spec), None)
    if entry is not None:
        return _load_entry(entry, progress)
    if path.is_file():
        return _load_file(path, source=spec)
    if path.exists():
        raise WeightsError(f"weights path {spec} is not a file")
    known = ", ".join(e.name for e in entries) or "none registered"
    raise WeightsError(
        f"weights {spec!r} not found: no such file and no registered name (known: {known})"
    )


def load_model(
    spec: str | None = None, *, progress: Progress | None = None
) -> tuple[AttentiveDeblurNet, LoadedWeights]:
    """Build the network described by ``spec`` (default registered weights when None).

    Returns the model on CPU, float32, in eval mode.
    """
    if spec is None:
        spec = default_weights_name()
        if spec is None:
            raise WeightsError(NO_WEIGHTS_MESSAGE)
    state, info = load_state(spec, progress=progress)
    model = AttentiveDeblurNet(info.config)
    _load_strict(model, state, info.source)
    return model.float().eval(), info


def _load_entry(
    entry: WeightsEntry, progress: Progress | None
) -> tuple[dict[str, torch.Tensor], LoadedWeights]:
    bundled = weights_dir() / entry.file
    if bundled.is_file():
        path = bundled
    elif entry.url:
        path = download(entry.url, entry.sha256, progress=progress)
    else:
        raise WeightsError(
            f"weights {entry.name!r}: file {entry.file} is missing from the installation; "
            "reinstall deblur"
        )
    actual = _check_sha(path, entry.sha256)
    state, meta_config = _read_any(path)
    if meta_config is not None and meta_config != entry.config:
        raise WeightsError(
            f"weights {entry.name!r}: the registry's config does not match the one stored in {path}"
        )
    info = LoadedWeights(entry.name, path, actual, entry.config, entry)
    return state, info


def _load_file(path: Path, source: str) -> tuple[dict[str, torch.Tensor], LoadedWeights]:
    state, config = _read_any(path)
    if config is None:
        config = _infer_config(state, path)
    return state, LoadedWeights(source, path, sha256_file(path), config, None)


def _check_sha(path: Path, expected: str) -> str:
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(
            f"weights file {path} is corrupt or tampered with: sha256 {actual} expected {expected}"
        )
    return actual


def _read_any(path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig | None]:
    """Read a weights file by extension: (float32 state dict, config or None)."""
    suffix = path.suffix.lower()
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


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
    except Exception as e:  # SafetensorError and friends: the file is not valid safetensors
        reason = _one_line(e)
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
    return state, _config_from(config_dict, f"weights file {path}")


def _read_torch(path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig | None]:
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
    except Exception as e:  # truncated zip, empty file, ...
        reason = _one_line(e) or type(e).__name__
        raise WeightsError(f"weights file {path} is corrupt: {reason}") from None
    config = None
    if isinstance(obj, dict) and "model" in obj:
        if obj.get("config") is not None:
            config = _config_from(obj["config"], f"weights file {path}")
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


def _config_from(value: Any, where: str) -> ModelConfig:
    if not isinstance(value, dict):
        raise WeightsError(f"{where}: architecture config must be an object")
    try:
        return ModelConfig.from_dict(value)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{where}: invalid architecture config: {_one_line(e)}") from None


def _infer_config(state: dict[str, torch.Tensor], path: Path) -> ModelConfig:
    """Architecture of a raw state dict (no config stored), from its keys and shapes.

    What shapes cannot tell (serial vs parallel-add, global residual, number of
    shared-weight scales) takes the paper's defaults; files saved by deblur carry
    their config and never come here.
    """
    try:
        nets = sorted({int(k.split(".")[1]) for k in state if k.startswith("nets.")})
        pre = "nets.0."
        widths = tuple(
            int(state[pre + k].shape[0])
            for k in ("in_conv.weight", "down2.weight", "down3.weight")
        )
        blocks = len({k.split(".")[3] for k in state if k.startswith(pre + "enc1.")})
        # attention MLPs: (channels, hidden) pairs; hidden = max(1, channels // reduction)
        pairs = {
            (int(t.shape[1]), int(t.shape[0]))
            for k, t in state.items()
            if k.endswith((".ca.fc1.weight", ".sa.fc1.weight"))
        }
        kwargs: dict[str, Any] = dict(
            widths=widths,
            kernel_size=int(state[pre + "in_conv.weight"].shape[-1]),
            blocks_per_group=blocks,
            encoder_spatial_attention=any(".enc1." in k and ".sa." in k for k in state),
            decoder_spatial_attention=any(".dec1." in k and ".sa." in k for k in state),
            channel_attention=any(".ca." in k for k in state),
        )
        if len(nets) > 1:
            kwargs.update(share_weights=False, num_scales=len(nets))
        if any(".fuse." in k for k in state):
            kwargs["combination"] = "parallel_concat"
        candidates = [16, *range(1, max(widths) + 1)]
        kwargs["reduction"] = next(
            r for r in candidates if all(max(1, c // r) == h for c, h in pairs)
        )
        return ModelConfig(**kwargs)
    except (KeyError, IndexError, ValueError, StopIteration):
        raise WeightsError(
            f"weights file {path} stores no architecture config and its tensors are not this "
            "network's; convert it with `deblur weights export`"
        ) from None


def _load_strict(model: AttentiveDeblurNet, state: dict[str, torch.Tensor], source: str) -> None:
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


# --------------------------------------------------------------------------- verify


def verify_all() -> list[tuple[WeightsEntry, bool, str]]:
    """Check every registered entry's bundled or cached file against its sha256."""
    results = []
    for entry in list_weights():
        path = _local_file(entry)
        if path is None:
            if entry.url:
                results.append((entry, True, "not downloaded yet (`deblur weights download`)"))
            else:
                results.append((entry, False, f"file {entry.file} is missing; reinstall deblur"))
            continue
        try:
            actual = sha256_file(path)
        except WeightsError as e:
            results.append((entry, False, e.message))
            continue
        if actual == entry.sha256:
            results.append((entry, True, f"ok ({path})"))
        else:
            results.append((entry, False, f"{path} is corrupt or tampered with: sha256 {actual}"))
    return results


def _local_file(entry: WeightsEntry) -> Path | None:
    bundled = weights_dir() / entry.file
    if bundled.is_file():
        return bundled
    if entry.url:
        cached = downloads_dir() / _url_filename(entry.url)
        if cached.is_file():
            return cached
    return None


# --------------------------------------------------------------------------- downloads


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _url_filename(url: str) -> str:
    """Cache name: a short hash of the URL (so different URLs never collide) + its base name."""
    base = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:100]
    tag = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return f"{tag}-{base}" if base else tag


def download(
    url: str,
    sha256: str | None = None,
    *,
    dest_dir: Path | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` into ``dest_dir`` (default: the cache's downloads folder).

    A file already there (with the right sha256, when known) is reused. The body is
    streamed into a temporary file that is renamed only once complete and checked;
    on any failure nothing is left behind. ``timeout`` bounds connecting and each read.
    """
    if not _is_url(url):
        raise WeightsError(f"unsupported weights URL {url!r}: only http:// and https://")
    expected = sha256.lower() if sha256 else None
    folder = Path(dest_dir) if dest_dir is not None else downloads_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create cache folder {folder}: {e.strerror or e}") from None
    final = folder / _url_filename(url)
    if final.is_file():
        if expected is None or sha256_file(final) == expected:
            return final
        with contextlib.suppress(OSError):  # a stale or damaged copy: fetch it again
            final.unlink()
    try:
        with atomic_path(final) as tmp:
            _fetch(url, tmp, expected, progress, timeout)
    except DeblurError as e:
        raise WeightsError(e.message) from None
    return final


def _fetch(
    url: str, tmp: Path, expected: str | None, progress: Progress | None, timeout: float
) -> None:
    import requests

    digest = hashlib.sha256()
    received, total = 0, None
    try:
        # identity encoding so that Content-Length counts the bytes we receive
        with requests.get(
            url, stream=True, timeout=(timeout, timeout), headers={"Accept-Encoding": "identity"}
        ) as r:
            if r.status_code >= 400:
                status = f"HTTP {r.status_code} {r.reason or ''}".rstrip()
                raise WeightsError(f"download of {url} failed: {status}")
            total = _content_length(r)
            with open(tmp, "wb") as f:
                for chunk in r.iter_content(_CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received, total or 0)
    except requests.exceptions.Timeout:
        raise WeightsError(f"download of {url} timed out after {timeout:g} s") from None
    except requests.exceptions.RequestException as e:
        if _is_read_timeout(e):
            raise WeightsError(f"download of {url} timed out after {timeout:g} s") from None
        if isinstance(e, requests.exceptions.ChunkedEncodingError):  # connection closed early
            size = f"all {total} bytes" if total is not None else "the whole file"
            raise WeightsError(
                f"download of {url} was cut short: the connection closed before {size} arrived"
            ) from None
        if isinstance(e, requests.exceptions.ConnectionError):
            found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(e))
            reason = found.group(1).strip() if found else "connection failed"
            host = urlsplit(url).netloc
            raise WeightsError(
                f"download of {url} failed: cannot connect to {host}: {reason}"
            ) from None
        raise WeightsError(f"download of {url} failed: {_one_line(e)}") from None
    except OSError as e:
        raise WeightsError(f"cannot write download to {tmp.parent}: {e.strerror or e}") from None
    if total is not None and received != total:
        raise WeightsError(f"download of {url} was cut short: received {received} of {total} bytes")
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        raise WeightsError(
            f"download of {url} is corrupt or tampered with: sha256 {actual} expected {expected}"
        )


def _content_length(response: Any) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _is_read_timeout(error: Exception) -> bool:
    # requests wraps a read timeout during iter_content in a ConnectionError
    from urllib3.exceptions import ReadTimeoutError

    return any(isinstance(a, ReadTimeoutError) for a in error.args)


def download_entry(name: str, progress: Progress | None = None) -> Path:
    """Make registered weights available locally; returns the verified file."""
    entry = get_entry(name)
    bundled = weights_dir() / entry.file
    if bundled.is_file():
        _check_sha(bundled, entry.sha256)
        return bundled
    if not entry.url:
        raise WeightsError(
            f"weights {name!r}: file {entry.file} is missing and has no download URL; "
            "reinstall deblur"
        )
    return download(entry.url, entry.sha256, progress=progress)


def _one_line(error: object, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
