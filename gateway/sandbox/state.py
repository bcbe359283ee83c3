"""What the sandbox remembers: received requests, accepted messages, injected faults."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """Fault injection for tests: the next ``count`` requests fail with ``status``, and every
    request waits ``delay_ms`` first."""

    status: int | None = None
    count: int = 0
    delay_ms: int = 0


@dataclass
class SandboxState:
    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, entry: dict[str, Any]) -> None:
        entry["at"] = time.time()
        with self.lock:
            self.requests.append(entry)

    def take_fault(self) -> Faults | None:
        with self.lock:
            f = self.faults
            if f.count > 0:
                f.count -= 1
                return Faults(f.status, 1, f.delay_ms)
            return Faults(delay_ms=f.delay_ms) if f.delay_ms else None

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.messages.clear()
            self.faults = Faults()
