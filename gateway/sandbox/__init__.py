"""The embedded Infobip-compatible sandbox: ``create_sandbox_app(settings)``.

It plays Infobip for the default configuration and the tests: the same endpoints, auth, validation
and shapes, with instance state only. It records what it received (``GET /sandbox/requests``) and
can inject faults (``POST /sandbox/faults``). The sandbox's own bookkeeping lives in memory: it is a
stand-in for Infobip's platform, not part of the bridge's record, and starts empty on every start.
"""

from __future__ import annotations

from .app import create_sandbox_app

__all__ = ["create_sandbox_app"]
