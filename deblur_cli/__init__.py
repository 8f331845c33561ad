"""deblur: remove motion blur from photos with an attentive multi-scale network.

Python API (see :mod:`deblur_cli.api`)::

    from deblur_cli import Deblurrer
    sharp = Deblurrer()(image)        # PIL image or numpy array in, same type out
    sharp = deblur_cli.deblur(image)  # one call; the model is kept for the next call

Importing the package is light: torch loads when a ``Deblurrer`` is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Deblurrer", "deblur", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from deblur_cli.api import Deblurrer, deblur


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): `import deblur_cli` and `deblur --help` must not import torch or numpy work.
    if name in ("Deblurrer", "deblur"):
        from deblur_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'deblur_cli' has no attribute {name!r}")
