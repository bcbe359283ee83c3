"""The bridge's per-app services, kept in ``app.extensions`` (no module-level state)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import current_app

from .auth import Authenticator
from .clock import Clock
from .config import Config
from .delivery.outbox import Outbox
from .render import CompiledFields
from .reports.intake import ReportIntake
from .send.dispatch import Dispatcher, QueueWorker
from .send.sender import Sender
from .store.engine import Database
from .store.records import Store

log = logging.getLogger("smsbridge")


@dataclass
class Bridge:
    config: Config
    auth: Authenticator
    sender: Sender
    templates: dict[str, CompiledFields]
    db: Database
    outbox: Outbox
    clock: Clock
    store: Store | None = None
    dispatch: Dispatcher | None = None
    queue: QueueWorker | None = None
    intake: ReportIntake | None = None
    public_url: str = ""  # how the upstream reaches this bridge (its own notifyUrl); see bind()
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def bind(self, url: str) -> None:
        """Tell the bridge the address its server really got (port 0 picks one) unless
        ``server.public_url`` is configured. Call before start()."""
        if not self.config.server.public_url:
            self.public_url = url

    def start(self) -> None:
        """Start the background workers (explicit: creating an app starts no threads)."""
        self.outbox.start()
        if self.queue is not None:
            self.queue.start()
        self._stop.clear()
        if self.store is not None and self.config.store.prune_interval > 0 and not self._threads:
            t = threading.Thread(target=self._prune_loop, name="prune", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        if self.queue is not None:
            self.queue.stop()
        self.outbox.stop()
        for t in self._threads:
            t.join(5)
        self._threads = []
        self.sender.upstream.close()

    def prune(self) -> dict[str, int]:
        assert self.store is not None
        return self.store.prune(self.config.store.retention_hours * 3600)

    def _prune_loop(self) -> None:
        while not self._stop.wait(self.config.store.prune_interval):
            try:
                counts = self.prune()
                if any(counts.values()):
                    log.info("pruned %s", ", ".join(f"{n} {k}" for k, n in counts.items() if n))
            except Exception:
                log.exception("prune failed")


def bridge() -> Bridge:
    return current_app.extensions["smsbridge"]
