"""The bridge's per-app services, kept in ``app.extensions`` (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .auth import Authenticator
from .clock import Clock
from .config import Config
from .db import Database
from .outbox import Outbox
from .render import CompiledFields
from .sender import Sender


@dataclass
class Bridge:
    config: Config
    auth: Authenticator
    sender: Sender
    templates: dict[str, CompiledFields]
    db: Database
    outbox: Outbox
    clock: Clock

    def start(self) -> None:
        """Start the background workers (explicit: creating an app starts no threads)."""
        self.outbox.start()

    def stop(self) -> None:
        self.outbox.stop()
        self.sender.upstream.close()


def bridge() -> Bridge:
    return current_app.extensions["smsbridge"]
