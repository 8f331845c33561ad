"""Turning a weights spec (registered name, file path or URL) into a ready network.

The top layer of :mod:`deblur_cli.weights`: :func:`resolve` finds the file (that is all a
command's plan needs, and it is cheap: no network is built), :func:`load_model` builds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deblur_cli.errors import WeightsError, redact
from deblur_cli.network import architectures
from deblur_cli.network.architectures import NetworkConfig
from deblur_cli.progress import Progress
from deblur_cli.weights.download import download, is_url
from deblur_cli.weights.formats import infer_config, load_strict, read_config, read_weights, sha256_file
from deblur_cli.weights.registry import WeightsEntry, locate_verified, read_registry

NO_WEIGHTS_MESSAGE = (
    "no trained weights are installed; train some with `deblur train` and pass "
    "--weights PATH, or pass --weights with a registered name or an http(s) URL"
)


@dataclass(frozen=True)
class LocatedWeights:
    """A weights file found on disk (downloaded when the spec was a URL), not yet read."""

    source: str  # registry name, path or URL as given, to show: URL credentials redacted
    path: Path
    entry: WeightsEntry | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", redact(self.source))

    def config(self) -> NetworkConfig:
        """The architecture: the registry's, else the file's header (no tensors built)."""
        return self.entry.config if self.entry is not None else read_config(self.path)


@dataclass(frozen=True)
class LoadedWeights:
    """Where loaded weights came from and what they describe."""

    source: str  # registry name, path or URL as given, to show: URL credentials redacted
    path: Path
    sha256: str
    config: NetworkConfig
    entry: WeightsEntry | None


def check_spec(spec: str | None = None) -> tuple[str, WeightsEntry | None]:
    """What ``spec`` names, found without reading or downloading a weights file: ``(spec,
    entry)`` for registered weights, ``(spec, None)`` for an existing file or an http(s) URL
    (None: the default registered weights). WeightsError (UsageError for an empty text) when
    it names nothing: the cheap first step of a plan, so that a typo is said before anything
    else (:func:`resolve` then finds, downloads and checks the file)."""
    if spec is None:
        spec = read_registry()[0]
        if spec is None:
            raise WeightsError(NO_WEIGHTS_MESSAGE)
    spec = str(spec)
    if not spec.strip():
        from deblur_cli.errors import UsageError

        raise UsageError("the weights are named by an empty text; give a registered name, a weights file or an http(s) URL")
    if "://" in spec:
        if not is_url(spec):
            raise WeightsError(f"unsupported weights URL {spec!r}: only http:// and https://")
        return spec, None
    path = Path(spec).expanduser()
    try:
        _, entries = read_registry()
    except WeightsError:
        if not path.is_file():
            raise
        entries = []  # a broken registry must not block loading an explicit file
    entry = next((e for e in entries if e.name == spec), None)
    if entry is not None or path.is_file():
        return spec, entry
    if path.exists():
        raise WeightsError(f"weights path {spec} is not a file")
    known = ", ".join(e.name for e in entries) or "none registered"
    raise WeightsError(
        f"weights {spec!r} not found: no such file and no registered name (known: {known})"
    )


def resolve(spec: str | None = None, *, progress: Progress | None = None) -> LocatedWeights:
    """Find the file ``spec`` names (None: the default registered weights); WeightsError if none.

    Registered files are sha256-checked here; URLs are downloaded (once) into the cache.
    """
    spec, entry = check_spec(spec)
    if "://" in spec:
        return LocatedWeights(spec, download(spec, progress=progress, check=check_weights_file), None)  # source redacted
    if entry is not None:
        return LocatedWeights(spec, locate_verified(entry, progress), entry)
    return LocatedWeights(spec, Path(spec).expanduser(), None)


def check_weights_file(path: Path) -> None:
    """WeightsError unless ``path`` builds this network: a weights file (not, say, an HTML
    page), an architecture within bounds, every tensor present with the right shape.

    Used on downloads before they are cached. Builds the (bounded) network on CPU.
    """
    state, config = read_weights(Path(path))
    config = config if config is not None else infer_config(state, Path(path))
    load_strict(architectures.build(config), state, str(path))


def load_state(
    spec: str | os.PathLike[str] | LocatedWeights, *, progress: Progress | None = None
) -> tuple[dict[str, torch.Tensor], LoadedWeights]:
    """Resolve ``spec`` (name, path, URL, or an already located file) to a CPU state dict."""
    located = spec if isinstance(spec, LocatedWeights) else resolve(os.fspath(spec), progress=progress)
    state, config = read_weights(located.path)
    entry = located.entry
    if entry is not None:
        if config is not None and config != entry.config:
            raise WeightsError(
                f"weights {entry.name!r}: the registry's config does not match the one stored in "
                f"{located.path}"
            )
        config, sha = entry.config, entry.sha256
    else:
        config = config if config is not None else infer_config(state, located.path)
        sha = sha256_file(located.path)
    return state, LoadedWeights(located.source, located.path, sha, config, entry)  # source: already redacted


def load_model(
    spec: str | os.PathLike[str] | LocatedWeights | None = None, *, progress: Progress | None = None
) -> tuple[nn.Module, LoadedWeights]:
    """Build the network described by ``spec`` (default registered weights when None).

    Returns the model on CPU, float32, in eval mode.
    """
    state, info = load_state(spec if spec is not None else resolve(None), progress=progress)
    model = architectures.build(info.config)
    load_strict(model, state, info.source)
    return model.float().eval(), info
