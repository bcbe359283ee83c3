"""An online backup of the SQLite store: a consistent copy of the database, WAL included, taken while
bridges keep writing (SQLite's backup API copies page by page and restarts when a writer changed a page it
had copied, so the copy is one committed state). PostgreSQL is backed up with its own tools (pg_dump)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class BackupError(Exception):
    """The backup could not be taken; the message says why (never a traceback for the user)."""


def backup_sqlite(source: str, target: str, pages_per_step: int = 1024) -> int:
    """Copy the SQLite database ``source`` to ``target`` (which must not exist); return its size in bytes."""
    src_path, dst_path = Path(source), Path(target)
    if not src_path.is_file():
        raise BackupError(f"{source}: no database file there")
    if dst_path.exists():
        raise BackupError(f"{target}: exists already; choose a new file name")
    try:
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: cannot be opened ({exc})") from None
    try:
        dst = sqlite3.connect(dst_path)
        try:
            src.backup(dst, pages=pages_per_step)
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        dst_path.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} to {target} failed: {exc}") from None
    finally:
        src.close()
    if ok != "ok":
        dst_path.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed its integrity check: {ok}")
    return dst_path.stat().st_size
