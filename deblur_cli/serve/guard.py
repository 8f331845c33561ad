"""Who may talk to the server, checked on the request's headers before anything else runs.

A browser lets any web page the user visits send requests to ``127.0.0.1``; two checks keep
such pages out while the server's own page, ``curl`` and scripts work as before:

* **Host** (DNS rebinding): a page of ``attacker.example`` whose name is switched to
  resolve to 127.0.0.1 reaches the server with ``Host: attacker.example``. Every request
  must name this server: ``localhost``, ``127.0.0.1``, ``[::1]``, the ``--host`` given (and
  the address it stands for, and the address the connection came in on), with the port the
  connection came in on (none only on port 80). A server bound to every address (``--host 0.0.0.0`` or ``::``) also answers to any IP
  address (an address cannot be rebound) and to this machine's own name.
* **Origin** (cross-origin requests): a page elsewhere may POST a form or a ``fetch`` to the
  API without reading the answer, which still makes the server work. Under ``/api/`` a
  request with an ``Origin`` header must come from this server (``null``, sent by sandboxed
  frames and ``data:`` pages, is refused); one without (curl, scripts, a browser's own
  same-origin GET) passes unless its ``Sec-Fetch-Site`` says another site sent it.

:func:`is_loopback` (every spelling of a loopback address) decides the command's warning.
:class:`Guard` is the ASGI middleware doing both (a refusal is the usual JSON error: 400 for
the Host, 403 for the origin) and adding the headers every answer carries (no MIME
sniffing, no framing, no referrer).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Names every server answers to (it also answers to the ``--host`` it was given).
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: ``Sec-Fetch-Site`` values of requests this server's page (or the user, typing) makes.
_OWN_SITE = frozenset({"same-origin", "none"})
_EXTRA_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def address_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` spells, in any form the system's resolver takes as an address
    (``127.1``, ``0x7f.1``, ``2130706433``, ``[::1]``, ``::ffff:127.0.0.1``); None for a name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) names an interface, not an address
    if not text or any(c.isspace() for c in text):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        try:  # the short IPv4 forms inet_aton (and so bind) accepts
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and every spelling of 127.0.0.0/8 and ::1: only this machine can connect."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    address = address_of(host)
    return address is not None and address.is_loopback


def bound_to_loopback(sock: socket.socket) -> bool:
    """True when the listening socket's own address is a loopback one (whatever ``--host`` spelled)."""
    return is_loopback(str(sock.getsockname()[0]))


def _normal(name: str) -> str:
    """A host name as compared: lower case, no IPv6 brackets, no final dot; addresses canonical."""
    text = name.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.rstrip(".")
    address = address_of(text) if text else None
    return str(address) if address is not None else text


def split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` or ``[v6][:port]`` -> (name, port or None); None when malformed."""
    if not value or any(c.isspace() or c in "/@?#\\" for c in value):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        if value.count(":") > 1:
            return None  # an IPv6 address needs its brackets in a Host header
        name, _, port_text = value.partition(":")
        port_text = port_text if ":" in value else None
    if port_text is None:
        return _normal(name), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return _normal(name), int(port_text)


@dataclass(frozen=True)
class HostRule:
    """The host names this server answers to (compared in :func:`_normal` form)."""

    names: frozenset[str]
    any_address: bool = False  # bound to every address: also any IP literal

    @classmethod
    def for_host(cls, host: str) -> HostRule:
        """The rule for a server started with ``--host host``."""
        names = set(LOCAL_NAMES) | {_normal(host)}
        address = address_of(host)
        if address is not None:
            names.add(str(address))
        every = address is not None and address.is_unspecified
        if every:  # reached from other machines by this machine's name
            machine = socket.gethostname().lower().rstrip(".")
            if machine:
                names |= {machine, machine.split(".")[0], machine.split(".")[0] + ".local"}
        return cls(frozenset(names), every)

    def allows(self, name: str, port: int | None, local_port: int | None, local_address: str | None = None) -> bool:
        """True when ``name:port`` (from :func:`split_host`) names this server on ``local_port``;
        ``local_address``, the address the connection came in on, is one of its names too (an
        address cannot be rebound)."""
        if local_port is not None and (port if port is not None else 80) != local_port:
            return False
        if name in self.names or (local_address is not None and name == _normal(local_address)):
            return True
        return self.any_address and address_of(name) is not None


def _headers(scope: dict[str, Any]) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for key, value in scope.get("headers", []):
        found.setdefault(key.lower(), []).append(value)
    return found


def _shown(value: str) -> str:
    return repr(value[:80] + ("…" if len(value) > 80 else ""))


def check(scope: dict[str, Any], rule: HostRule) -> tuple[int, str] | None:
    """(status, message) when the request must be refused; None when it may go on."""
    headers = _headers(scope)
    local_address, local_port = (scope.get("server") or (None, None))[:2]
    where = f"port {local_port}" if local_port else "this server"
    hosts = headers.get(b"host", [])
    if len(hosts) != 1:
        return 400, "a request needs exactly one Host header naming this server"
    host = hosts[0].decode("latin-1")
    parsed = split_host(host)
    if parsed is None or not rule.allows(*parsed, local_port, local_address):
        return 400, (
            f"the Host header {_shown(host)} does not name this server (localhost or 127.0.0.1 on {where}); "
            "refused to guard against DNS rebinding"
        )
    if not str(scope.get("path", "")).startswith("/api/"):
        return None  # the page and its files: anyone may load them; only the API works
    origins = headers.get(b"origin", [])
    if origins:
        origin = origins[0].decode("latin-1")
        if len(origins) > 1 or not _own_origin(origin, rule, local_port, local_address):
            return 403, (
                f"cross-origin request refused: Origin {_shown(origin)} is not this server's page; "
                "use the page this server serves, or call the API from a program (no Origin header)"
            )
        return None
    site = b",".join(headers.get(b"sec-fetch-site", [])).decode("latin-1").strip().lower()
    if site and site not in _OWN_SITE:
        return 403, f"cross-origin request refused (Sec-Fetch-Site: {_shown(site)}); use the page this server serves"
    return None


def _own_origin(origin: str, rule: HostRule, local_port: int | None, local_address: str | None) -> bool:
    """True for ``http://NAME[:PORT]`` naming this server; ``null`` and everything else is False."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme != "http" or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return False
    parsed = split_host(parts.netloc)
    return parsed is not None and rule.allows(*parsed, local_port, local_address)


class Guard:
    """ASGI middleware: :func:`check` every request; headers for every answer.

    ``refused(scope, status, message)`` is told of each refusal (the CLI prints it).
    """

    def __init__(self, app: Any, rule: HostRule, refused: Callable[[dict[str, Any], int, str], None] | None = None) -> None:
        self.app = app
        self.rule = rule
        self.refused = refused

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_EXTRA_HEADERS]}
            await send(message)

        refusal = check(scope, self.rule)
        if refusal is None:
            await self.app(scope, receive, send_with_headers)
            return
        status, text = refusal
        if self.refused is not None:
            self.refused(scope, status, text)
        body = json.dumps({"error": text}).encode()
        await send_with_headers({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send_with_headers({"type": "http.response.body", "body": body})


__all__ = ["LOCAL_NAMES", "Guard", "HostRule", "address_of", "bound_to_loopback", "check", "is_loopback", "split_host"]
