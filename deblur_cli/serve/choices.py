"""What a client may choose per request: the weights (and, where the registry has several, the
method), and the runners built for those choices.

The server starts with one runner (``deblur serve --weights ... --method ...``). A request may
name, in the multipart fields ``weights`` and ``method``, registered weights that are on this
machine already (bundled, or downloaded earlier: a web request never downloads and never
names a file) and a registered method. The list comes from the weights and method registries
(:mod:`deblur_cli.weights`, :mod:`deblur_cli.methods`); ``/api/health`` shows it and the page
offers it. Another runner is built on the worker thread the first time it is asked for;
besides the starting one only the last one built is kept, so memory holds two at most.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deblur_cli import methods
from deblur_cli.serve.uploads import ServeError

#: Builds the runner of a choice: ``loader(method, weights)``; ``weights`` is a registered
#: name, or None for a method without weights. Called on the worker thread.
Loader = Callable[[str, "str | None"], Any]


@dataclass(frozen=True)
class Choice:
    """One request's method and weights (a registered name, the starting runner's label, or None)."""

    method: str
    weights: str | None


def weights_label(runner: Any) -> str | None:
    """How a runner's weights are named to clients: the registered name, else the file's name."""
    info = getattr(runner, "weights_info", None)
    if info is None:
        return None
    entry = getattr(info, "entry", None)
    return entry.name if entry is not None else info.path.name


def local_weights() -> list[str]:
    """Registered weights with a file on this machine (bundled or downloaded), in registry order."""
    from deblur_cli.weights.registry import list_weights, locate

    return [entry.name for entry in list_weights() if locate(entry, fetch=False) is not None]


class Choices:
    """The choices one server offers, and the runner of each (see the module docstring)."""

    def __init__(self, runner: Any, loader: Loader | None, method: str | None = None) -> None:
        started = getattr(getattr(runner, "options", None), "method", methods.DEFAULT_METHOD)
        self.default = Choice(method or str(started), weights_label(runner))
        self._runner = runner
        self._loader = loader
        self._last: tuple[Choice, Any] | None = None
        if loader is None:  # a fixed runner (the Python API's tests): nothing else to offer
            self.methods = [self.default.method]
            self.weights = [self.default.weights] if self.default.weights else []
        else:
            self.methods = [self.default.method] + [m for m in methods.names() if m != self.default.method]
            others = [name for name in local_weights() if name != self.default.weights]
            self.weights = ([self.default.weights] if self.default.weights else []) + others

    def offered(self) -> dict[str, object]:
        """For /api/health: ``{"weights": [...], "methods": [...], "methods_without_weights": [...]}``,
        the starting ones first (a method without weights takes no ``weights`` field)."""
        return {
            "weights": list(self.weights),
            "methods": list(self.methods),
            "methods_without_weights": [m for m in self.methods if not methods.get(m).needs_weights],
        }

    def pick(self, fields: Mapping[str, str]) -> Choice:
        """The choice a request's fields make (empty or absent: the server's own); ServeError 400
        for a method or weights this server does not offer."""
        method = fields.get("method") or self.default.method
        weights = fields.get("weights") or None
        if method == self.default.method and weights in (None, self.default.weights):
            return self.default
        if method not in self.methods:
            raise ServeError(400, f"unknown method {method[:40]!r}; this server offers {', '.join(self.methods)}")
        if not methods.get(method).needs_weights:
            if weights is not None:
                raise ServeError(400, f"the {method} method uses no weights; leave the field 'weights' out")
            return Choice(method, None)
        weights = weights or (self.weights[0] if self.weights else None)
        if weights not in self.weights:
            offered = ", ".join(self.weights) or "none"
            raise ServeError(400, f"weights {str(weights)[:40]!r} are not offered by this server; choose one of: {offered}")
        return Choice(method, weights)

    def runner(self, choice: Choice, loading: Callable[[], None] | None = None) -> Any:
        """The runner for ``choice``, built now if need be (``loading()`` is called first).
        Runs on the worker thread, one call at a time."""
        if choice == self.default:
            return self._runner
        if self._last is not None and self._last[0] == choice:
            return self._last[1]
        assert self._loader is not None  # pick() offers nothing else without a loader
        self._last = None  # let the previous one go before the next loads
        if loading is not None:
            loading()
        runner = self._loader(choice.method, choice.weights)
        self._last = (choice, runner)
        return runner


__all__ = ["Choice", "Choices", "Loader", "local_weights", "weights_label"]
