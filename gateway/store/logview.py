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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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
_PHONE = re.compile(r"[\s+().-]")


@dataclass(frozen=True)
class LogFilter:
    """What the log is narrowed to; empty strings mean "any"."""

    number: str = ""
    bulk_id: str = ""
    message_id: str = ""
    status: str = ""

    def normalized_number(self) -> str:
        """A phone number without ``+``, spaces and punctuation; an alphanumeric sender as given."""
        plain = _PHONE.sub("", self.number)
        return plain if plain.isdigit() else self.number.strip()


@dataclass
class Page:
    view: str
    rows: list[dict[str, Any]]
    page: int
    has_next: bool

    def to_dict(self) -> dict[str, Any]:
        return {"view": self.view, "page": self.page, "hasNext": self.has_next, "rows": self.rows,
                "columns": [{"name": n, "label": label} for n, label in COLUMNS[self.view]]}


def fmt(t: float | None) -> str:
    """Epoch seconds as ``2024-05-01 12:00:03`` (UTC); empty for None."""
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


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
        status = "dead" if view == "dead" else f.status
        rows = query(LogFilter(f.number, f.bulk_id, f.message_id, status), size + 1, (page - 1) * size)
        return Page(view, rows[:size], page, len(rows) > size)

    def _mask(self, text: str | None) -> str:
        return mask(text, self.mask_text, self.mask_keep)

    # -- messages ------------------------------------------------------------------------------
    def _rows(self, q: Any) -> list[Row]:
        return list(self.db.connection().execute(q).mappings())

    def messages(self, f: LogFilter, limit: int, offset: int) -> list[dict[str, Any]]:
        cols = [M.c[n] for n in ("id", "caller", "entrance", "mode", "state", "message_id", "bulk_id", "to_addr",
                                 "sender", "text", "status_group_name", "status_name", "error", "done_at", "next_at",
                                 "last_error", "created_at", "lease_until", "upstream")]
        rows = self._rows(select(*cols).where(_all(_message_where(f))).order_by(M.c.id.desc())
                          .limit(limit).offset(offset))
        ids = [r["id"] for r in rows]
        history = self._history(ids)
        replays = replays_by_row(self.db, ids)
        return [self._message(r, history.get(r["id"], []), replays.get(r["id"], 0)) for r in rows]

    def _history(self, ids: list[int]) -> dict[int, list[Row]]:
        out: dict[int, list[Row]] = {}
        if ids:
            for c in self._rows(select(status_changes).where(status_changes.c.message_row.in_(ids))
                                .order_by(status_changes.c.id)):
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
            n = f.normalized_number()
            where.append(or_(J.c.ref.in_(select(M.c.message_id).where(or_(M.c.to_addr == n, M.c.sender == n))),
                             J.c.ref.in_(select(I.c.message_id).where(or_(I.c.sender == n, I.c.receiver == n)))))
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
            n = f.normalized_number()
            where.append(or_(I.c.sender == n, I.c.receiver == n))
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


def _message_where(f: LogFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.number:
        n = f.normalized_number()
        where.append(or_(M.c.to_addr == n, M.c.sender == n))
    if f.bulk_id:
        where.append(M.c.bulk_id == f.bulk_id.strip())
    if f.message_id:
        mid = f.message_id.strip()
        where.append(or_(M.c.message_id == mid, M.c.upstream_message_id == mid))
    if f.status:
        s = f.status.strip().upper()
        where.append(or_(func.upper(func.coalesce(M.c.status_group_name, "")) == s,
                         func.upper(func.coalesce(M.c.status_name, "")) == s, func.upper(M.c.state) == s))
    return where


def _error_name(raw: str) -> str:
    """The ``name`` of a stored report error (JSON); NO_ERROR shows as nothing."""
    try:
        err = json.loads(raw)
    except ValueError:
        return raw
    name = err.get("name") if isinstance(err, dict) else None
    return "" if name in (None, "NO_ERROR") else str(name)
