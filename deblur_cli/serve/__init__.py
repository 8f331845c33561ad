"""`deblur serve`: a local web page to deblur photos and compare before / after, and an HTTP API.

What it holds:

- :mod:`~deblur_cli.serve.app`: the Starlette application (the page, its static files,
  ``/api/deblur``, ``/api/score``, ``/api/preview``, ``/api/jobs/TOKEN``, ``/api/health``),
  :class:`ServeOptions` and the one place where a failure becomes a JSON error and status.
- :mod:`~deblur_cli.serve.page`: the page's fixed list of files, read once, and its
  Content-Security-Policy.
- :mod:`~deblur_cli.serve.choices`: the weights and methods a request may choose (fields
  ``weights``, ``method``), from the registries, and the runner built for each choice.
- :mod:`~deblur_cli.serve.guard`: who may talk to the server, from the request's headers:
  the ``Host`` must name this server (DNS rebinding), the API refuses other sites' pages.
- :mod:`~deblur_cli.serve.uploads`: the multipart body, streamed, counted and refused early
  when too big; :class:`ServeError` (an HTTP status with a one-line message).
- :mod:`~deblur_cli.serve.images`: an upload in a private folder in the user cache, its header checked
  before it waits (format, pixels), then deblurred, scored or previewed through the package's
  own image files code, as ``deblur photo.jpg`` does.
- :mod:`~deblur_cli.serve.jobs`: the bounded first-come-first-served work queue (one worker
  thread: one network pass at a time) and the jobs the page polls for progress.
- :mod:`~deblur_cli.serve.connections`: bounds on connections (how many, how long their
  headers, a drained body and an unread answer may take), in uvicorn's h11 protocol.
- :mod:`~deblur_cli.serve.server`: binding the address and running uvicorn until Ctrl-C.
- ``static/``: the page (HTML, script, style, icon), served by the server itself: no CDN.

What it offers: :func:`check_installed` (a one-line UsageError naming the ``serve`` extra when
its packages are missing), and, from the modules above, ``create_app(deblurrer, options)``,
``listen(host, port)``, ``page_url(sock)``, ``run(app, sock)``. The CLI's ``deblur serve``
loads a :class:`deblur_cli.Deblurrer` once and calls these; it imports this package inside
the command only.

May import: the library.

In practice: :mod:`deblur_cli.errors`, :mod:`deblur_cli.files.image_io` (and the naming
constant of :mod:`deblur_cli.files.paths`), :mod:`deblur_cli.quality.score`, the version, and
the :class:`deblur_cli.Deblurrer` it is given; besides the standard library, starlette,
uvicorn, h11 and python-multipart (the ``serve`` extra), imported by the modules above and never
by this ``__init__``. Nothing in the library imports this package.
"""

from __future__ import annotations

import importlib.util

from deblur_cli.errors import UsageError

#: The packages of the ``serve`` extra: import name -> the name pip knows.
REQUIRED = {"starlette": "starlette", "uvicorn": "uvicorn", "h11": "h11", "python_multipart": "python-multipart"}
INSTALL_HINT = "deblur serve needs a web server: pip install 'deblur-cli[serve]'"


def check_installed() -> None:
    """UsageError with the install command unless the ``serve`` extra's packages are importable."""
    missing = [pip for name, pip in REQUIRED.items() if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


__all__ = ["INSTALL_HINT", "REQUIRED", "check_installed"]
