#!/usr/bin/env python3
"""Fail when a dependency is installed below the newest release its declared range allows.

A fresh environment normally resolves to the newest releases; this check makes that a fact CI
proves rather than an accident of the resolver or a cache, so a new release that breaks us (as
PyAV 18.1.1 broke `deblur video`) fails CI the day it is published. It reads the requirements
of the installed distribution (every extra included) and asks pip which installed packages have
newer releases; a newer release that pip cannot install here (its own dependencies missing from
the index) is named but does not fail. torch is exempt: the README installs its CPU build at a pinned version, and the
declared range is wider so that users keep their own (CUDA) build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

DIST = "deblur-cli"
EXEMPT = {"torch"}


def declared() -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for line in requires(DIST) or []:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in EXEMPT:
            continue
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", "test", "video", "serve", "onnx")):
            continue  # e.g. tomli on Python < 3.11 only
        if name in out:  # the same package in several extras: the tightest range wins
            req.specifier &= out[name].specifier
        out[name] = req
    return out


def installable(name: str, version: str) -> bool:
    """Whether pip can install ``name==version`` beside what is installed (a dry run)."""
    dry = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check", f"{name}=={version}"],
        capture_output=True, text=True,
    )
    return dry.returncode == 0


def main() -> int:
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--outdated", "--format=json", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    )
    outdated = {canonicalize_name(p["name"]): p for p in json.loads(listing.stdout)}
    behind = []
    for name, req in sorted(declared().items()):
        pkg = outdated.get(name)
        if pkg and Version(pkg["latest_version"]) in req.specifier:
            if installable(name, pkg["latest_version"]):
                behind.append(f"{name} {pkg['version']} installed, {pkg['latest_version']} allowed by '{req}'")
            else:  # e.g. it needs a release of one of its own dependencies that the index lacks
                print(f"note: {name} {pkg['latest_version']} is published but cannot be installed here; {pkg['version']} tested")
    if behind:
        print("newest allowed versions not tested:\n  " + "\n  ".join(behind), file=sys.stderr)
        return 1
    print(f"every declared dependency is at the newest release its range allows ({len(declared())} checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
