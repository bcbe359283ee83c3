"""The sandbox's per-app services, built complete in one step by ``build_sandbox``."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SandboxSettings
from ..validate import Limits
from .inbound import InboundPusher
from .reports import PUSH_BATCH, DlrEngine
from .scheduler import Scheduler
from .state import SandboxState
from .v3 import V3State


@dataclass
class Sandbox:
    """What one sandbox app remembers and runs; its one scheduler serves report and inbound pushes."""

    settings: SandboxSettings
    limits: Limits
    state: SandboxState
    v3: V3State
    scheduler: Scheduler
    dlr: DlrEngine
    inbound: InboundPusher

    def reset(self) -> None:
        """Forget everything received, accepted, injected and planned (``POST /sandbox/reset``)."""
        self.scheduler.reset()
        self.state.reset()
        self.v3.reset()
        self.inbound.reset()

    def stop(self) -> None:
        """Stop the scheduler's thread and close the push sessions."""
        self.scheduler.stop()
        self.dlr.close()
        self.inbound.close()


def build_sandbox(settings: SandboxSettings, limits: Limits, inbound_url: str) -> Sandbox:
    """The services of a sandbox that pushes injected inbound messages to ``inbound_url`` ("" = pull only).

    Raises ConfigError for bad ``dlr_rules``; starts no thread (the scheduler starts on its first job)."""
    state, scheduler = SandboxState(), Scheduler(batch=PUSH_BATCH)  # reports due together share a push
    v3 = V3State()
    return Sandbox(settings=settings, limits=limits, state=state, v3=v3, scheduler=scheduler,
                   dlr=DlrEngine(state, settings, scheduler, v3),
                   inbound=InboundPusher(inbound_url, settings.push_time_scale, scheduler))
