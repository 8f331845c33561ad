"""Where the package's bundled data lies on disk: the weights folder and its registry.

Torch-free (the registry file is plain JSON), so that the command line can name the
registered weights in its help without loading the network code. :mod:`deblur_cli.weights`
reads and checks the registry itself; this module only finds it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path

#: Importable name of the installed ``weights/`` data folder (see pyproject's package-dir).
BUNDLED_PACKAGE = "deblur_cli.bundled_weights"
REGISTRY_FILE = "registry.json"


def weights_dir() -> Path:
    """Folder of the bundled weights and registry.

    The installed data package when there is one, else ``<repo>/weights`` (source checkout;
    not the ``deblur_cli/weights/`` code package, which shares the name).
    """
    spec = None
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location, REGISTRY_FILE).is_file():
                return Path(location)
    return Path(__file__).resolve().parents[2] / "weights"


def registered_names() -> tuple[str | None, list[str]]:
    """(default, names) of the registry, for display; ``(None, [])`` when it cannot be read
    (the weights code reports why when weights are actually looked up)."""
    try:
        raw = json.loads((weights_dir() / REGISTRY_FILE).read_text(encoding="utf-8"))
        names = [str(e["name"]) for e in raw.get("weights", [])]
        default = raw.get("default")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None, []
    return (default if default in names else None), names
