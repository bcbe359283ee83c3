"""``app.py --workers N``: N bridge processes serving one listening socket.

The parent binds and listens once (connections queue in the kernel while a child starts), runs the
embedded sandbox when configured (once, not N times), migrates the store and makes leased queue
rows due again (once, before any child exists), then spawns N children (``python app.py serve``
with the socket's descriptor inherited, see :data:`LISTEN_FD`). Each child is a complete bridge:
HTTP server, queue and outbox workers, pruning (once per interval for all processes: gateway/store/periodic.py).

Stopping: SIGTERM/SIGINT to the parent stops every child (SIGTERM, then SIGKILL after
``grace`` seconds) and the parent exits. A child that dies unexpectedly is restarted (like nginx's
master; its leased work comes back when the leases expire); more than ``MAX_RESTARTS`` deaths in
``RESTART_WINDOW`` seconds stop everything with exit status 1 (a crash loop is not service). A
child whose parent disappears (``kill -9`` of the parent) stops itself.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

log = logging.getLogger("smsbridge.supervisor")

LISTEN_FD = "SMSBRIDGE_LISTEN_FD"  # set by the parent: the inherited listening socket's descriptor
UPSTREAM_URL = "SMSBRIDGE_UPSTREAM_URL"  # the parent's embedded sandbox (empty: upstream.base_url)
UI_SECRET = "SMSBRIDGE_WORKERS_UI_SECRET"  # the admin UI's cookie key when ui.secret_key is empty: one for all
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


class Supervisor:
    """Spawn, watch and stop the children (see the module docstring)."""

    def __init__(self, argv: Sequence[str], workers: int, fd: int, env: dict[str, str], grace: float = 30.0):
        self.argv, self.workers, self.fd, self.env, self.grace = list(argv), workers, fd, env, grace
        self.children: list[subprocess.Popen | None] = [None] * workers
        self._deaths: list[float] = []

    def spawn(self, i: int) -> None:
        env = {**os.environ, **self.env, LISTEN_FD: str(self.fd)}
        self.children[i] = subprocess.Popen(self.argv, env=env, pass_fds=(self.fd,))
        log.info("worker %d started (pid %d)", i, self.children[i].pid)

    def run(self, stop: threading.Event) -> int:
        """Serve until ``stop`` is set (or KeyboardInterrupt: SIGTERM/SIGINT); 0, or 1 after a crash loop."""
        status = 0
        try:
            for i in range(self.workers):
                self.spawn(i)
            while not stop.wait(0.2):
                if not self._reap():
                    status = 1
                    break
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_all()
        return status

    def _reap(self) -> bool:
        """Restart children that died; False when they die too often."""
        for i, child in enumerate(self.children):
            if child is None or child.poll() is None:
                continue
            code = child.returncode
            why = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if t > now - RESTART_WINDOW] + [now]
            if len(self._deaths) > MAX_RESTARTS:
                log.error("worker %d (pid %d) died (%s): more than %d deaths in %.0f s, stopping every worker",
                          i, child.pid, why, MAX_RESTARTS, RESTART_WINDOW)
                return False
            log.warning("worker %d (pid %d) died (%s); restarting it", i, child.pid, why)
            self.spawn(i)
        return True

    def stop_all(self) -> None:
        """SIGTERM to every child, SIGKILL to those still alive after ``grace`` seconds."""
        alive = [c for c in self.children if c is not None and c.poll() is None]
        for c in alive:
            try:
                c.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.grace
        for c in alive:
            try:
                c.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop within %.0f s: killed", c.pid, self.grace)
                c.kill()
                c.wait()


def watch_parent(interval: float = 1.0) -> None:
    """In a child: stop (SIGTERM to itself) when the parent is gone, so no orphan keeps serving."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def child_argv(app_path: str, config: str) -> list[str]:
    return [sys.executable, app_path, "--config", config, "serve"]
