"""Weights: find, fetch, check and load trained weights (formats < download < registry < load).

A weights *spec* is one of:

- a registered name (``weights/registry.json``, bundled inside the package as
  ``deblur_cli.bundled_weights``);
- a path to a ``.safetensors`` file (architecture config in its metadata) or to a
  ``.pth``/``.pt``/``.ckpt`` file, read with ``torch.load(weights_only=True)`` only;
- an ``http(s)://`` URL, downloaded into the user cache (``$DEBLUR_CACHE_DIR``
  overrides the platformdirs default) and then loaded as a path.

Every failure is a :class:`~deblur_cli.errors.WeightsError` with a one-line message.
Modules: :mod:`.formats` (files), :mod:`.download` (cache, HTTP), :mod:`.registry`
(names, :func:`locate`), :mod:`.load` (spec -> file -> network). Each imports only the
ones before it. The public names are re-exported here.

May import: core, files, network.
"""

from deblur_cli.files.bundled import BUNDLED_PACKAGE
from deblur_cli.weights.download import (
    ENV_CACHE_DIR,
    cache_dir,
    download,
    downloads_dir,
)
from deblur_cli.weights.download import url_filename as _url_filename  # noqa: F401 - the tests' name for it
from deblur_cli.weights.formats import (
    FORMAT_VERSION,
    META_CONFIG,
    META_FORMAT,
    SAFETENSORS_SUFFIX,
    TORCH_SUFFIXES,
    check_weights_name,
    save_weights,
    sha256_file,
)
from deblur_cli.weights.load import (
    NO_WEIGHTS_MESSAGE,
    LoadedWeights,
    LocatedWeights,
    check_spec,
    load_model,
    load_state,
    resolve,
)
from deblur_cli.weights.registry import (
    REGISTRY_FILE,
    WeightsEntry,
    default_weights_name,
    download_entry,
    get_entry,
    list_weights,
    local_copy,
    locate,
    verify_all,
    weights_dir,
)

__all__ = [
    "check_spec",
    "BUNDLED_PACKAGE",
    "ENV_CACHE_DIR",
    "FORMAT_VERSION",
    "META_CONFIG",
    "META_FORMAT",
    "NO_WEIGHTS_MESSAGE",
    "REGISTRY_FILE",
    "SAFETENSORS_SUFFIX",
    "TORCH_SUFFIXES",
    "LoadedWeights",
    "LocatedWeights",
    "WeightsEntry",
    "cache_dir",
    "check_weights_name",
    "default_weights_name",
    "download",
    "download_entry",
    "local_copy",
    "downloads_dir",
    "get_entry",
    "list_weights",
    "load_model",
    "load_state",
    "locate",
    "resolve",
    "save_weights",
    "sha256_file",
    "verify_all",
    "weights_dir",
]
