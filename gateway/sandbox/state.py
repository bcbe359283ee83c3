"""What the sandbox remembers: received requests, accepted messages, injected faults."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .faults import Fault, Faults


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

    def take_fault(self, path: str) -> Fault | None:
        return self.faults.take(path)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.messages.clear()
        self.faults.set([])
