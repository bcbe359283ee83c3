"""Test helpers: waiting on conditions with a deadline, raw HTTP for byte-exact requests."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def raw_get(host: str, port: int, target: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send a GET whose request target is exactly ``target`` (bytes as a legacy app would)."""
    lines = [b"GET " + target + b" HTTP/1.1", f"Host: {host}:{port}".encode(), b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in (headers or {}).items()]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    return status, body


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChildOutput:
    """A child process's standard output (``stdout=PIPE``, text), read by a thread of its own as it comes.

    A pipe nobody reads holds 64 KiB; past that a bridge keeps a few MiB of log lines and then drops lines
    (counted, reported once the pipe moves: gateway/logs.py), so a test that wants every line reads them as
    they come (tests/test_secrets_cli.py::test_a_bridge_whose_standard_error_nobody_reads_keeps_answering)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="child-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line)

    def search(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """The first line matching ``pattern``, waiting for it; fails if the child closes its output first."""

        def found() -> re.Match[str] | None:
            open_ = self._reader.is_alive()  # before reading the lines: no line comes after it turned False
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if not open_:
                raise AssertionError(f"the child ended without printing {pattern!r}:\n" + "".join(self.lines))
            return None

        return wait_for(found, timeout, what=pattern)

    def text(self, timeout: float = 20.0) -> str:
        """Everything the child printed, once it has exited (after ``proc.terminate()``, say); killed if it
        has not within ``timeout``."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
            raise
        self._reader.join(timeout)
        return "".join(self.lines)
