"""The web application: the page, its static files and the HTTP API (Starlette).

Routes::

    GET  /                  the page (static/index.html)
    GET  /static/NAME       the page's script, style and icon (a fixed list; nothing else)
    POST /api/deblur        multipart field 'file' -> the deblurred image, same format; optional
                            fields 'weights' and 'method' choose among /api/health's "choices"
    POST /api/score         multipart field 'file' -> {"score", "blurry", "verdict", ...}
    POST /api/preview       multipart field 'file' -> an 8-bit PNG (browsers without TIFF)
    GET  /api/jobs/TOKEN    where the request sent with header X-Deblur-Job: TOKEN stands: waiting
                            (ahead), loading (weights), running (done, total tiles, seconds)
    GET  /api/health        version, weights name and sha256, device, precision, limits, and
                            the places of both queues: {"queue": {"deblur": {...}, "score": {...}}},
                            what a request may choose: {"choices": {"weights": [...], "methods": [...]}}

Every refusal is JSON ``{"error": "<one line>"}``: 400 not an image, corrupt or a malformed
request, or a Host header that does not name this server; 403 a request to the API from
another site's page (:mod:`deblur_cli.serve.guard`, before anything else); 413 too many bytes (from Content-Length before reading, else while counting) or
pixels (from the header before decoding); 415 an image format the tool does not read; 503
the queue is full (refused before the body is read); 500 an internal error, logged on the
server, never a traceback in the answer. Deblurring runs on ``heavy`` (one network pass at
a time); scores and previews on ``light``, so they need not wait behind a photo.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deblur_cli import __version__
from deblur_cli.errors import DeblurError
from deblur_cli.quality.score import DEFAULT_THRESHOLD, check_threshold
from deblur_cli.serve import images
from deblur_cli.serve.choices import Choice, Choices, Loader
from deblur_cli.serve.guard import Guard, HostRule
from deblur_cli.serve.jobs import Cancelled, Job, QueueFull, WorkQueue
from deblur_cli.serve.page import Page
from deblur_cli.serve.uploads import ServeError, check_declared_length, read_upload

log = logging.getLogger("deblur_cli.serve")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")


@dataclass(frozen=True)
class ServeOptions:
    """What the server accepts: upload bytes, pixels, queued requests, JPEG/WebP quality; the
    ``--host`` it listens on (the Host headers it answers, :mod:`deblur_cli.serve.guard`);
    how long an upload and a request's headers may take, and how many connections at once."""

    host: str = "127.0.0.1"
    max_upload_mb: float = 50.0
    max_pixels: int | None = None  # None: DEBLUR_MAX_PIXELS, else SERVE_MAX_PIXELS; 0: none
    queue_size: int = 16
    quality: int = 95
    upload_timeout: float = 120.0  # seconds for a whole upload, from its headers to its last byte
    header_timeout: float = 10.0  # seconds for a request's headers (serve.connections)
    max_connections: int = 64  # connections at once (serve.connections)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


@dataclass(frozen=True)
class Served:
    """One finished API request, for whoever shows activity (the CLI prints it)."""

    method: str
    path: str
    status: int
    seconds: float
    detail: str


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split()) or "error"}, status_code=status)


class _Server:
    """The endpoints, sharing the deblurrer, the queues and the jobs the page polls."""

    def __init__(
        self, deblurrer: Any, options: ServeOptions, on_served: Callable[[Served], None] | None, loader: Loader | None
    ) -> None:
        self.deblurrer = deblurrer
        self.choices = Choices(deblurrer, loader)
        self.options = options
        self.max_pixels = images.resolve_max_pixels(options.max_pixels)
        self.uploads = images.uploads_folder()  # in the user cache; removed by close()
        self.heavy = WorkQueue(options.queue_size, "deblur-serve-network")
        self.light = WorkQueue(options.queue_size, "deblur-serve-score")
        self.jobs: dict[str, tuple[WorkQueue, Job]] = {}  # X-Deblur-Job token -> its queue and job
        self.on_served = on_served
        info = getattr(deblurrer, "weights_info", None)
        entry = getattr(info, "entry", None)
        self.weights = {
            "name": entry.name if entry is not None else (info.path.name if info is not None else None),
            "sha256": info.sha256 if info is not None else None,
        }

    # ---- API -----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({
            "status": "ok",
            "version": __version__,
            "weights": self.weights,
            "device": str(getattr(self.deblurrer, "device", "")),
            "precision": getattr(self.deblurrer, "precision", ""),
            "max_upload_mb": self.options.max_upload_mb,
            "max_pixels": self.max_pixels,
            "queue": {"deblur": _places(self.heavy), "score": _places(self.light)},
            "choices": self.choices.offered(),
        })

    async def job(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not _TOKEN.fullmatch(token):
            return _error(400, "a job token is 8 to 64 letters, digits, '-' or '_'")
        if token not in self.jobs:
            return JSONResponse({"state": "unknown"})
        queue, job = self.jobs[token]
        body: dict[str, object] = {"state": job.state}
        if job.state == "waiting":
            body["ahead"] = queue.ahead(job)
        elif job.state == "loading":
            body["weights"] = job.loading
        elif job.state == "running":  # seconds: how long it has run, for the page's time left
            body.update(done=job.done, total=job.total, seconds=round(time.monotonic() - job.started, 2))
        return JSONResponse(body)

    async def deblur(self, request: Request) -> Response:
        answer = await self._image_request(request, self.heavy, self._deblur, choose=True)
        if isinstance(answer, Response):
            return answer
        result, choice = answer
        headers = {
            "Content-Disposition": _attachment(result.filename),
            "X-Blur-Score-Before": f"{result.score_before:.4f}",
            "X-Blur-Score-After": f"{result.score_after:.4f}",
            "X-Image-Size": f"{result.width}x{result.height}",
            "X-Deblur-Method": choice.method,
        }
        if choice.weights is not None:
            headers["X-Deblur-Weights"] = choice.weights.encode("ascii", "replace").decode("ascii")
        if result.notes:
            headers["X-Deblur-Notes"] = "; ".join(result.notes).encode("ascii", "replace").decode("ascii")
        self._served(request, 200, f"{result.filename} {result.width}x{result.height}, blur {result.score_before:.3f} -> {result.score_after:.3f}")
        return Response(result.data, media_type=result.media_type, headers=headers)

    async def score(self, request: Request) -> Response:
        raw = request.query_params.get("threshold")
        try:
            threshold = DEFAULT_THRESHOLD if raw is None else float(raw)
            check_threshold(threshold)
        except (ValueError, DeblurError):
            return _error(400, f"threshold must be a number from 0 to 1, got {raw!r}")
        result = await self._image_request(request, self.light, lambda p, job: images.score(p, job, threshold))
        if isinstance(result, Response):
            return result
        self._served(request, 200, f"score {result['score']} ({result['verdict']})")
        return JSONResponse(result)

    async def preview(self, request: Request) -> Response:
        result = await self._image_request(request, self.light, images.preview)
        if isinstance(result, Response):
            return result
        return Response(result, media_type="image/png")

    def _deblur(self, prepared: images.Prepared, job: Job, choice: Choice) -> tuple[images.Deblurred, Choice]:
        """On the worker thread: the runner of the request's choice (loaded first if need be), then the work."""
        runner = self.choices.runner(choice, loading=lambda: job.load(choice.weights or choice.method))
        if job.state == "loading":
            job.run_now()
        return images.deblur(prepared, runner, job, self.options.quality), choice

    # ---- one image request -----------------------------------------------------------------

    async def _image_request(self, request: Request, queue: WorkQueue, work: Callable[..., Any], choose: bool = False) -> Any:
        """Reserve a place, read the upload, check its header, wait for the worker, run ``work``.

        ``choose``: the request may choose weights and method (multipart fields, checked once
        the upload is read, before it waits); ``work`` then takes ``choice=`` too.
        Returns the work's result, or a Response (an error, or an empty one for a client that left).
        """
        token = request.headers.get("x-deblur-job")
        if token is not None and not _TOKEN.fullmatch(token):
            return self._refused(request, 400, "the X-Deblur-Job header takes 8 to 64 letters, digits, '-' or '_'")
        if token is not None and token in self.jobs:
            return self._refused(request, 400, "this X-Deblur-Job token is already in use")
        check_declared_length(request.headers, self.options.max_upload_bytes)
        try:
            job = queue.reserve(token)
        except QueueFull:
            if queue.closed:
                return self._refused(request, 503, "the server is stopping")
            what = "photos" if queue is self.heavy else "scores and previews"
            return self._refused(request, 503, f"the server is busy with {what} ({queue.size} in progress); try again shortly")
        if token is not None:
            self.jobs[token] = (queue, job)
        try:
            try:
                upload = await read_upload(
                    request.headers, request.stream(), self.options.max_upload_bytes, time_limit=self.options.upload_timeout
                )
            except ClientDisconnect:
                return Response(status_code=499)  # nobody is listening any more
            if choose:
                work = functools.partial(work, choice=self.choices.pick(upload.fields))
            prepared = await run_in_threadpool(images.prepare, upload, self.max_pixels, self.uploads)
            del upload
            run = asyncio.ensure_future(queue.run(job, functools.partial(work, prepared), prepared.cleanup))
            left = asyncio.ensure_future(_disconnected(request))
            await asyncio.wait({run, left}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():  # the client went away: stop its work, free its place now
                run.cancel()
                with contextlib.suppress(BaseException):
                    await run
                return Response(status_code=499)
            left.cancel()
            return run.result()
        finally:
            queue.release(job)
            if token is not None and self.jobs.get(token, (None, None))[1] is job:
                del self.jobs[token]

    # ---- activity ----------------------------------------------------------------------------

    def _served(self, request: Request, status: int, detail: str) -> None:
        if self.on_served is not None:
            started = request.scope.get("deblur.started", time.monotonic())
            self.on_served(Served(request.method, request.url.path, status, time.monotonic() - started, detail))

    def _guard_refused(self, scope: dict[str, Any], status: int, message: str) -> None:
        if self.on_served is not None:
            self.on_served(Served(scope.get("method", ""), scope.get("path", ""), status, 0.0, message))

    def _refused(self, request: Request, status: int, message: str) -> JSONResponse:
        self._served(request, status, message)
        return _error(status, message)


def _places(queue: WorkQueue) -> dict[str, int]:
    """A queue's places for /api/health: size, taken (uploading, waiting or running), waiting."""
    return {"size": queue.size, "taken": queue.taken, "waiting": queue.waiting}


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (called once the body has been read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _attachment(filename: str) -> str:
    """A Content-Disposition naming the download (ASCII fallback plus the UTF-8 name)."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _guarded(server: _Server, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every failure of an endpoint becomes a JSON error; unexpected ones a logged 500."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        request.scope["deblur.started"] = time.monotonic()
        try:
            return await endpoint(request)
        except ServeError as e:
            return server._refused(request, e.status, e.message)
        except Cancelled:  # only when the server stops under a running job
            return server._refused(request, 503, "the server is stopping")
        except DeblurError as e:  # the library's one-line messages (bad option, bad input)
            return server._refused(request, 400, e.message)
        except MemoryError:
            return server._refused(request, 503, "the server ran out of memory for this image")
        except Exception:
            log.exception("internal error in %s %s", request.method, request.url.path)
            return server._refused(request, 500, "internal error; the server's log has the details")

    return guarded


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    return _error(status, "method not allowed" if status == 405 else "not found")


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("internal error in %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return _error(500, "internal error; the server's log has the details")


def create_app(
    deblurrer: Any,
    options: ServeOptions = ServeOptions(),
    on_served: Callable[[Served], None] | None = None,
    loader: Loader | None = None,
) -> Starlette:
    """The ASGI application around a loaded :class:`deblur_cli.Deblurrer`.

    ``loader(method, weights)`` builds the runner of another choice a request makes
    (:mod:`deblur_cli.serve.choices`); None: the one ``deblurrer`` serves every request.
    ``app.state.server`` holds the queues (``close()`` them when the server stops).
    """
    from starlette.middleware import Middleware

    server = _Server(deblurrer, options, on_served, loader)
    page = Page()
    rule = HostRule.for_host(options.host)
    g = functools.partial(_guarded, server)
    routes = [
        Route("/", g(page.page), methods=["GET", "HEAD"]),
        Route("/static/{name}", g(page.static), methods=["GET", "HEAD"]),
        Route("/api/health", g(server.health), methods=["GET"]),
        Route("/api/jobs/{token}", g(server.job), methods=["GET"]),
        Route("/api/deblur", g(server.deblur), methods=["POST"]),
        Route("/api/score", g(server.score), methods=["POST"]),
        Route("/api/preview", g(server.preview), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, rule=rule, refused=server._guard_refused)],
        exception_handlers={HTTPException: _not_found, Exception: _internal},
    )
    app.state.server = server
    return app


def close(app: Starlette) -> None:
    """Cancel every queued and running job, stop the worker threads, remove the uploads folder."""
    server: _Server = app.state.server
    server.heavy.close()
    server.light.close()
    shutil.rmtree(server.uploads, ignore_errors=True)


def cancel_all(app: Starlette) -> None:
    """Cancel every job and refuse new ones (the server is stopping); does not wait."""
    server: _Server = app.state.server
    server.heavy.cancel_all()
    server.light.cancel_all()


__all__ = ["ServeOptions", "Served", "cancel_all", "close", "create_app"]
