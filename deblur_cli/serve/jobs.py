"""The server's work queue: a bounded number of requests, one worker thread, first come first served.

A request first *reserves* a place (:meth:`WorkQueue.reserve`; refused with :class:`QueueFull`
once ``size`` places are taken), then uploads, then *submits* its work, which runs on the
queue's single worker thread in submission order. So at most one job computes at a time (one
network pass already uses every core, or most of a GPU's memory), memory is bounded by
``size`` uploads, and everyone else waits in order.

A :class:`Job` is what the page polls (``GET /api/jobs/{token}``): where it stands in the
queue, then (after loading other weights, if it asked for them) how many tiles of how many
are done and for how long it has run, from which the page estimates the time left. Cancelling a job (its client went away, or
the server is stopping) skips it if it has not started, and stops it at the next tile if it
has: the progress callback raises :class:`Cancelled` inside the engine's loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """Every place in the queue is taken (the server answers 503)."""


class Cancelled(Exception):
    """Raised inside a job's work when the job was cancelled; never reaches a client."""


@dataclass(eq=False)
class Job:
    """One request's place in a queue: ``state`` is uploading, waiting, loading (other weights
    for it: ``loading`` names them), running (since ``started``, monotonic seconds) or done."""

    token: str | None = None
    state: str = "uploading"
    done: int = 0
    total: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    loading: str | None = None

    def run_now(self) -> None:
        """The work starts (or starts again after loading): progress and time count from here."""
        self.state, self.loading, self.started = "running", None, time.monotonic()
        self.done = self.total = 0

    def load(self, what: str) -> None:
        """The work waits for ``what`` (weights) to load first."""
        self.state, self.loading = "loading", what

    def progress(self, done: int, total: int) -> None:
        """The engine's progress callback (tiles done of total); stops a cancelled job."""
        if self.cancelled.is_set():
            raise Cancelled
        self.done, self.total = done, total

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled (between steps of its work)."""
        if self.cancelled.is_set():
            raise Cancelled


class WorkQueue:
    """``size`` places; the work of submitted jobs runs one at a time, in submission order."""

    def __init__(self, size: int, name: str = "deblur-serve") -> None:
        if size < 1:
            raise ValueError(f"queue size must be at least 1, got {size}")
        self.size = size
        self._places: list[Job] = []  # reserved: uploading, waiting or running
        self._order: list[Job] = []  # submitted and not finished: [0] runs, the rest wait
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False

    # ---- places ---------------------------------------------------------------------------

    def reserve(self, token: str | None = None) -> Job:
        """A new job holding one place; QueueFull when all are taken or the queue is closed."""
        if self._closed or len(self._places) >= self.size:
            raise QueueFull
        job = Job(token)
        self._places.append(job)
        return job

    def release(self, job: Job) -> None:
        """Give the place back (idempotent); a job still waiting is cancelled."""
        if job.state != "done":
            job.cancelled.set()
        if job in self._places:
            self._places.remove(job)
        if job in self._order:
            self._order.remove(job)

    def ahead(self, job: Job) -> int:
        """How many submitted jobs will run before ``job`` (0: it runs next or now)."""
        return self._order.index(job) if job in self._order else len(self._order)

    @property
    def closed(self) -> bool:
        """True once the server is stopping: nothing new is taken."""
        return self._closed

    @property
    def taken(self) -> int:
        """Places in use (uploading, waiting or running)."""
        return len(self._places)

    @property
    def waiting(self) -> int:
        """Jobs submitted but not yet started."""
        return sum(1 for j in self._order if j.state == "waiting")

    # ---- work -----------------------------------------------------------------------------

    async def run(self, job: Job, work: Callable[[Job], T], cleanup: Callable[[], Any] | None = None) -> T:
        """Run ``work(job)`` on the worker thread once the jobs before it are done.

        ``cleanup()`` runs on the worker thread after the work, whether it ran, failed,
        was cancelled or skipped, so files the work uses are removed only once nothing
        reads them. Awaiting this may be cancelled (the client left): the job is then
        cancelled too and its place given back at once.
        """
        job.state = "waiting"
        self._order.append(job)
        future = asyncio.wrap_future(self._executor.submit(self._call, job, work, cleanup))
        future.add_done_callback(_retrieve)  # a result nobody awaits any more is not an error
        try:
            # Shielded: a cancelled wait must not cancel the thread's task before it starts,
            # or its cleanup would never run; the task sees job.cancelled and skips instead.
            result = await asyncio.shield(future)
        except BaseException:
            job.cancelled.set()
            raise
        finally:
            if job in self._order:
                self._order.remove(job)
        job.state = "done"
        return result

    @staticmethod
    def _call(job: Job, work: Callable[[Job], T], cleanup: Callable[[], Any] | None) -> T:
        try:
            job.check()  # cancelled while it waited: skip, and it costs nothing
            job.run_now()
            return work(job)
        finally:
            if cleanup is not None:
                cleanup()

    def cancel_all(self) -> None:
        """Cancel every job (the server is stopping) and refuse new ones."""
        self._closed = True
        for job in list(self._places):
            job.cancelled.set()

    def close(self) -> None:
        """Cancel everything and wait for the worker thread to finish its current step."""
        self.cancel_all()
        self._executor.shutdown(wait=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


__all__ = ["Cancelled", "Job", "QueueFull", "WorkQueue"]
