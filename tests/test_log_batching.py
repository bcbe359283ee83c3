"""Log lines reach standard error in batches: INFO lines (the access log) within the flush interval, a WARNING
or worse at once (with every line before it, in order), everything on close (a SIGTERM loses nothing)."""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.logs import BatchingStreamHandler
from tests.helpers import wait_for


def _record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("smsbridge.access", level, __file__, 1, msg, None, None)


def test_info_lines_wait_for_the_batch_a_warning_and_close_write_them_in_order(tmp_path: Path) -> None:
    path = tmp_path / "stderr.log"
    with open(path, "w", encoding="utf-8") as f:
        h = BatchingStreamHandler(f, interval=3600)  # the background flush never comes during this test
        h.handle(_record(logging.INFO, "first"))
        h.handle(_record(logging.INFO, "second"))
        assert path.read_text(encoding="utf-8") == ""  # gathered, not one write per line
        h.handle(_record(logging.WARNING, "trouble"))
        assert path.read_text(encoding="utf-8") == "first\nsecond\ntrouble\n"  # at once, in order
        h.handle(_record(logging.INFO, "last"))
        h.close()
        assert path.read_text(encoding="utf-8").endswith("trouble\nlast\n")


def test_a_quiet_moment_still_writes_what_waits_within_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "stderr.log"
    with open(path, "w", encoding="utf-8") as f:
        h = BatchingStreamHandler(f, interval=0.05)
        try:
            h.handle(_record(logging.INFO, "alone"))
            wait_for(lambda: path.read_text(encoding="utf-8") == "alone\n", timeout=5, what="the batch flushed")
        finally:
            h.close()
