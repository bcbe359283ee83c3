"""Opening the store at start-up, failing safely: one sentence naming the path and the reason.

A store that cannot be opened (a file where its folder should be, a folder where the file should be,
missing permissions, a read-only file system, a full disk, a file that is not a database) raises
:class:`StoreUnavailable`; ``app.py`` prints its sentence and exits with status 3, without a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from .engine import Database, shown, url_of
from .migrations import NewerSchema


class StoreUnavailable(Exception):
    """The store at ``path`` cannot be opened; ``str()`` is the sentence for the operator."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot open the store {path}: {reason}")
        self.path, self.reason = path, reason


def _os_reason(path: str) -> str | None:
    """What the operating system says about writing ``path`` (the folder is checked first)."""
    p = Path(path)
    for parent in reversed(p.parents):
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder"
    if p.is_dir():
        return "it is a folder, not a file"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # SQLite creates it anyway
        os.close(fd)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def open_store(path: str, **kw: Any) -> Database:
    """The :class:`Database` at ``path`` (its folder created), migrated; :class:`StoreUnavailable` if it
    cannot be opened."""
    sqlite = url_of(path).startswith("sqlite")
    try:
        if sqlite:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = Database(path, **kw)
        if not kw.get("migrate", True):  # nothing was read yet: try once
            with db.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        return db
    except NewerSchema as exc:
        raise StoreUnavailable(shown(path), exc.reason) from None
    except (OSError, SQLAlchemyError) as exc:
        reason = _os_reason(path) if sqlite else None
        if reason is None:
            orig = getattr(exc, "orig", None) or exc
            reason = getattr(orig, "strerror", None) or str(orig).splitlines()[0]
        raise StoreUnavailable(shown(path), reason) from None
