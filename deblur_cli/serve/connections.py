"""Connections: how many at once, and how long each may keep the server waiting on it.

uvicorn's h11 protocol bounds none of this: a connection that sends its headers a line at a
time is held for ever (its keep-alive timer starts only after a first answer, and any byte
cancels it), so are any number of idle connections, and after an early answer (a refusal
before the body was read) it reads and drops the rest of the body however slowly it comes.
:func:`protocol_class` subclasses that protocol with :class:`ConnectionLimits`:

* at most ``max_connections`` connections at once; one more is answered 503 and closed;
* a request's headers must be complete within ``header_seconds`` of the connection being
  made (or of the previous answer on a kept-alive connection): else 408 and closed;
* after an answer, a body the client is still sending is drained for ``drain_seconds`` (so
  the client can read the answer rather than see its upload reset), then the connection
  is closed;
* an answer the client does not read for ``stall_seconds`` (the send buffer stays full)
  aborts the connection.

The upload itself has its own deadline (``--upload-timeout``, in :mod:`deblur_cli.serve.app`):
it covers the body, these cover everything around it. Headers are also bounded in size by
h11 (16 KB).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

#: Seconds an unread body is drained after the answer before the connection is closed.
DRAIN_SECONDS = 5.0
#: Seconds an answer may wait for a client that does not read it.
STALL_SECONDS = 60.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Bounds on connections; see the module's docstring. Values are positive."""

    max_connections: int = 64
    header_seconds: float = 10.0
    drain_seconds: float = DRAIN_SECONDS
    stall_seconds: float = STALL_SECONDS


def raw_answer(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer with a JSON error that closes the connection, written
    directly (outside h11's state machine: no request was parsed for it)."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def protocol_class(limits: ConnectionLimits) -> type:
    """uvicorn's h11 protocol with ``limits`` (pass it as ``uvicorn.Config(http=...)``)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class LimitedH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            self._timer: asyncio.TimerHandle | None = None
            self._draining = False
            self._stall: asyncio.TimerHandle | None = None
            self._received = 0
            over = len(self.connections) >= limits.max_connections  # before this one is counted
            super().connection_made(transport)
            if over:
                transport.write(raw_answer(
                    503, "Service Unavailable",
                    f"too many connections ({limits.max_connections}, deblur serve --max-connections); try again shortly",
                ))
                transport.close()
                return
            self._arm(limits.header_seconds, self._headers_late)

        def data_received(self, data: bytes) -> None:
            self._received += len(data)
            super().data_received(data)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers are complete: it is the app's now
                self._disarm()
            elif self._timer is not None and self._draining and self.conn.their_state is not h11.SEND_BODY:
                self._arm(limits.header_seconds, self._headers_late)  # drained: the next request may come

        def on_response_complete(self) -> None:
            cycle = self.cycle
            super().on_response_complete()
            if self.transport.is_closing() or self.cycle is not cycle:
                return  # closed, or a pipelined request already started
            if self.conn.their_state is h11.SEND_BODY:
                self._arm(limits.drain_seconds, self._close, draining=True)
            else:
                self._arm(limits.header_seconds, self._headers_late)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._stall is not None:
                self._stall.cancel()
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._stall is None:
                self._stall = self.loop.call_later(limits.stall_seconds, self.transport.abort)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._stall is not None:
                self._stall.cancel()
                self._stall = None

        # ---- timers -------------------------------------------------------------------

        def _arm(self, seconds: float, action: Any, draining: bool = False) -> None:
            self._disarm()
            self._received = 0
            self._draining = draining
            self._timer = self.loop.call_later(seconds, action)

        def _disarm(self) -> None:
            if getattr(self, "_timer", None) is not None:
                self._timer.cancel()  # type: ignore[union-attr]
            self._timer = None
            self._draining = False

        def _headers_late(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if self._received:  # part of a request came: say why it ends
                self.transport.write(raw_answer(
                    408, "Request Timeout",
                    f"the request's headers did not arrive within {limits.header_seconds:g} s (deblur serve --header-timeout)",
                ))
            self.transport.close()

        def _close(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return LimitedH11Protocol


__all__ = ["DRAIN_SECONDS", "STALL_SECONDS", "ConnectionLimits", "protocol_class", "raw_answer"]
