"""The bridge's per-app services, kept in ``app.extensions`` (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .auth import Authenticator
from .config import Config
from .render import CompiledFields
from .sender import Sender


@dataclass
class Bridge:
    config: Config
    auth: Authenticator
    sender: Sender
    templates: dict[str, CompiledFields]


def bridge() -> Bridge:
    return current_app.extensions["smsbridge"]
