"""The sandbox's one scheduler: a heap of due jobs and one worker thread, for its report pushes
(gateway/sandbox/reports.py) and its inbound pushes (gateway/sandbox/inbound.py) alike.

A job is a ``(kind, payload)`` due at a time; each kind has one handler, called with every payload of
that kind that is due together (up to ``batch``), so reports due together can share a push. Delays are
in the injectable clock's seconds (``now``, monotonic by default); callers scale them (Infobip's retry
cycle times ``sandbox.time_scale`` / ``push_time_scale``). ``reset()`` drops every job planned so far.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[list[Any]], None]


class Scheduler:
    """Jobs by due time, run in one daemon thread started on first use."""

    def __init__(self, now: Callable[[], float] = time.monotonic, batch: int = 100) -> None:
        self.now = now
        self.batch = batch
        self._handlers: dict[str, Handler] = {}
        self._heap: list[tuple[float, int, int, str, Any]] = []  # (due, seq, generation, kind, payload)
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._generation = 0  # bumped by reset(): jobs from before are dropped
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.ran: dict[str, int] = {}  # jobs run per kind (what the tests and /sandbox/scheduler show)

    def handle(self, kind: str, handler: Handler) -> None:
        """Run ``handler(payloads)`` for due jobs of ``kind``."""
        self._handlers[kind] = handler

    def after(self, delay: float, kind: str, payload: Any) -> None:
        """Plan a ``kind`` job ``delay`` clock seconds from now."""
        self.at(self.now() + max(0.0, delay), kind, payload)

    def at(self, due: float, kind: str, payload: Any) -> None:
        if kind not in self._handlers:
            raise ValueError(f"no handler for {kind!r} jobs")
        with self._cv:
            if self._stopped:
                return
            heapq.heappush(self._heap, (due, next(self._seq), self._generation, kind, payload))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True)
                self._thread.start()
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def reset(self) -> None:
        with self._cv:
            self._generation += 1
            self._heap.clear()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._heap.clear()
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _due(self) -> dict[str, list[Any]] | None:
        """Wait for the next due jobs, grouped by kind; None once stopped."""
        with self._cv:
            while not self._stopped and (not self._heap or self._heap[0][0] > self.now()):
                self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - self.now()))
            if self._stopped:
                return None
            now, due, taken = self.now(), {}, 0
            while self._heap and self._heap[0][0] <= now and taken < self.batch:
                _, _, generation, kind, payload = heapq.heappop(self._heap)
                if generation == self._generation:
                    due.setdefault(kind, []).append(payload)
                    taken += 1
            return due

    def _run(self) -> None:
        while (due := self._due()) is not None:
            for kind, payloads in due.items():
                self.ran[kind] = self.ran.get(kind, 0) + len(payloads)
                try:
                    self._handlers[kind](payloads)
                except Exception:  # the sandbox keeps running whatever a push does
                    log.exception("sandbox %s job failed", kind)
