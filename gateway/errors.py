"""Typed errors the core raises: each says what went wrong in a human sentence, nothing about HTTP.

The edge (gateway/entrances/errors.py) maps them, in one place, to an HTTP status and Infobip's
envelopes. ``ApiError`` (gateway/model.py) stays for refusals that are HTTP-level by nature (a route,
a body too large, a CSRF token) and for the wire parsers the sandbox shares with the bridge.
An upstream error carries the attempts it made, so a failed send is recorded with them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Attempt:
    """What one upstream call did (kept for the record and metrics); ``error`` is None when it succeeded."""

    api: str
    http_status: int | None
    duration_ms: float
    error: str | None = None
    upstream: str | None = None  # which configured upstream (failover): its name


class BridgeError(Exception):
    """Base of the core's errors; ``text`` is the sentence the caller reads (never a secret)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class ValidationFailed(BridgeError):
    """The request is invalid: ``errors`` maps each failing field to its reasons."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        first = next(iter(errors))
        text = f"{first}: {errors[first][0]}"
        if len(errors) > 1:
            text += f" (and {len(errors) - 1} more: see validationErrors)"
        super().__init__(text)
        self.errors = errors

    @classmethod
    def one(cls, field: str, reason: str) -> ValidationFailed:
        return cls({field: [reason]})


class NotFound(BridgeError):
    """The thing asked for does not exist (or is not the caller's to see)."""


class Conflict(BridgeError):
    """The thing exists but is not in a state that allows the request."""


class Unavailable(BridgeError):
    """The bridge itself cannot take the request now (e.g. the store is busy): retry later."""


class Throttled(BridgeError):
    """Too many failed logins from this name or address: retry after ``retry_after`` seconds."""

    def __init__(self, text: str, retry_after: float) -> None:
        super().__init__(text)
        self.retry_after = retry_after


class QueueFull(Throttled):
    """The caller's waiting messages reached ``limits.max_waiting``: retry after ``retry_after`` seconds."""


class Unauthorized(BridgeError):
    """The caller's credentials are missing or wrong."""


class Forbidden(BridgeError):
    """The caller is known but may not do this."""


class PolicyRefused(Forbidden):
    """A send outside the caller's (or template's) senders or destinations (gateway/send/policy.py): a 403 that
    names the rule, in every dialect (a dialect's own "not authorized" would hide which rule)."""


class UpstreamError(BridgeError):
    """The upstream call failed; ``attempts`` are the calls made, the failing one last."""

    def __init__(self, text: str, attempts: list[Attempt] | None = None) -> None:
        super().__init__(text)
        self.attempts: list[Attempt] = [] if attempts is None else attempts


class UpstreamUnreachable(UpstreamError):
    """No connection to the upstream (refused, failed, or not made in time): nothing was sent."""


class UpstreamTimeout(UpstreamError):
    """The upstream took the request but did not answer in time: the outcome is unknown."""


class UpstreamRefused(UpstreamError):
    """The upstream answered 4xx/5xx; ``status``, ``message_id``, ``upstream_text`` and ``errors`` are what it
    said (``errors``: its validationErrors/violations)."""

    def __init__(self, text: str, attempts: list[Attempt] | None = None, *, status: int,
                 message_id: str | None = None, upstream_text: str | None = None,
                 errors: dict[str, list[str]] | None = None, retry_after: float | None = None) -> None:
        super().__init__(text, attempts)
        self.status = status
        self.retry_after = retry_after  # the upstream's Retry-After (seconds), on a 429 or 503
        self.message_id = message_id
        self.upstream_text = upstream_text
        self.errors: dict[str, list[str]] = errors or {}


class UpstreamNonsense(UpstreamError):
    """The upstream answered something the bridge cannot read (not JSON, or not the expected shape)."""
