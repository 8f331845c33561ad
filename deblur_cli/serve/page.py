"""The page and its files: a fixed list, read once from the package, served with their
media type; the page with a Content-Security-Policy that lets it load nothing from elsewhere.

:class:`Page` answers ``GET /`` and ``GET /static/NAME``; any other name is a 404 without
looking anything up.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from deblur_cli.files import formats

#: The page's files: name -> media type. Only these are served; nothing else is looked up.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: The page loads nothing from elsewhere (it works offline); the browser is told so.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def _read(name: str) -> bytes:
    data = (resources.files("deblur_cli.serve") / "static" / name).read_bytes()
    # The file picker offers what deblur reads, from the format records (deblur_cli.files.formats).
    return data.replace(b"{{accept}}", formats.accept_attribute().encode()) if name == "index.html" else data


class Page:
    """The endpoints of the page: ``page`` (``/``) and ``static`` (``/static/{name}``)."""

    def __init__(self) -> None:
        self.files = {name: _read(name) for name in STATIC_FILES}  # read once; small

    async def page(self, request: Request) -> Response:
        return self._file("index.html")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES or name == "index.html":
            return JSONResponse({"error": "not found"}, status_code=404)
        return self._file(name)

    def _file(self, name: str) -> Response:
        headers = {"Cache-Control": "no-cache"}
        if name == "index.html":
            headers["Content-Security-Policy"] = CSP
        return Response(self.files[name], media_type=STATIC_FILES[name], headers=headers)


__all__ = ["CSP", "STATIC_FILES", "Page"]
