"""Reports in the record: the messages a report names, storing a report once, the report pulls and
the v3 log query. Rows leave this module as :class:`StoredMessage` and :class:`~gateway.model.Report`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..model import Price, Report, ReportError, Status
from ..wire.reports import (
    error_from_wire,
    error_to_wire,
    price_from_wire,
    price_to_wire,
    report_from_wire,
    report_v1,
)
from .dialects import INSERTS
from .engine import Connection, Database, Prepared
from .records import FINAL_GROUPS
from .schema import messages, reports, status_changes, submissions

_CHUNK = 500  # ids per IN (...) lookup (SQLite allows 32,766 parameters; this keeps statements small)
m = messages.c

#: filters on a single message column, by v3 query parameter
COLUMNS = {"entityId": m.entity_id, "applicationId": m.application_id,
           "campaignReferenceId": m.campaign_reference_id, "sender": m.sender, "destination": m.to_addr,
           "generalStatus": m.status_group_name}
LISTS = {"bulkId": m.bulk_id, "messageId": m.message_id, "campaignReferenceId": m.campaign_reference_id}


@dataclass(slots=True)
class StoredMessage:
    """A message row as the report and log flows need it (the report's target)."""

    id: int
    caller: str | None
    entrance: str
    message_id: str | None
    bulk_id: str | None
    upstream_message_id: str | None
    to: str
    sender: str | None
    text: str
    notify_url: str | None
    notify_content_type: str | None
    callback_data: str | None
    intermediate: bool
    callback: str | None
    sms_count: int | None
    status: Status | None
    error: ReportError | None
    price: Price | None
    mcc_mnc: str | None
    send_at: float | None
    sent_at: float | None
    done_at: float | None
    created_at: float
    entity_id: str | None
    application_id: str | None
    campaign_reference_id: str | None


#: the columns of a StoredMessage, in the order _stored unpacks them (unpacking a row is ~10x faster than
#: reading 26 attributes: this runs once per report)
_COLS = (m.id, m.caller, m.entrance, m.message_id, m.bulk_id, m.upstream_message_id, m.to_addr, m.sender, m.text,
         m.notify_url, m.notify_content_type, m.callback_data, m.intermediate, m.callback, m.sms_count,
         m.status_group_id, m.status_group_name, m.status_id, m.status_name, m.status_description, m.error, m.price,
         m.mcc_mnc, m.send_at, m.sent_at, m.done_at, m.created_at, m.entity_id, m.application_id,
         m.campaign_reference_id)


def _stored(row: Sequence[Any]) -> StoredMessage:
    (id_, caller, entrance, message_id, bulk_id, upstream_id, to, sender, text, notify_url, notify_type, cb_data,
     intermediate, callback, sms_count, gid, gname, sid, sname, sdesc, error, price, mcc_mnc, send_at, sent_at,
     done_at, created_at, entity_id, application_id, campaign_reference_id) = row
    return StoredMessage(
        id_, caller, entrance, message_id, bulk_id, upstream_id, to, sender, text, notify_url, notify_type, cb_data,
        bool(intermediate), callback, sms_count,
        None if sid is None else Status(gid, gname, sid, sname, sdesc or ""),
        error_from_wire(json.loads(error)) if error else None, price_from_wire(json.loads(price)) if price else None,
        mcc_mnc, send_at, sent_at, done_at, created_at, entity_id, application_id, campaign_reference_id,
    )


def submission_by_token(db: Database, token: str) -> int | None:
    """The id of the submission a report address (``dlr_token``) belongs to."""
    sid = db.connection().execute(
        sa.select(submissions.c.id).where(submissions.c.dlr_token == token)).scalar_one_or_none()
    return None if sid is None else int(sid)


_BY_UPSTREAM_ID = Prepared(sa.select(*_COLS).where(
    m.submission_id == sa.bindparam("sid"), m.upstream_message_id.in_(sa.bindparam("ids", expanding=True)),
).order_by(m.id), expanding="ids")
_BY_OWN_ID = Prepared(sa.select(*_COLS).where(
    m.submission_id == sa.bindparam("sid"), m.upstream_message_id.is_(None),
    m.message_id.in_(sa.bindparam("ids", expanding=True)),
).order_by(m.id), expanding="ids")


def messages_for_reports(c: Connection, submission_id: int, ids: Sequence[str]) -> dict[str, StoredMessage]:
    """The submission's messages by the id a report names: the upstream's messageId, or the bridge's
    own while the upstream's is not known (for a whole body at once, through the ``messages_report``
    index; the first row wins)."""
    wanted = sorted(set(ids))
    out: dict[str, StoredMessage] = {}
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i:i + _CHUNK]
        for row in _BY_UPSTREAM_ID.run(c, {"sid": submission_id, "ids": chunk}):
            if row[5] not in out:  # upstream_message_id
                out[row[5]] = _stored(row)
        rest = [x for x in chunk if x not in out]
        if rest:
            for row in _BY_OWN_ID.run(c, {"sid": submission_id, "ids": rest}):
                if row[3] not in out:  # message_id
                    out[row[3]] = _stored(row)
    return out


def message_by_row(c: Connection, row_id: int) -> StoredMessage | None:
    row = c.execute(sa.select(*_COLS).where(m.id == row_id)).first()
    return None if row is None else _stored(row)


def messages_with_channel(c: Connection, row_ids: Sequence[int], *prefixes: str) -> list[StoredMessage]:
    """Of ``row_ids``, the messages whose report channel (``callback``) starts with one of ``prefixes`` (a
    dialect's DLR, e.g. Kannel's dlr-url: gateway/delivery/kannel.py); usually none, in one query per chunk."""
    out: list[StoredMessage] = []
    ids = sorted(set(row_ids))
    wanted = sa.or_(*(m.callback.like(p + "%") for p in prefixes))
    for i in range(0, len(ids), _CHUNK):
        out += [_stored(row) for row in c.execute(sa.select(*_COLS).where(
            m.id.in_(ids[i:i + _CHUNK]), wanted).order_by(m.id))]
    return out


# Built once (a statement built per call costs more than running it), run once per batch of reports.
_B = sa.bindparam
_INSERT_REPORTS = {d: ins(reports).on_conflict_do_nothing(index_elements=["dedupe"]).returning(reports.c.dedupe)
                   for d, ins in INSERTS.items()}
_CHANGE_KEYS = ("message_row", "at", "source", "status_name", "group_name", "detail")
_INSERT_CHANGES = Prepared(sa.insert(status_changes), keys=_CHANGE_KEYS)
_SET_STATUS = Prepared(sa.update(messages).where(m.id == _B("row")).values(
    status_group_id=_B("gid"), status_group_name=_B("gname"), status_id=_B("sid"), status_name=_B("sname"),
    status_description=_B("sdesc"), error=_B("err"), price=sa.func.coalesce(_B("price", type_=sa.Text), m.price),
    mcc_mnc=sa.func.coalesce(_B("mcc_mnc", type_=sa.Text), m.mcc_mnc),
    done_at=sa.func.coalesce(_B("done", type_=sa.Double), m.done_at), updated_at=_B("now")))


def record_reports(c: Connection, items: Sequence[tuple[StoredMessage, Report]], now: float) -> list[bool]:
    """Store each report for its message (at most one report per message in ``items``); per item,
    False if it is a duplicate. A final report sets the message's status; an intermediate one only
    while no final status is known. Three statements for the whole batch."""
    if not items:
        return []
    rows = []
    for msg, report in items:
        status, body = report.status, report_v1(report)
        rows.append({"message_row": msg.id, "caller": msg.caller, "intermediate": int(report.intermediate),
                     "dedupe": f"{msg.id}|{status.id if status else None}|{body.get('doneAt')}|"
                               f"{int(report.intermediate)}",
                     "body": json.dumps(body, ensure_ascii=False), "received_at": now})
    inserted = set(c.execute(_INSERT_REPORTS[c.dialect.name], rows).scalars())
    stored = [row["dedupe"] in inserted for row in rows]
    changes, updates = [], []
    for (msg, report), new in zip(items, stored, strict=True):
        if not new:
            continue
        status = report.status
        changes.append((msg.id, now, "report", status.name if status else None,
                        status.group_name if status else None, "intermediate" if report.intermediate else "final"))
        if report.intermediate and msg.status is not None and msg.status.group_name in FINAL_GROUPS:
            continue
        err, price = report.error, report.price
        updates.append({
            "row": msg.id, "gid": status.group_id if status else None, "gname": status.group_name if status else None,
            "sid": status.id if status else None, "sname": status.name if status else None,
            "sdesc": status.description if status else None, "err": json.dumps(error_to_wire(err)) if err else None,
            "price": json.dumps(price_to_wire(price)) if price else None, "mcc_mnc": report.mcc_mnc,
            "done": None if report.intermediate else report.done_at, "now": now})
    if changes:
        _INSERT_CHANGES.many(c, changes)
    if updates:
        _SET_STATUS.many(c, updates)
    return stored


def _where(caller: str, singles: Mapping[str, str | None], lists: Mapping[str, Sequence[str]]) -> list[Any]:
    where: list[Any] = [m.caller == caller]
    where += [COLUMNS[key] == value for key, value in singles.items() if value]
    where += [LISTS[key].in_(list(values)) for key, values in lists.items() if values]
    return where


def pull_reports(db: Database, now: float, caller: str, singles: Mapping[str, str | None],
                 lists: Mapping[str, Sequence[str]], limit: int) -> list[Report]:
    """The caller's final reports not pulled yet (by either generation), oldest first; each once."""
    r = reports.c
    where = [*_where(caller, singles, lists), r.caller == caller, r.pulled_at.is_(None), r.intermediate == 0]
    query = (sa.select(r.id, r.body, m.entity_id, m.application_id, m.campaign_reference_id)
             .select_from(reports.join(messages, m.id == r.message_row)).where(*where).order_by(r.id).limit(limit)
             # PostgreSQL: reports another instance's pull is taking are skipped, so each goes out once across
             # the cluster (SQLite renders no FOR UPDATE: BEGIN IMMEDIATE already makes pulls one at a time)
             .with_for_update(of=reports, skip_locked=True))
    with db.transaction() as c:
        rows = c.execute(query).all()
        if rows:
            c.execute(sa.update(reports).where(r.id.in_([row.id for row in rows])).values(pulled_at=now))
    out = []
    for row in rows:
        report = report_from_wire(json.loads(row.body))
        report.entity_id, report.application_id = row.entity_id, row.application_id
        report.campaign_reference_id = row.campaign_reference_id
        out.append(report)
    return out


def logged_messages(db: Database, caller: str, f: Mapping[str, Any], limit: int,
                    before: int | None = None) -> list[StoredMessage]:
    """Up to ``limit`` of the caller's messages with row id below ``before``, newest first, filtered
    like ``GET /sms/3/logs``; sends that never reached the upstream are no log."""
    singles = {k: f.get(k) for k in ("entityId", "applicationId", "sender", "destination", "generalStatus")}
    lists = {k: f.get(k) or [] for k in LISTS}
    where = [*_where(caller, singles, lists), m.state != "failed"]
    sent = sa.func.coalesce(m.sent_at, m.created_at)
    if f.get("mcc"):
        where.append(sa.func.substr(m.mcc_mnc, 1, 3) == f["mcc"])
    if f.get("mnc"):
        where.append(sa.func.substr(m.mcc_mnc, 4) == f["mnc"])
    if f.get("sentSince") is not None:
        where.append(sent >= f["sentSince"])
    if f.get("sentUntil") is not None:
        where.append(sent <= f["sentUntil"])
    if before is not None:
        where.append(m.id < before)
    rows = db.connection().execute(sa.select(*_COLS).where(*where).order_by(m.id.desc()).limit(limit))
    return [_stored(r) for r in rows]
