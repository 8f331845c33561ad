"""Running the application: bind the address first (so errors come before anything starts),
then serve with uvicorn until Ctrl-C.

:func:`listen` binds and listens, and turns a taken port or an unknown host into a
:class:`~deblur_cli.errors.UsageError`; :func:`page_url` is the address to open;
:func:`run` serves an application on that socket. On Ctrl-C (or SIGTERM) every queued and
running job is cancelled at once (a running one stops at its next tile), answers still in
flight get a few seconds to finish, the worker threads are stopped, and uvicorn re-raises
the signal: ``KeyboardInterrupt`` for Ctrl-C, which the caller treats as a clean stop.
"""

from __future__ import annotations

import socket
from typing import Any

from deblur_cli.errors import UsageError

#: Seconds answers in flight get to finish once the server is asked to stop.
GRACEFUL_SECONDS = 5


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free port) and listening."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"cannot listen on {host!r}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError as e:
        sock.close()
        hint = "; choose another --port" if e.errno in (98, 48, 10048) else ""
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
    return sock


def page_url(sock: socket.socket) -> str:
    """``http://HOST:PORT/`` for the bound socket (127.0.0.1 when it listens on every address)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def run(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` (from :func:`deblur_cli.serve.app.create_app`) on ``sock`` until stopped.

    Returns after a stop; Ctrl-C then surfaces as ``KeyboardInterrupt`` (uvicorn re-raises
    the signal it caught once the server has shut down).
    """
    import uvicorn

    from deblur_cli.serve.app import cancel_all, close
    from deblur_cli.serve.connections import ConnectionLimits, protocol_class

    options = app.state.server.options
    limits = ConnectionLimits(max_connections=options.max_connections, header_seconds=options.header_timeout)

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            cancel_all(app)  # stop running work now instead of after the grace period
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        # One HTTP implementation everywhere (h11), bounded: connections, header time, draining.
        http=protocol_class(limits),
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    try:
        _Server(config).run(sockets=[sock])
    finally:
        close(app)
        sock.close()


__all__ = ["GRACEFUL_SECONDS", "listen", "page_url", "run"]
