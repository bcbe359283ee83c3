"""Log lines reach standard error in batches: INFO lines (the access log) within the flush interval, a WARNING
or worse at once (with every line before it, in order), everything on close (a SIGTERM loses nothing).
Logging never waits for a stream nobody reads: lines past the buffer are dropped, counted and reported."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

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
        h._writer.join(timeout=10)  # before its descriptor's number can be another test's
        os.close(w)
        stream.close()


_CHILD = """
import logging, sys
from gateway.logs import configure
configure(fmt="json")
tag, pad = sys.argv[1], "x" * 100
sys.stdin.read(1)  # both processes log at once
for i in range(int(sys.argv[2])):
    logging.getLogger("smsbridge.access").info("%s %06d %s", tag, i, pad)
print("logged", flush=True)
logging.shutdown()
"""


def test_workers_sharing_a_pipe_never_tear_each_others_lines() -> None:
    """``--workers N``: N processes, one standard error (docker's or journald's pipe). A write to a pipe is whole
    only up to PIPE_BUF bytes: a larger one, split by a full pipe, lets the other process's bytes in."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, select.PIPE_BUF)  # the smallest pipe: every larger write is split
    n = 8000  # ~170-byte JSON lines: some 1.4 MB per process
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, tag, str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=w, env=env) for tag in "AB"]
    os.close(w)
    data = bytearray()
    try:
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"!")
            p.stdin.close()
        for p in procs:  # both have logged everything while nobody read: both writers wait in large writes
            assert p.stdout is not None and p.stdout.readline() == b"logged\n"
        while chunk := os.read(r, select.PIPE_BUF):
            data += chunk
    finally:
        os.close(r)
        for p in procs:
            p.wait(timeout=30)
            if p.stdout:
                p.stdout.close()
    assert [p.returncode for p in procs] == [0, 0]
    seen: dict[str, list[int]] = {"A": [], "B": []}
    dropped = 0
    for line in data.decode("utf-8").splitlines():
        try:
            msg = json.loads(line)["msg"]  # a torn line is no JSON object
        except ValueError:
            raise AssertionError(repr(line)) from None
        if m := re.fullmatch(r"([AB]) (\d{6}) x{100}", msg):
            seen[m.group(1)].append(int(m.group(2)))
        else:
            dropped += int(re.fullmatch(r"logging: (\d+) line\(s\) dropped since \S+Z: .*", msg).group(1))
    assert all(s == sorted(s) for s in seen.values())
    assert len(seen["A"]) + len(seen["B"]) + dropped == 2 * n


class _FailingOnce:
    """A stream (no file descriptor) whose first write raises ``error``; later writes are kept."""

    def __init__(self, error: BaseException) -> None:
        self.error: BaseException | None = error
        self.text = ""

    def write(self, text: str) -> None:
        if self.error:
            error, self.error = self.error, None
            raise error
        self.text += text

    def flush(self) -> None:
        pass


def test_an_unexpected_write_error_is_reported_as_dropped_and_the_writer_goes_on() -> None:
    stream = _FailingOnce(LookupError("an unexpected error"))
    h = BatchingStreamHandler(stream, interval=3600)  # type: ignore[arg-type]
    try:
        h.handle(_record(logging.INFO, "lost one"))
        h.handle(_record(logging.WARNING, "lost two"))
        wait_for(lambda: h._dropped == 2, timeout=5, what="the failed batch counted as dropped")
        assert h._writer.is_alive()
        h.handle(_record(logging.WARNING, "later"))
        wait_for(lambda: stream.text.endswith("later\n"), timeout=5, what="a later line written")
        assert re.fullmatch(r"logging: 2 line\(s\) dropped since \S+Z: .*\nlater\n", stream.text)
    finally:
        h.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_if_the_writer_dies_anyway_lines_are_still_written() -> None:
    stream = _FailingOnce(SystemExit())  # not an Exception: it ends the writer thread
    h = BatchingStreamHandler(stream, interval=3600)  # type: ignore[arg-type]
    try:
        h.handle(_record(logging.WARNING, "the last the writer saw"))
        wait_for(lambda: not h._writer.is_alive(), timeout=5, what="the writer ended")
        h.handle(_record(logging.INFO, "still written"))
        assert stream.text == "still written\n"
    finally:
        h.close()


class _HeldStream(_FailingOnce):
    """A stream whose first write waits until ``release`` is set: the writer stays busy with its first batch."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))
        self.error, self.release = None, threading.Event()

    def write(self, text: str) -> None:
        assert self.release.wait(10)
        self.text += text


def test_the_drop_notice_stands_where_the_lines_went_missing() -> None:
    stream = _HeldStream()
    h = BatchingStreamHandler(stream, interval=3600, limit=100)  # type: ignore[arg-type]
    try:
        h.handle(_record(logging.WARNING, "first " + "x" * 60))  # wakes the writer, which then waits in write()
        wait_for(lambda: not h._lines, timeout=5, what="the writer took the first batch")
        for i in range(20):  # the limit is reached: some of these are dropped
            h.handle(_record(logging.INFO, f"gathered {i:02d}"))
        stream.release.set()
        wait_for(lambda: h._size < 50, timeout=5, what="the first batch written, its room given back")
        h.handle(_record(logging.INFO, "after the gap"))
        h.flush()
        lines = stream.text.splitlines()
        notice = next(i for i, line in enumerate(lines) if "dropped" in line)
        assert lines[notice - 1].startswith("gathered") and lines[notice + 1:] == ["after the gap"]
    finally:
        h.close()


def test_a_stream_gone_costs_flush_and_close_no_wait() -> None:
    r, w = os.pipe()
    os.close(r)  # the supervisor is gone: every write fails (EPIPE)
    stream = open(w, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    h = BatchingStreamHandler(stream, interval=0.01)
    try:
        h.handle(_record(logging.WARNING, "nobody reads this"))
        wait_for(lambda: h._dropped, timeout=5, what="the failed write counted")
        started = time.monotonic()
        h.flush()
        h.close()
        assert time.monotonic() - started < 1  # not drain_timeout (3 s) for the lines the stream cannot take
    finally:
        h._writer.join(timeout=10)
        os.close(w)
        stream.close()
