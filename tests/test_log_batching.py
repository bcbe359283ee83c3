"""Log lines reach standard error in batches: INFO lines (the access log) within the flush interval, a WARNING
or worse at once (with every line before it, in order), everything on close (a SIGTERM loses nothing).
Logging never waits for a stream nobody reads: lines past the buffer are dropped, counted and reported."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
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
        wait_for(lambda: path.read_text(encoding="utf-8") == "first\nsecond\ntrouble\n", timeout=5,
                 what="the warning woke the writer")  # at once (not an hour later), in order
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


class _PipeReader:
    """Reads a pipe's read end to its end in a thread of its own, once started."""

    def __init__(self, fd: int) -> None:
        self.fd, self.data = fd, bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while chunk := os.read(self.fd, 1 << 16):
            self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8")


def test_emit_never_waits_for_an_unread_pipe_and_the_drops_are_reported(tmp_path: Path) -> None:
    r, w = os.pipe()
    stream = open(w, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    h = BatchingStreamHandler(stream, interval=0.01, limit=256 << 10)
    reader = _PipeReader(r)
    pad = "x" * 1000
    threads = [threading.Thread(target=lambda n=n: [h.handle(_record(logging.INFO, f"t{n} {i} {pad}"))
                                                    for i in range(500)] + [h.handle(_record(logging.WARNING,
                                                                                             f"t{n} done"))])
               for n in range(4)]  # 2 MB of lines, with the pipe (64 KiB) never read meanwhile
    try:
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in threads), "a logging thread waited for the pipe"
        assert time.monotonic() - started < 10
        reader.thread.start()  # the reader comes back: the writer catches up and reports the gap
        h.flush()
        h.close()
    finally:
        os.close(w)
        reader.thread.join(timeout=10)
        os.close(r)
        stream.close()
    lines = reader.text().splitlines()
    notices = [m for line in lines if (m := re.fullmatch(
        r"logging: (\d+) line\(s\) dropped since \S+Z: standard error was not being read", line))]
    assert len(notices) >= 1
    logged = [line for line in lines if line.startswith("t")]
    assert len(logged) + sum(int(m.group(1)) for m in notices) == 4 * 501  # each line written or counted
    assert len(set(logged)) == len(logged)


def test_close_gives_up_on_a_stalled_pipe_within_its_bound(tmp_path: Path) -> None:
    r, w = os.pipe()
    stream = open(w, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    h = BatchingStreamHandler(stream, interval=0.01)
    h.drain_timeout = 0.5
    try:
        for i in range(200):  # 200 KiB: the writer blocks on the full pipe
            h.handle(_record(logging.INFO, f"{i} " + "x" * 1000))
        started = time.monotonic()
        h.flush()  # as logging.shutdown does: flush, then close; together no longer than the bound
        h.close()
        assert time.monotonic() - started < 2
    finally:
        os.close(r)  # the blocked write fails (EPIPE) and the writer ends
        os.close(w)
        stream.close()
