"""Ids the bridge makes: Infobip-style message and bulk ids, unguessable tokens."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    """A 19-digit id in Infobip's style."""
    return str(10**18 + secrets.randbelow(9 * 10**18))


def new_ids(n: int) -> list[str]:
    """``n`` ids like :func:`new_id` from one read of the OS's random source (one syscall, not ``n``).
    Each is 10^18 + a 64-bit random value mod 9·10^18 (the modulo's bias is immaterial for unique ids)."""
    raw = secrets.token_bytes(8 * n)
    return [str(10**18 + int.from_bytes(raw[i:i + 8], "big") % (9 * 10**18)) for i in range(0, 8 * n, 8)]


def new_token() -> str:
    """An unguessable path token for the bridge's own notifyUrl (192 random bits), led by the time in
    hex microseconds so that the unique index on it grows at its end (one page per commit, not one
    random page per submission); the time is no secret, the random part is the token's strength."""
    return f"{time.time_ns() // 1000:x}{secrets.token_urlsafe(24)}"
