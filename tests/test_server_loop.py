"""The server's main loop does not spin while a task thread holds a channel's output lock, and output the
task thread leaves behind still reaches the client: big answers to a slow reader, pipelined requests."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.servers import HeldBack, ServerThread
from tests.helpers import wait_for

BIG = 32 << 20  # more than loopback's socket buffers hold: part of it stays in the channel's output buffer


def _app(release: threading.Event) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        path = environ["PATH_INFO"]
        if path == "/big-then-wait":
            write = start_response("200 OK", [("Content-Length", str(2 * BIG))])
            write(b"a" * BIG)  # flushed only partly: the client reads nothing yet
            release.wait(30)
            return iter([b"b" * BIG])
        body = path.encode() * 1000
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return iter([body])

    return app


@pytest.fixture
def server() -> Iterator[tuple[ServerThread, threading.Event]]:
    release = threading.Event()
    srv = ServerThread(_app(release), "127.0.0.1", 0, threads=4).start()
    yield srv, release
    release.set()
    srv.stop()


def _read_answer(sock: socket.socket, body_length: int) -> bytes:
    """One whole answer (headers and a body of ``body_length`` bytes), or what came before EOF."""
    got = bytearray()
    while (b"\r\n\r\n" not in got or len(got) - got.index(b"\r\n\r\n") - 4 < body_length):
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    return bytes(got)


def _channel(srv: ServerThread) -> Any:
    wait_for(lambda: any(getattr(c, "requests", None) and c.total_outbufs_len
                         for c in srv.server._map.values()), timeout=10)
    return next(c for c in srv.server._map.values() if getattr(c, "requests", None) and c.total_outbufs_len)


def test_no_pollout_while_a_task_holds_the_output_lock_and_output_still_arrives(server):
    srv, release = server
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"GET /big-then-wait HTTP/1.1\r\nHost: x\r\n\r\n")
        ch = _channel(srv)  # the task waits with output left in the channel's buffer
        held = threading.Event()
        done = threading.Event()

        def hold() -> None:  # stands for the task thread writing: it holds the lock
            with ch.outbuf_lock:
                held.set()
                done.wait(10)

        t = threading.Thread(target=hold)
        t.start()
        held.wait(10)
        try:
            assert ch.total_outbufs_len and ch.requests  # output left while the task runs (the client reads nothing)
            assert not ch.writable()  # the loop would find the lock taken and poll again at once
        finally:
            done.set()
            t.join()
        assert ch.writable() or not ch.total_outbufs_len  # free again: the main loop flushes what is left
        release.set()
        data = _read_answer(s, 2 * BIG)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"a" * BIG + b"b" * BIG


def test_pipelined_requests_are_answered_in_order_to_a_slow_reader(server):
    srv, _ = server
    paths = [f"/p{i}" for i in range(5)]
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))
        expected = [p.encode() * 1000 for p in paths]
        data = b""
        while data.count(b"HTTP/1.1 200") < len(paths) or not data.endswith(expected[-1]):
            chunk = s.recv(512)  # small reads: the server's output waits in its buffers
            if not chunk:
                break
            data += chunk
    bodies = [part.partition(b"\r\n\r\n")[2] for part in data.split(b"HTTP/1.1 200")[1:]]
    assert bodies == expected


def test_a_burst_past_the_threads_warns_once_with_the_count_later(caplog):
    """Waitress warns "Task queue depth is N" for each request that finds every thread busy: a burst of 40
    on 1 thread gives one line, and the next one to pass (after the interval) says how many were held back."""
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        release.wait(30)
        start_response("200 OK", [("Content-Length", "2")])
        return iter([b"ok"])

    srv = ServerThread(app, "127.0.0.1", 0, threads=1).start()
    socks = []
    try:
        with caplog.at_level("WARNING", logger="waitress.queue"):
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
            wait_for(lambda: srv.server.task_dispatcher.queue.__len__() >= 30, what="the burst queued")
            lines = [r.getMessage() for r in caplog.records if r.name == "waitress.queue"]
            assert len(lines) == 1 and lines[0].startswith("Task queue depth is"), lines
            filt = next(f for f in logging.getLogger("waitress.queue").filters if isinstance(f, HeldBack))
            filt._next = 0.0  # the interval has passed (no sleeping for 10 s)
            logging.getLogger("waitress.queue").warning("Task queue depth is %d", 1)
            last = [r.getMessage() for r in caplog.records if r.name == "waitress.queue"][-1]
            assert "held back" in last and int(last.split("(")[1].split()[0]) >= 29, last
    finally:
        release.set()
        for s in socks:
            s.close()
        srv.stop()
