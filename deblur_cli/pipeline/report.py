"""What `deblur image` and `deblur batch` did, as one JSON document (``--json FILE`` or
``--json -``): every input with its output and what became of it, for scripts.

The document (``REPORT_VERSION`` 1)::

    {"version": 1, "command": "batch", "method": "network", "weights": "k3-v3",
     "device": "cpu", "precision": "bf16", "seconds": 12.3,
     "files": [{"input": "a.jpg", "output": "out/a.jpg", "status": "written", "notes": []},
               {"input": "b.jpg", "output": "out/b.jpg", "status": "skipped", "reason": "output exists"},
               {"input": "c.jpg", "status": "failed", "reason": "... is corrupt or truncated: ..."},
               {"input": "d.jpg", "status": "left alone", "reason": "blur score 0.210 <= threshold 0.35"}],
     "counts": {"written": 1, "skipped": 1, "failed": 1, "left alone": 1}}

Paths are written as given (``shown`` maps them, e.g. to "standard input"); file names that are
not valid UTF-8 keep their bytes as ``\\udcXX`` escapes, as Python's ``os.fsdecode`` gives them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from deblur_cli.errors import OutputError
from deblur_cli.files.paths import FileSet, check_output_file
from deblur_cli.pipeline.batch_run import BatchResult
from deblur_cli.pipeline.image import Plan

REPORT_VERSION = 1
STATUSES = ("written", "skipped", "failed", "left alone")


def report(
    command: str,
    result: BatchResult,
    *,
    run: dict[str, Any],
    seconds: float,
    shown: Callable[[Path], str | Path] = lambda p: p,
) -> dict[str, Any]:
    """The document of a finished run. ``run``: what ran it (method, weights, device, precision)."""
    notes: dict[str, list[str]] = {}
    for src, note in result.notes:
        notes.setdefault(str(src), []).append(note)

    def entry(src: Path, status: str, output: Path | None = None, reason: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"input": str(shown(src)), "status": status}
        if output is not None:
            doc["output"] = str(shown(output))
        if reason is not None:
            doc["reason"] = reason
        if status == "written":
            doc["notes"] = notes.get(str(src), [])
        return doc

    files = [
        *(entry(s, "written", d) for s, d in result.processed),
        *(entry(s, "skipped", d, "output exists") for s, d in result.skipped),
        *(entry(s, "failed", reason=why) for s, why in result.failed),
        *(entry(s, "left alone", reason=why) for s, why in result.left_alone),
    ]
    counts = {status: sum(f["status"] == status for f in files) for status in STATUSES}
    return {"version": REPORT_VERSION, "command": command, **run, "seconds": round(seconds, 3), "files": files, "counts": counts}


def check_report_output(path: Path, plan: Plan, overwrite: bool) -> None:
    """The report's file follows the one output rule set (never an input, an existing file
    only with ``overwrite``, its folder made when missing), and is none of the run's images."""
    if FileSet(plan.outputs).find(Path(path)) is not None:
        raise OutputError(f"--json {path} is also an image output of this run; choose another name")
    check_output_file(Path(path), FileSet(src for src, _ in plan.jobs), overwrite, create_folder=True)


def single(src: Path, dst: Path, notes: Iterable[tuple[Path, str]]) -> BatchResult:
    """A one-image run as a :class:`BatchResult` (written, with its notes), for :func:`report`."""
    return BatchResult(processed=[(src, dst)], notes=list(notes))


def to_text(doc: dict[str, Any]) -> str:
    """The document as JSON text, one trailing newline; strict (no NaN)."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"  # ASCII: undecodable names stay \udcXX escapes
