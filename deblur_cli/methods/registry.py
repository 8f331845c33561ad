"""The method registry: the ways deblur can deblur an image, each a name on ``--method``.

A **method** is one :class:`Method` record, registered by its own module with
:func:`register` when that module is imported. The modules are named in
:data:`METHOD_MODULES` (one line per method) and imported on the first lookup. The image
pipeline, the Python API (:class:`deblur_cli.Deblurrer`), ``deblur video`` and
``deblur serve`` all ask this registry, through the one :class:`InferenceOptions` value
(below: checked once, where it is built), and never branch on a method's name.

How to add a method (the contract)
----------------------------------
Write one module, say ``deblur_cli/kernel/method.py``, that ends with::

    register(Method(
        name="kernel",                       # what --method takes: lower case, a-z 0-9 and -
        help="blur-kernel estimation and deconvolution (no weights)",   # one line for --help
        create=create,                       # the factory below
        needs_weights=False,                 # True: the plan locates options.weights first
    ))

and add its module name to :data:`METHOD_MODULES`. That is all: ``--method kernel`` is then
accepted by every command that deblurs (image, batch, evaluate, video, serve), listed in
their help, and available as ``Deblurrer(method="kernel")`` and ``deblur(img, method="kernel")``.

- **Importing the module must be cheap** (``deblur --help`` imports it to list the methods):
  import torch, scipy and the like inside ``create``, not at the top.
- ``create(options) -> Runner`` takes the one :class:`InferenceOptions` value,
  already checked where it was built (``options.method`` is this method's name;
  ``options.device``, ``precision``, ``tile``, ``tile_overlap`` and ``threads`` are valid
  values a method may use or ignore; ``options.weights`` is None unless ``needs_weights``,
  and then it is the :class:`deblur_cli.weights.LocatedWeights` the plan found or the spec
  given to the API). It may take a while (load weights, pick a device); raise a
  :class:`deblur_cli.errors.DeblurError` subclass with a one-line message on failure.
- The **runner** it returns has ``run(rgb, progress=None) -> np.ndarray``: ``rgb`` is a
  float32 ``H x W x 3`` RGB array in [0, 1] (any size of at least 1 x 1; grey images come as
  three equal channels, alpha is handled outside), the result a float32 array of the same
  shape in [0, 1]. ``progress(done, total)`` (may be None) reports work units of this image,
  called from the calling thread; it may raise to cancel (serve does), so let it propagate.
  ``run`` is called from one thread at a time. The runner also has ``device`` and
  ``precision`` (shown to users: e.g. ``cpu`` and ``fp32``; str() is used) and
  ``weights_info`` (the :class:`deblur_cli.weights.LoadedWeights` it runs, or None).
- Errors inside ``run`` for one image: raise ``InputError`` (that file fails, a batch goes
  on), ``ResourceError`` (out of memory); a ``UsageError`` or ``WeightsError`` stops a batch.

Tests: ``tests/methods/`` runs every registered method through :class:`deblur_cli.Deblurrer`
on a small image (shape, dtype and range of the result).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Protocol, TypeVar, Union

import numpy as np

from deblur_cli.errors import UsageError, redact
from deblur_cli.network import limits
from deblur_cli.progress import Progress

if TYPE_CHECKING:  # pragma: no cover - typing only; this module does not import torch
    from deblur_cli.weights import LoadedWeights, LocatedWeights

#: The module of each method, imported on the first lookup (it calls :func:`register`).
#: Adding a method: one new module, and its name here. The first is the default.
METHOD_MODULES: tuple[str, ...] = (
    "deblur_cli.methods.network",
)
DEFAULT_METHOD = "network"
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class Runner(Protocol):
    """What a method's factory returns (see the module docstring)."""

    @property
    def device(self) -> object: ...
    @property
    def precision(self) -> str: ...
    @property
    def weights_info(self) -> LoadedWeights | None: ...

    def run(self, rgb: np.ndarray, progress: Progress | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class Method:
    """One registered deblurring method (see the module docstring)."""

    name: str
    help: str
    create: Callable[[InferenceOptions], Runner]
    needs_weights: bool = False


_REGISTRY: dict[str, Method] = {}
_loaded = False


def register(method: Method) -> Method:
    """Add ``method`` (called by its module at import); ValueError for a bad or taken name."""
    if not _NAME.match(method.name):
        raise ValueError(f"method name {method.name!r}: lower case letters, digits and -")
    if method.name in _REGISTRY and _REGISTRY[method.name] is not method:
        raise ValueError(f"method {method.name!r} is registered twice")
    if not method.help or "\n" in method.help:
        raise ValueError(f"method {method.name!r} needs a one-line help")
    _REGISTRY[method.name] = method
    return method


def _load() -> dict[str, Method]:
    global _loaded
    if not _loaded:
        for module in METHOD_MODULES:
            importlib.import_module(module)
        _loaded = True
    return _REGISTRY


def names() -> list[str]:
    """The registered methods, the default first."""
    return list(_load())


def get(name: str) -> Method:
    """The method called ``name``; KeyError naming the known ones."""
    registry = _load()
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown method {name!r}; use one of {', '.join(registry)}") from None


def help_text() -> str:
    """One line per method, for ``--method``'s help."""
    return "; ".join(f"{m.name}: {m.help}" for m in _load().values())


# ---- the one inference-options value ----------------------------------------------------

T = TypeVar("T")
WeightsSpec = Union[str, "os.PathLike[str]", "LocatedWeights", None]


class OptionError(UsageError):
    """A bad inference option; ``option`` names the field (``tile``, ``threads``, ...), so
    that the command line can name its own option (``--tile``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class InferenceOptions:
    """How an image is deblurred.

    ``method``: a registered method (``deblur_cli.methods.names()``; default ``network``).
    ``weights``: registered name, ``.safetensors``/``.pth`` path or http(s) URL (None: the
    default registered weights), or weights already located by ``deblur_cli.weights.resolve``;
    only for methods that use weights. ``device``: ``auto|cpu|cuda|cuda:N``. ``precision``:
    ``auto|fp32|bf16|fp16`` (auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32).
    ``tile``: tile side in pixels, at least ``network.limits.MIN_TILE`` (None: chosen from
    free memory). ``tile_overlap``: pixels shared by neighbouring tiles, 0 or more (None: 64).
    ``threads``: torch CPU threads, 1 to the cores available (None: leave torch's setting;
    it is process-wide). Device and precision are stored in lower case.
    """

    weights: WeightsSpec = None
    device: str = "auto"
    precision: str = "auto"
    tile: int | None = None
    tile_overlap: int | None = None
    threads: int | None = None
    method: str = DEFAULT_METHOD

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", _checked("device", limits.check_device, self.device))
        object.__setattr__(self, "precision", _checked("precision", limits.check_precision, self.precision))
        _checked("tile", limits.check_tile, self.tile)
        _checked("tile_overlap", lambda v: limits.check_tile(None, v), self.tile_overlap)
        _checked("threads", limits.check_threads, self.threads)
        try:
            method = get(self.method)
        except KeyError as e:
            raise OptionError("method", str(e.args[0])) from None
        if self.weights is not None and not method.needs_weights:
            raise OptionError("weights", f"the {method.name} method uses no weights; leave them out")

    def __repr__(self) -> str:  # logged by callers: a weights URL's credentials stay out
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return redact(f"{type(self).__name__}({shown})")

    def check_named(self) -> None:
        """The first planning step, cheap: the weights name something (a registered name, an
        existing file, an http(s) URL); nothing is read or downloaded. WeightsError otherwise,
        so that a typo in the weights is said before any problem with the outputs."""
        from deblur_cli.weights import LocatedWeights, check_spec

        if get(self.method).needs_weights and not isinstance(self.weights, LocatedWeights):
            check_spec(None if self.weights is None else os.fspath(self.weights))

    def located(self, progress: Progress | None = None) -> InferenceOptions:
        """These options with their weights found on disk (downloaded once when a URL, with
        ``progress(bytes, total)``): the planning step of a method that needs weights, so
        that a missing file fails before any work. Unchanged for other methods."""
        from deblur_cli.weights import LocatedWeights, resolve

        if not get(self.method).needs_weights or isinstance(self.weights, LocatedWeights):
            return self
        spec = None if self.weights is None else os.fspath(self.weights)
        return replace(self, weights=resolve(spec, progress=progress))


def _checked(option: str, check: Callable[[T], object], value: T) -> T:
    """``value`` (as ``check`` returns it, when it returns one); OptionError naming ``option``."""
    try:
        result = check(value)
    except UsageError as e:
        raise OptionError(option, e.message) from None
    return value if result is None else result  # type: ignore[return-value]
