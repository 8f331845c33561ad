"""`deblur serve`: a local web page and HTTP API (needs the ``serve`` extra).

Thin, like every command: bind the address (a taken port fails before anything loads), load
the weights once, print the address, serve until Ctrl-C. The server is
:mod:`deblur_cli.serve`, imported inside the command only, so `deblur --help` needs neither
it nor its web packages. Registered in :mod:`deblur_cli.cli.main`.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Optional

import typer

from deblur_cli.cli.app import Quality, console, handled_errors, out, printable
from deblur_cli.cli.options import inference_options, load, locate
from deblur_cli.files.limits import MAX_PIXELS_ENV, SERVE_MAX_PIXELS
from deblur_cli.methods import InferenceOptions


@inference_options()
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but a loopback address (127.0.0.1, ::1, localhost) lets other machines in (there is no authentication). Requests must name this server in their Host header (localhost, 127.0.0.1, \\[::1] or this --host; with 0.0.0.0 also any IP address and this machine's name), and the API refuses other web sites' pages.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Refuse uploads larger than this many MB (1 MB = 2^20 bytes), before reading them.")] = 50.0,
    max_pixels: Annotated[Optional[int], typer.Option(help=f"Refuse uploads with more pixels than this, from the image header before decoding (0 = no limit). Env: {MAX_PIXELS_ENV}. \\[default: {SERVE_MAX_PIXELS:_}]")] = None,
    queue_size: Annotated[int, typer.Option(min=1, help="Requests that may be in progress at once (uploading, waiting or running); more are answered 503.")] = 16,
    upload_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds an upload may take from its headers to its last byte; a slower one is answered 408 and loses its place in the queue (an upload that stops for 60 s is answered 408 sooner).")] = 120.0,
    header_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds a request's headers may take (from the connection, or the previous answer); then 408 and the connection is closed. A kept-alive connection closes after 5 s idle; a body still arriving after the answer is read for 5 s more; an answer the client does not read for 60 s is dropped.")] = 10.0,
    max_connections: Annotated[int, typer.Option(min=1, help="Connections at once; one more is answered 503 and closed at once.")] = 64,
    quality: Quality = 95,
    *,
    inference: InferenceOptions,
) -> None:
    """Serve a web page to deblur photos (before / after view, download) and an HTTP API. Needs the \\[serve] extra.

    [bold]curl -F file=@photo.jpg http://127.0.0.1:8000/api/deblur -o sharp.jpg[/] deblurs a photo over HTTP; /api/score gives its blur score, /api/health the version, weights and device.
    """
    with handled_errors():
        from deblur_cli import serve

        serve.check_installed()
        from deblur_cli.serve.app import ServeOptions, close, create_app
        from deblur_cli.serve.guard import bound_to_loopback
        from deblur_cli.serve.server import listen, page_url, run

        options = ServeOptions(
            host=host, max_upload_mb=max_upload_mb, max_pixels=max_pixels, queue_size=queue_size, quality=quality,
            upload_timeout=upload_timeout, header_timeout=header_timeout, max_connections=max_connections,
        )
        sock = listen(host, port)  # before the weights: a taken port fails at once
        application = None
        try:
            deblurrer = load(locate(inference))
            application = create_app(deblurrer, options, on_served=_print_served, loader=_loader(inference))
            if not bound_to_loopback(sock):  # 127.1, ::1, localhost: only this machine
                console.print(
                    f"[bold yellow]warning:[/] listening on {printable(host)}: the server has no authentication; "
                    "anyone who can reach this port can use it",
                    soft_wrap=True,
                )
            info = deblurrer.weights_info
            name = inference.method if info is None else info.entry.name if info.entry is not None else info.path.name
            url = page_url(sock)
            out.print(f"deblur serve: open {url} in a browser", soft_wrap=True, markup=False)
            console.print(
                f"weights {printable(name)}, {deblurrer.device}, {deblurrer.precision}; "
                f"API: POST {url}api/deblur (field 'file'); Ctrl-C stops the server",
                soft_wrap=True,
            )
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the server stops
                run(application, sock)
            console.print("server stopped")
        finally:
            if application is not None:
                close(application)  # its uploads folder too, even when Ctrl-C came before it ran
            sock.close()


def _loader(inference: InferenceOptions):
    """Builds the runner of another choice a page or client makes (serve.choices): these
    options with that method and those registered weights, found on this machine (the server
    offers only weights it has: nothing is downloaded), loaded without a spinner."""

    def load_choice(method: str, weights: str | None):
        from dataclasses import replace

        from deblur_cli.api import Deblurrer

        return Deblurrer.from_options(replace(inference, method=method, weights=weights).located())

    return load_choice


def _print_served(served) -> None:
    """One line on stderr per finished API request."""
    colour = "green" if served.status < 400 else "red"
    console.print(
        f"[{colour}]{served.status}[/] {served.method} {printable(served.path)} "
        f"{served.seconds:.1f}s {printable(served.detail)}",
        soft_wrap=True,
    )
