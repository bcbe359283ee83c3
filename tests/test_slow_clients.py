"""Slow clients cannot starve the bridge: 200 connections holding half-sent headers or trickling a body
leave normal requests answered within a second, and are closed once their request is overdue."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import requests
import yaml

from tests.conftest import default_raw_config
from tests.helpers import wait_for
from tests.test_secrets_cli import _start

REQUEST_TIMEOUT = 3.0


def _slow_socket(host: str, port: int, i: int) -> socket.socket:
    s = socket.create_connection((host, port), timeout=5)
    if i % 2:  # headers never finished
        s.sendall(b"GET /sms/1/text/query?username=demo HTTP/1.1\r\nHost: x\r\n")
    else:  # a body announced as 1 MB, 10 bytes sent
        s.sendall(b"POST /sms/2/text/advanced HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000\r\n\r\n{\"message")
    return s


def _closed(s: socket.socket) -> bool:
    """The server closed this socket (EOF or reset), without blocking."""
    ready, _, _ = select.select([s], [], [], 0)
    if not ready:
        return False
    try:
        return s.recv(65536) == b""  # data first (an error answer), EOF on a later look
    except OSError:
        return True


def test_200_slow_connections_neither_block_requests_nor_stay_open(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    raw["server"] = {"request_timeout": REQUEST_TIMEOUT, "idle_timeout": 30}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    proc, url, output = _start(tmp_path / "config.yaml", dict(os.environ))
    socks: list[socket.socket] = []
    stop = threading.Event()
    try:
        host, port = urlsplit(url).hostname, urlsplit(url).port
        socks = [_slow_socket(host, port, i) for i in range(200)]

        def trickle() -> None:  # one more byte per socket every half second: never idle, never finished
            while not stop.wait(0.5):
                for s in socks:
                    try:
                        s.send(b"x")
                    except OSError:
                        pass

        threading.Thread(target=trickle, daemon=True).start()
        worst = 0.0
        with requests.Session() as session:
            for i in range(10):
                t0 = time.monotonic()
                r = session.get(url + "/sms/1/text/query", params={
                    "username": "demo", "password": "demo", "to": "41793026727", "text": f"normal {i}"}, timeout=5)
                worst = max(worst, time.monotonic() - t0)
                assert r.status_code == 200, r.text
        assert worst < 1.0, f"a normal request took {worst:.2f} s beside 200 slow connections"
        t_open = time.monotonic()
        wait_for(lambda: all(_closed(s) for s in socks), timeout=REQUEST_TIMEOUT + 10,
                 what="every slow connection closed by the bridge")
        assert time.monotonic() - t_open < REQUEST_TIMEOUT + 10
        # and the bridge still serves once they are gone
        r = requests.get(url + "/healthz", timeout=5)
        assert r.status_code == 200
    finally:
        stop.set()
        for s in socks:
            s.close()
        proc.terminate()
        output.text(timeout=20)


def test_limits_below_one_are_refused_by_the_configuration(tmp_path):
    from gateway.config import ConfigError, build_config

    raw = default_raw_config()
    raw["server"] = {"request_timeout": 0, "connection_limit": -1}
    try:
        build_config(raw)
    except ConfigError as e:
        text = str(e)
        assert "server.request_timeout" in text and "server.connection_limit" in text
    else:
        raise AssertionError("a zero request_timeout was accepted")
