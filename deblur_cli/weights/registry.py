"""The registry of named weights (``weights/registry.json``, bundled inside the package) and
the one rule for where a registered file is found: bundled, else the download cache, else
its URL (:func:`locate`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deblur_cli.errors import WeightsError
from deblur_cli.files.bundled import REGISTRY_FILE, weights_dir
from deblur_cli.network.architectures import NetworkConfig
from deblur_cli.progress import Progress
from deblur_cli.weights.download import cached_download, download, is_url
from deblur_cli.weights.formats import check_sha, config_from, one_line, sha256_file

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class WeightsEntry:
    """One registered set of weights."""

    name: str
    file: str  # file name inside weights_dir() (and the cache name when downloaded)
    sha256: str
    config: NetworkConfig  # of the architecture the entry names (``architecture``, default the first)
    licence: str
    provenance: str
    description: str = ""
    url: str | None = None  # optional download location if the file is not bundled


def read_registry() -> tuple[str | None, list[WeightsEntry]]:
    """(default name, entries) from ``registry.json``; a missing file is an empty registry."""
    path = weights_dir() / REGISTRY_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"weights registry {path} cannot be read: {one_line(e)}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("weights", []), list):
        raise WeightsError(f"weights registry {path} must be an object with a 'weights' list")
    entries = [_parse_entry(item, path) for item in raw.get("weights", [])]
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise WeightsError(f"weights registry {path} names {', '.join(duplicates)} more than once")
    default = raw.get("default")
    if default is not None and default not in names:
        raise WeightsError(f"weights registry {path}: default {default!r} is not a registered name")
    return default, entries


def _parse_entry(item: Any, registry: Path) -> WeightsEntry:
    where = f"weights registry {registry}"
    if not isinstance(item, dict):
        raise WeightsError(f"{where}: every entry must be an object")
    name = item.get("name", "?")
    required = ("name", "file", "sha256", "config", "licence", "provenance")
    missing = [k for k in required if k not in item]
    if missing:
        raise WeightsError(f"{where}: entry {name!r} lacks {', '.join(missing)}")
    unknown = set(item) - set(required) - {"description", "url", "architecture"}
    if unknown:
        raise WeightsError(f"{where}: entry {name!r} has unknown keys {', '.join(sorted(unknown))}")
    text_keys = ("name", "file", "sha256", "licence", "provenance", "description")
    if any(not isinstance(item.get(k, ""), str) for k in text_keys):
        raise WeightsError(f"{where}: entry {name!r} has a non-text value")
    file = item["file"]
    if not file or Path(file).name != file or file in (".", ".."):
        raise WeightsError(f"{where}: entry {name!r} file must be a plain file name, got {file!r}")
    sha = item["sha256"].lower()
    if not _SHA_RE.match(sha):
        raise WeightsError(f"{where}: entry {name!r} sha256 must be 64 hex digits")
    url = item.get("url")
    if url is not None and not (isinstance(url, str) and is_url(url)):
        raise WeightsError(f"{where}: entry {name!r} url must be an http(s) URL")
    return WeightsEntry(
        name=name,
        file=file,
        sha256=sha,
        config=config_from(item["config"], f"{where}: entry {name!r}", item.get("architecture")),
        licence=item["licence"],
        provenance=item["provenance"],
        description=item.get("description", ""),
        url=url,
    )


def list_weights() -> list[WeightsEntry]:
    """All registered weights, in registry order."""
    return read_registry()[1]


def default_weights_name() -> str | None:
    """Name of the default registered weights, or None when none is registered."""
    return read_registry()[0]


def get_entry(name: str) -> WeightsEntry:
    """The registered weights called ``name``; WeightsError listing the known names otherwise."""
    entries = list_weights()
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries) or "none registered"
    raise WeightsError(f"unknown weights {name!r} (known: {known})")


def locate(entry: WeightsEntry, *, fetch: bool = True, progress: Progress | None = None) -> Path | None:
    """The local file of ``entry``: bundled, else the download cache, else downloaded from its URL.

    The one place that rule lives. ``fetch=False`` never downloads and returns None when
    there is no local copy. The file's sha256 is not checked here (see :func:`locate_verified`).
    """
    bundled = weights_dir() / entry.file
    if bundled.is_file():
        return bundled
    if entry.url:
        if fetch:
            return download(entry.url, entry.sha256, progress=progress)
        cached = cached_download(entry.url)
        return cached if cached.is_file() else None
    if not fetch:
        return None
    raise WeightsError(
        f"weights {entry.name!r}: file {entry.file} is missing from the installation and has "
        "no download URL; reinstall deblur"
    )


def locate_verified(entry: WeightsEntry, progress: Progress | None = None) -> Path:
    """:func:`locate`, then the sha256 check; the file to load."""
    path = locate(entry, progress=progress)
    assert path is not None  # fetch=True never returns None
    check_sha(path, entry.sha256)
    return path


def download_entry(name: str, progress: Progress | None = None) -> Path:
    """Make registered weights available locally; returns the verified file."""
    return locate_verified(get_entry(name), progress)


def local_copy(entry: WeightsEntry) -> str | None:
    """Where ``entry``'s file is without downloading: ``"bundled"`` (installed with deblur),
    ``"cached"`` (downloaded earlier), or None (it must be downloaded)."""
    path = locate(entry, fetch=False)
    if path is None:
        return None
    return "bundled" if path == weights_dir() / entry.file else "cached"


def verify_all() -> list[tuple[WeightsEntry, bool, str]]:
    """Check every registered entry's bundled or cached file against its sha256."""
    results = []
    for entry in list_weights():
        path = locate(entry, fetch=False)
        if path is None:
            if entry.url:
                results.append((entry, True, "not downloaded yet (`deblur weights download`)"))
            else:
                results.append((entry, False, f"file {entry.file} is missing; reinstall deblur"))
            continue
        try:
            actual = sha256_file(path)
        except WeightsError as e:
            results.append((entry, False, e.message))
            continue
        if actual == entry.sha256:
            results.append((entry, True, f"ok ({path})"))
        else:
            results.append((entry, False, f"{path} is corrupt or tampered with: sha256 {actual}"))
    return results
