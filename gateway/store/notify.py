"""Cross-process wake-ups on PostgreSQL: ``NOTIFY`` inside the transaction that makes work due, and one
listening connection per :class:`~gateway.store.engine.Database` (one per bridge process) that wakes the
idle queue and outbox workers when it hears one.

PostgreSQL delivers a ``NOTIFY`` only when its transaction commits (and folds repeats within a transaction
into one), so a woken worker always finds the work visible. A notification is a hint, never the only
path: workers still look at the store every ``store.poll_interval`` seconds, and the listener wakes every
subscriber whenever it (re)connects, because notifications sent while it was away are lost. On SQLite
:func:`notify` does nothing: the processes of a ``--workers`` bridge on one file poll, and each process
wakes its own workers in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

QUEUE = "smsbridge_queue"  # a queued message became due (accepted, handed over, released, requeued)
OUTBOX = "smsbridge_outbox"  # an outbox job became due (enqueued, redriven)
RECONNECT_SECONDS = 1.0  # the first retry after a lost connection; doubled per failure up to MAX_RECONNECT
MAX_RECONNECT_SECONDS = 30.0


def notify(conn: sa.Connection, channel: str) -> None:
    """Inside ``conn``'s open transaction: tell every listening process, once it commits, that work on
    ``channel`` is due. Nothing on SQLite."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {channel}")  # a constant of this module, never input


def driver_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg) takes it."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """A thread holding one autocommit connection that ``LISTEN``s on the subscribed channels and calls
    their subscribers (which only set an event: they must not block). Reconnects after a failure."""

    def __init__(self, url: str, connect_args: dict[str, Any]) -> None:
        self.url, self.connect_args = driver_url(url), connect_args
        self._subs: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # set while LISTENing (tests wait on it)
        self.heard = 0  # notifications received (for tests and /metrics)

    def subscribe(self, channel: str, fn: Callable[[], None]) -> None:
        """Call ``fn`` whenever ``channel`` is notified; starts the thread on first use."""
        with self._lock:
            self._subs.setdefault(channel, []).append(fn)
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and forget the subscribers."""
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout)
        with self._lock:
            self._subs = {}

    def _wake(self, channel: str | None) -> None:
        with self._lock:
            fns = [f for ch, fs in self._subs.items() if channel is None or ch == channel for f in fs]
        for fn in fns:
            fn()

    def _run(self) -> None:
        import psycopg

        pause = RECONNECT_SECONDS
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, **self.connect_args) as conn:
                    with self._lock:
                        channels = list(self._subs)
                    for ch in channels:
                        conn.execute(f"LISTEN {ch}")  # module constants only
                    self.connected.set()
                    pause = RECONNECT_SECONDS
                    self._wake(None)  # whatever was notified while nobody listened
                    while not self._stop.is_set():
                        with self._lock:
                            new = [ch for ch in self._subs if ch not in channels]
                        for ch in new:
                            conn.execute(f"LISTEN {ch}")
                            channels.append(ch)
                        for n in conn.notifies(timeout=0.5):
                            self.heard += 1
                            self._wake(n.channel)
            except Exception as exc:  # noqa: BLE001 - a lost connection: the poll covers the gap, then retry
                if not self._stop.is_set():
                    log.warning("listener: %s; reconnecting in %g s", str(exc).splitlines()[0] if str(exc) else
                                type(exc).__name__, pause)
            finally:
                self.connected.clear()
            self._stop.wait(pause)
            pause = min(MAX_RECONNECT_SECONDS, pause * 2)
