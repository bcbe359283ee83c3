"""Read-only queries behind the admin UI's message log (``/ui/log``).

Five views of the record: ``messages`` (one row per destination, with its status changes),
``attempts`` (upstream attempts), ``outbox`` (report and inbound-forward jobs with their next retry
time), ``dead`` (dead letters) and ``inbound`` (received SMS). Each returns display-ready rows: a
stable ``key`` and ``cells`` (column name -> string), so the page and its polling script render the
same thing.

Nothing secret leaves here: URLs go through :func:`redact_url`, error texts through :func:`redact`,
bodies, headers, report tokens and passwords are never selected. Message texts are masked unless
``mask_text`` is off (see :func:`gateway.redact.mask`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select

from ..redact import mask, redact, redact_url
from .engine import Database
from .idempotency import replays_by_row
from .schema import inbound_messages as I
from .schema import messages as M
from .schema import outbox_jobs as J
from .schema import status_changes, submissions, upstream_attempts

Row = Mapping[str, Any]

VIEWS: tuple[tuple[str, str], ...] = (
    ("messages", "Messages"), ("attempts", "Upstream attempts"), ("outbox", "Outbox jobs"),
    ("dead", "Dead letters"), ("inbound", "Inbound"),
)
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "messages": (("created", "Submitted"), ("caller", "Caller"), ("entrance", "Entrance"), ("to", "To"),
                 ("from", "From"), ("text", "Text"), ("messageId", "messageId"), ("bulkId", "bulkId"),
                 ("state", "State"), ("upstream", "Upstream"), ("status", "Status"), ("history", "Status changes"),
                 ("done", "Done at"), ("error", "Error"), ("replays", "Retries answered")),
    "attempts": (("at", "At"), ("api", "API"), ("submission", "Submission"), ("bulkId", "bulkId"),
                 ("destinations", "Destinations"), ("http", "HTTP"), ("ms", "ms"), ("error", "Error")),
    "outbox": (("id", "Job"), ("created", "Created"), ("kind", "Kind"), ("caller", "Caller"), ("ref", "Ref"),
               ("target", "Target"), ("state", "State"), ("attempts", "Attempts"), ("next", "Next retry"),
               ("last", "Last result")),
    "inbound": (("received", "Received"), ("from", "From"), ("to", "To"), ("text", "Text"),
                ("keyword", "Keyword"), ("messageId", "messageId"), ("rule", "Rule"), ("forward", "Forward")),
}
COLUMNS["dead"] = COLUMNS["outbox"]
# The columns a view shows in its compact row; the others are details on demand (the messages view).
MAIN_COLUMNS: dict[str, tuple[str, ...]] = {"messages": ("created", "to", "status", "caller", "text")}
_PHONE = re.compile(r"[\s+().-]")
_MESSAGE_COLUMNS = ("id", "caller", "entrance", "mode", "state", "message_id", "bulk_id", "to_addr", "sender", "text",
                    "status_group_name", "status_name", "error", "done_at", "next_at", "last_error", "created_at",
                    "lease_until", "upstream")


# The values the status filter knows: Infobip's group and status names, and the record's own states.
STATUS_GROUPS = ("PENDING", "UNDELIVERABLE", "DELIVERED", "EXPIRED", "REJECTED")
STATES = ("queued", "sending", "sent", "unknown", "rejected", "failed", "expired")
JOB_STATES = ("pending", "leased", "done", "dead", "none")


@dataclass(frozen=True)
class LogFilter:
    """What the log is narrowed to; empty strings (and None times) mean "any"."""

    number: str = ""
    bulk_id: str = ""
    message_id: str = ""
    status: str = ""
    caller: str = ""
    template: str = ""
    entrance: str = ""
    text: str = ""  # a substring of the text; only where texts are not masked
    since: float | None = None  # created at or after (epoch seconds)
    until: float | None = None  # created before

    def normalized_number(self) -> str:
        """A phone number in the record's notation: digits only, without ``+`` or a leading ``00``
        (``+41 79 302 67 27``, ``0041793026727`` and ``41793026727`` are one number); an alphanumeric sender
        as given."""
        plain = _PHONE.sub("", self.number)
        if not plain.isdigit():
            return self.number.strip()
        return plain[2:] if plain.startswith("00") else plain

    def is_national(self) -> bool:
        """``079 302 67 27``: a national notation (one leading 0), matched by its digits after the 0 as the end
        of an international number."""
        n = self.normalized_number()
        return n.isdigit() and n.startswith("0") and len(n) >= 7

    def any(self) -> bool:
        return any((self.number, self.bulk_id, self.message_id, self.status, self.caller, self.template,
                    self.entrance, self.text, self.since is not None, self.until is not None))


@dataclass
class Page:
    view: str
    rows: list[dict[str, Any]]
    page: int
    has_next: bool
    total: int | None = None  # matching rows (the messages view)

    def to_dict(self) -> dict[str, Any]:
        return {"view": self.view, "page": self.page, "hasNext": self.has_next, "rows": self.rows, "total": self.total,
                "columns": [{"name": n, "label": label} for n, label in COLUMNS[self.view]]}


def fmt(t: float | None) -> str:
    """Epoch seconds as ``2024-05-01 12:00:03`` (UTC); empty for None. The minute is formatted once and
    kept (a CSV export formats hundreds of thousands of times, most in the same few minutes)."""
    if t is None:
        return ""
    s = int(t)
    return f"{_minute(s // 60)}:{s % 60:02d}"


@lru_cache(maxsize=4096)
def _minute(m: int) -> str:
    return datetime.fromtimestamp(m * 60, UTC).strftime("%Y-%m-%d %H:%M")


def _all(where: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return and_(True, *where)


class LogView:
    """The queries; instances hold only the database, the time source and the masking choice."""

    def __init__(self, db: Database, now: float, mask_text: bool = True, mask_keep: int = 3) -> None:
        self.db = db
        self.now = now
        self.mask_text = mask_text
        self.mask_keep = mask_keep

    def page(self, view: str, f: LogFilter, page: int = 1, size: int = 50) -> Page:
        """One page (1-based) of ``view``, newest first."""
        query = {"messages": self.messages, "attempts": self.attempts, "outbox": self.outbox,
                 "dead": self.outbox, "inbound": self.inbound}[view]
        f = replace(f, status="dead") if view == "dead" else f
        rows = query(f, size + 1, (page - 1) * size)
        total = self.total(f) if view == "messages" else None
        return Page(view, rows[:size], page, len(rows) > size, total)

    def total(self, f: LogFilter) -> int:
        """How many messages match ``f`` (the log's totals line)."""
        return int(self.db.connection().execute(
            select(func.count()).select_from(M).where(_all(_message_where(f)))).scalar_one())

    def totals_by_group(self, f: LogFilter) -> dict[str, int]:
        """Matching messages per status group (``""``: no status yet)."""
        q = select(M.c.status_group_name, func.count()).where(_all(_message_where(f))).group_by(M.c.status_group_name)
        return {(g or ""): int(n) for g, n in self.db.connection().execute(q)}

    def export(self, f: LogFilter, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        """Every message matching ``f``, newest first, as display cells, read in keyset chunks (no OFFSET), so
        a CSV of 100,000 rows streams without holding them."""
        cols = [M.c[n] for n in _MESSAGE_COLUMNS]
        last: int | None = None
        while True:
            where = _message_where(f) + ([M.c.id < last] if last is not None else [])
            rows = self._rows(select(*cols).where(_all(where)).order_by(M.c.id.desc()).limit(chunk))
            if not rows:
                return
            ids = [r["id"] for r in rows]
            history, replays = self._history(ids), replays_by_row(self.db, ids)
            for r in rows:
                yield self._message(r, history.get(r["id"], []), replays.get(r["id"], 0))
            last = ids[-1]

    def _mask(self, text: str | None) -> str:
        return mask(text, self.mask_text, self.mask_keep)

    # -- messages ------------------------------------------------------------------------------
    def _rows(self, q: Any) -> list[Row]:
        return list(self.db.connection().execute(q).mappings())

    def messages(self, f: LogFilter, limit: int, offset: int) -> list[dict[str, Any]]:
        cols = [M.c[n] for n in _MESSAGE_COLUMNS]
        rows = self._rows(select(*cols).where(_all(_message_where(f))).order_by(M.c.id.desc())
                          .limit(limit).offset(offset))
        ids = [r["id"] for r in rows]
        history = self._history(ids)
        replays = replays_by_row(self.db, ids)
        return [self._message(r, history.get(r["id"], []), replays.get(r["id"], 0)) for r in rows]

    def _history(self, ids: list[int]) -> dict[int, list[Row]]:
        """Status changes of the rows ``ids``; many ids are read as their id range (one plain range scan of
        the index instead of a statement with thousands of parameters), the rows outside ``ids`` dropped."""
        out: dict[int, list[Row]] = {}
        if not ids:
            return out
        sc = status_changes.c
        where = sc.message_row.in_(ids) if len(ids) <= 100 else sc.message_row.between(min(ids), max(ids))
        wanted = set(ids)
        for c in self._rows(select(status_changes).where(where).order_by(sc.id)):
            if c["message_row"] in wanted:
                out.setdefault(c["message_row"], []).append(c)
        return out

    def _message(self, r: Row, changes: list[Row], replays: int = 0) -> dict[str, Any]:
        status = r["status_group_name"] or ""
        if r["status_name"]:
            status = f"{status} ({r['status_name']})" if status else r["status_name"]
        steps = [f"{fmt(c['at'])[11:]} {c['status_name'] or c['detail'] or '?'} [{c['source']}]" for c in changes]
        error = ""
        if r["state"] in ("queued", "failed", "rejected", "unknown", "sending") and r["last_error"]:
            error = redact(r["last_error"])
        elif r["error"]:
            error = redact(_error_name(r["error"]))
        state = r["state"] + (f", next try {fmt(r['next_at'])}" if r["state"] == "queued" and r["next_at"] else "")
        if r["state"] == "unknown":  # no answer from the upstream: reconciled by a resend with the same ids
            state += f", reconciling at {fmt(r['lease_until'])}" if r["lease_until"] else ", not reconcilable (query API)"
        upstream = r["upstream"] or ""  # failover: the upstream that carried it, or that may hold it
        if upstream and r["state"] in ("queued", "sending", "unknown"):  # open: only that upstream may be asked
            upstream += " (waits for it: it may hold the message)"
        return {"key": f"m{r['id']}", "group": r["status_group_name"] or "", "cells": {
            "created": fmt(r["created_at"]), "caller": r["caller"] or "", "entrance": f"{r['entrance']} ({r['mode']})",
            "to": r["to_addr"], "from": r["sender"] or "", "text": self._mask(r["text"]),
            "messageId": r["message_id"] or "", "bulkId": r["bulk_id"] or "", "state": state, "upstream": upstream,
            "status": status,
            "history": " → ".join(steps), "done": fmt(r["done_at"]), "error": error,
            # retries (same Idempotency-Key, or a duplicate within the window) answered without a send
            "replays": f"{replays} duplicate(s), not sent again" if replays else ""}}

    # -- upstream attempts ---------------------------------------------------------------------
    def attempts(self, f: LogFilter, limit: int, offset: int) -> list[dict[str, Any]]:
        """Sync attempts belong to a submission; a queued batch's attempts only show unfiltered by
        number/bulkId/messageId (a batch spans submissions). ``status``: an HTTP code, ``ok`` or ``error``."""
        a = upstream_attempts
        where: list[ColumnElement[bool]] = []
        sub_where = _message_where(LogFilter(f.number, f.bulk_id, f.message_id))
        if sub_where:
            where.append(exists().where(M.c.submission_id == a.c.submission_id, *sub_where))
        st = f.status.strip().lower()
        if st.isdigit():
            where.append(a.c.http_status == int(st))
        elif st == "ok":
            where.append(a.c.error.is_(None))
        elif st == "error":
            where.append(a.c.error.is_not(None))
        elif st:
            where.append(false())
        rows = self._rows(select(a, submissions.c.bulk_id).select_from(
            a.outerjoin(submissions, submissions.c.id == a.c.submission_id))
            .where(_all(where)).order_by(a.c.id.desc()).limit(limit).offset(offset))
        return [{"key": f"a{r['id']}", "cells": {
            "at": fmt(r["at"]), "api": r["api"],
            "submission": f"#{r['submission_id']}" if r["submission_id"] is not None else f"batch {r['batch']}",
            "bulkId": r["bulk_id"] or "", "destinations": str(r["destinations"]),
            "http": "" if r["http_status"] is None else str(r["http_status"]), "ms": f"{r['duration_ms']:.1f}",
            "error": redact(r["error"] or "")}} for r in rows]

    # -- outbox --------------------------------------------------------------------------------
    def outbox(self, f: LogFilter, limit: int, offset: int) -> list[dict[str, Any]]:
        """Outbox jobs (delivery reports to callers, inbound forwards); ``ref`` is the messageId."""
        where: list[ColumnElement[bool]] = []
        if f.status:
            where.append(J.c.state == f.status.strip().lower())
        if f.message_id:
            where.append(J.c.ref == f.message_id.strip())
        if f.bulk_id:
            where.append(J.c.ref.in_(select(M.c.message_id).where(M.c.bulk_id == f.bulk_id.strip())))
        if f.number:
            where.append(or_(J.c.ref.in_(select(M.c.message_id).where(_number_match(f, M.c.to_addr, M.c.sender))),
                             J.c.ref.in_(select(I.c.message_id).where(_number_match(f, I.c.sender, I.c.receiver)))))
        if f.caller:
            where.append(J.c.caller == f.caller)
        if f.since is not None:
            where.append(J.c.created_at >= f.since)
        if f.until is not None:
            where.append(J.c.created_at < f.until)
        cols = [J.c[n] for n in ("id", "kind", "caller", "ref", "method", "url", "state", "attempts", "next_at",
                                 "last_status", "last_error", "created_at")]
        rows = self._rows(select(*cols).where(_all(where)).order_by(J.c.id.desc()).limit(limit).offset(offset))
        return [self._job(r) for r in rows]

    def _job(self, r: Row) -> dict[str, Any]:
        nxt = ""
        if r["state"] == "pending":
            wait = r["next_at"] - self.now
            nxt = fmt(r["next_at"]) + (f" (in {wait:.0f} s)" if wait >= 1 else " (due)")
        last = "" if r["last_status"] is None else f"HTTP {r['last_status']}"
        if r["last_error"]:
            last = f"{last}: {redact(r['last_error'])}" if last else redact(r["last_error"])
        return {"key": f"j{r['id']}", "redrive": r["id"] if r["state"] == "dead" else None, "cells": {
            "id": str(r["id"]), "created": fmt(r["created_at"]), "kind": r["kind"], "caller": r["caller"] or "",
            "ref": r["ref"] or "", "target": f"{r['method']} {redact_url(r['url'])}", "state": r["state"],
            "attempts": str(r["attempts"]), "next": nxt, "last": last}}

    # -- inbound -------------------------------------------------------------------------------
    def inbound(self, f: LogFilter, limit: int, offset: int) -> list[dict[str, Any]]:
        """Received SMS; ``status`` is the forward job's state (pending/done/dead…) or ``none``."""
        where: list[ColumnElement[bool]] = []
        if f.bulk_id:
            where.append(false())  # inbound messages have no bulkId
        if f.number:
            where.append(_number_match(f, I.c.sender, I.c.receiver))
        if f.text:
            where.append(I.c.text.contains(f.text, autoescape=True))
        if f.message_id:
            where.append(I.c.message_id == f.message_id.strip())
        st = f.status.strip().lower()
        if st == "none":
            where.append(I.c.forward_job.is_(None))
        elif st:
            where.append(J.c.state == st)
        cols = [I.c[n] for n in ("id", "message_id", "sender", "receiver", "text", "keyword", "received_at", "rule",
                                 "forward_job", "forward_error")]
        rows = self._rows(select(*cols, J.c.state.label("job_state"))
                          .select_from(I.outerjoin(J, J.c.id == I.c.forward_job))
                          .where(_all(where)).order_by(I.c.id.desc()).limit(limit).offset(offset))
        out = []
        for r in rows:
            forward = f"job {r['forward_job']}: {r['job_state']}" if r["forward_job"] is not None else ""
            if r["forward_error"]:
                forward = f"not forwarded: {redact(r['forward_error'])}"
            out.append({"key": f"i{r['id']}", "cells": {
                "received": r["received_at"], "from": r["sender"], "to": r["receiver"], "text": self._mask(r["text"]),
                "keyword": r["keyword"] or "", "messageId": r["message_id"], "rule": r["rule"] or "",
                "forward": forward}})
        return out


def _number_match(f: LogFilter, *cols: Any) -> ColumnElement[bool]:
    n = f.normalized_number()
    if f.is_national():  # 0793026727 finds 41793026727 (its digits after the 0 end the stored number)
        return or_(*(c.like("%" + n[1:]) for c in cols), *(c == n for c in cols))
    return or_(*(c == n for c in cols))


def _message_where(f: LogFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.number:
        where.append(_number_match(f, M.c.to_addr, M.c.sender))
    if f.bulk_id:
        where.append(M.c.bulk_id == f.bulk_id.strip())
    if f.message_id:
        mid = f.message_id.strip()
        where.append(or_(M.c.message_id == mid, M.c.upstream_message_id == mid))
    if f.status:
        s = f.status.strip().upper()
        where.append(or_(func.upper(func.coalesce(M.c.status_group_name, "")) == s,
                         func.upper(func.coalesce(M.c.status_name, "")) == s, func.upper(M.c.state) == s))
    if f.caller:
        where.append(M.c.caller == f.caller)
    if f.template:
        where.append(M.c.entrance == f"template:{f.template}")
    if f.entrance:
        where.append(or_(M.c.entrance == f.entrance, M.c.entrance.like(f.entrance.replace("%", "") + ":%")))
    if f.text:
        where.append(M.c.text.contains(f.text, autoescape=True))
    if f.since is not None:
        where.append(M.c.created_at >= f.since)
    if f.until is not None:
        where.append(M.c.created_at < f.until)
    return where


def _error_name(raw: str) -> str:
    """The ``name`` of a stored report error (JSON); NO_ERROR shows as nothing."""
    try:
        err = json.loads(raw)
    except ValueError:
        return raw
    name = err.get("name") if isinstance(err, dict) else None
    return "" if name in (None, "NO_ERROR") else str(name)
