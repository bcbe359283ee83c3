"""The sandbox's v3 send and the pull endpoints Infobip's official v6 client calls.

``POST /sms/3/messages``, ``GET /sms/3/reports`` (each report once), ``GET /sms/3/logs`` (filters,
cursor paging), and
``GET|PUT /sms/1/bulks[/status]`` for scheduled (sendAt) submissions. A message's fate is derived
when it is read: unscheduled ones are delivered at once; scheduled ones stay PENDING until their
bulk's sendAt passes (then delivered), and a canceled bulk's messages end UNDELIVERABLE with
EC_MESSAGE_CANCELED. State is in memory, per app (the Sandbox services' ``v3``).
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..entrances.querystring import parse_query
from ..ids import new_id
from ..model import ApiError, Status
from ..validate import Errors, format_datetime, parse_bool, parse_datetime, parse_enum, parse_int
from ..wire.statuses import DELIVERED_TO_HANDSET, GROUPS, PENDING_ACCEPTED, STATUSES, error_object
from ..wire.v3 import result_to_v3, submission_from_v3, v3_errors
from .common import accept, authenticate, sandbox

CANCELED = STATUSES[9]  # UNDELIVERABLE_NOT_DELIVERED, with error 4100 EC_MESSAGE_CANCELED
BULK_CHANGES = {"PAUSED": ("PENDING",), "PENDING": ("PAUSED",), "CANCELED": ("PENDING", "PAUSED")}
MCC_MNC = {"41": "22801", "385": "21901", "44": "23410", "49": "26201", "1": "310260"}
GENERAL_STATUSES = tuple(GROUPS.values())


@dataclass
class V3State:
    """Bulk overrides (rescheduled sendAt, paused/canceled), consumed reports, injected inbound."""

    bulks: dict[str, dict[str, str]] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.bulks.clear()
            self.reported.clear()


bp = Blueprint("sandbox_v3", __name__)


def _v3() -> V3State:
    return sandbox().v3


def _messages() -> list[dict[str, Any]]:
    state = sandbox().state
    with state.lock:
        return [dict(m) for m in state.messages.values()]


def _iso(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC))


def _when(value: str | None) -> datetime | None:
    return parse_datetime("sendAt", value, Errors()) if value else None


def mcc_mnc(to: str) -> str:
    for prefix in sorted(MCC_MNC, key=len, reverse=True):
        if to.startswith(prefix):
            return MCC_MNC[prefix]
    return "99999"


def _bulks(msgs: list[dict[str, Any]], v3: V3State) -> dict[str, dict[str, str]]:
    """Every scheduled bulk's effective sendAt and status (FINISHED once its sendAt has passed)."""
    now = datetime.now(UTC)
    out: dict[str, dict[str, str]] = {}
    for m in msgs:
        bulk_id = m.get("bulkId")
        if not m.get("sendAt") or not bulk_id or bulk_id in out:
            continue
        override = v3.bulks.get(bulk_id, {})
        when = _when(override.get("sendAt") or m["sendAt"])
        if when is None:
            continue
        send_at = format_datetime(when)
        status = override.get("status", "PENDING")
        if status == "PENDING" and when <= now:
            status = "FINISHED"
        out[bulk_id] = {"bulkId": bulk_id, "sendAt": send_at, "status": status}
    return out


def schedule_of(m: dict[str, Any], v3: V3State) -> tuple[str, float] | None:
    """A scheduled message's bulk status (PENDING, PAUSED, CANCELED or FINISHED) and the seconds until its
    effective sendAt (reschedules included); None for an unscheduled message. Reports wait on it."""
    if not m.get("sendAt"):
        return None
    with v3.lock:
        bulk = _bulks([m], v3).get(m.get("bulkId") or "")
    if bulk is None:
        return None
    when = _when(bulk["sendAt"])
    return bulk["status"], (when - datetime.now(UTC)).total_seconds() if when else 0.0


def _fate(m: dict[str, Any], bulks: dict[str, dict[str, str]]) -> tuple[Status, dict[str, Any], str, str | None]:
    """(status, error, sentAt, doneAt) of a stored message right now."""
    bulk = bulks.get(m.get("bulkId") or "") if m.get("sendAt") else None
    sent = _iso(m["sentAt"])
    if bulk is None:
        return DELIVERED_TO_HANDSET, error_object(0), sent, _iso(m["sentAt"] + 1)
    if bulk["status"] == "CANCELED":
        return CANCELED, error_object(4100), bulk["sendAt"], sent
    if bulk["status"] == "FINISHED":
        return DELIVERED_TO_HANDSET, error_object(0), bulk["sendAt"], bulk["sendAt"]
    return PENDING_ACCEPTED, error_object(0), bulk["sendAt"], None


def _price(m: dict[str, Any]) -> dict[str, Any]:
    return {"pricePerMessage": round(0.01 * (m.get("smsCount") or 1), 4), "currency": "EUR"}


def _platform(m: dict[str, Any]) -> dict[str, str]:
    return {k: m[k] for k in ("entityId", "applicationId") if m.get(k)}


def report_v3(m: dict[str, Any], fate: tuple[Status, dict[str, Any], str, str | None]) -> dict[str, Any]:
    status, error, sent_at, done_at = fate
    out: dict[str, Any] = {
        "bulkId": m.get("bulkId"), "price": _price(m), "status": status.to_wire(), "error": error,
        "messageId": m["messageId"], "to": m["to"], "sender": m.get("from"), "sentAt": sent_at, "doneAt": done_at,
        "messageCount": m.get("smsCount"), "mccMnc": mcc_mnc(m["to"]), "callbackData": m.get("callbackData"),
        "platform": _platform(m) or None, "campaignReferenceId": m.get("campaignReferenceId"),
    }
    return {k: v for k, v in out.items() if v is not None}


def log_v3(m: dict[str, Any], fate: tuple[Status, dict[str, Any], str, str | None]) -> dict[str, Any]:
    status, error, sent_at, done_at = fate
    out: dict[str, Any] = {
        "sender": m.get("from"), "destination": m["to"], "bulkId": m.get("bulkId"), "messageId": m["messageId"],
        "sentAt": sent_at, "doneAt": done_at, "messageCount": m.get("smsCount"), "price": _price(m),
        "status": status.to_wire(), "error": error, "platform": _platform(m) or None,
        "content": {"text": m.get("text", "")}, "campaignReferenceId": m.get("campaignReferenceId"),
        "mccMnc": mcc_mnc(m["to"]),
    }
    return {k: v for k, v in out.items() if v is not None}


def _limit(q: Any, errs: Errors) -> int:
    return parse_int("limit", q.get("limit"), 1, 1000, errs) or 50


def _bulk_id_param() -> str:
    bulk_id = parse_query(request.query_string).get("bulkId")
    if not bulk_id:
        raise ApiError.bad_request("bulkId", "is required")
    return bulk_id


def _scheduled(bulk_id: str) -> dict[str, str]:
    with _v3().lock:
        bulk = _bulks(_messages(), _v3()).get(bulk_id)
    if bulk is None:
        raise ApiError(404, "NOT_FOUND", f"No scheduled bulk with bulkId {bulk_id!r}")
    return bulk


@bp.post("/sms/3/messages")
def send_v3() -> Response:
    authenticate()
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise ApiError.bad_request("body", "must be JSON")
    errs = Errors()
    sub = submission_from_v3(body, errs)
    for mi, m in enumerate(sub.messages):
        if not m.destinations and f"messages[{mi}].destinations" not in errs.by_field:
            errs.add(f"messages[{mi}].destinations", "must not be empty")
    if sub.bulk_id is not None and not 1 <= len(sub.bulk_id) <= 100:
        errs.add("options.schedule.bulkId", "size must be between 1 and 100")
    errs.raise_if_any()
    sub.bulk_id = sub.bulk_id or new_id()  # v3 always returns a bulkId
    for m in sub.messages:  # stored in Infobip's canonical form (bad values are reported by accept)
        when = _when(m.send_at)
        m.send_at = format_datetime(when) if when else m.send_at
    try:
        result = accept(sub)
    except ApiError as exc:
        if exc.validation_errors:
            raise ApiError.invalid(v3_errors(exc.validation_errors)) from None
        raise
    extra = [(m.campaign_reference_id, m.entity_id, m.application_id) for m in sub.messages
             for _ in m.destinations]
    state = sandbox().state
    with state.lock:
        for sent, (campaign, entity, application) in zip(result.messages, extra, strict=False):
            rec = state.messages.get(sent.message_id or "")
            if rec is not None:
                rec.update({"campaignReferenceId": campaign, "entityId": entity, "applicationId": application})
    return jsonify(result_to_v3(result, include_count=sub.include_sms_count))


@bp.get("/sms/3/reports")
def reports_v3() -> Response:
    authenticate()
    q = parse_query(request.query_string)
    errs = Errors()
    limit = _limit(q, errs)
    errs.raise_if_any()
    filters = {"bulkId": q.get("bulkId"), "messageId": q.get("messageId"), "entityId": q.get("entityId"),
               "applicationId": q.get("applicationId"), "campaignReferenceId": q.get("campaignReferenceId")}
    out = []
    v3 = _v3()
    with v3.lock:
        msgs = _messages()
        bulks = _bulks(msgs, v3)
        for m in msgs:
            if len(out) >= limit:
                break
            if m["messageId"] in v3.reported or any(v and m.get(k) != v for k, v in filters.items()):
                continue
            fate = _fate(m, bulks)
            if fate[3] is None:  # not final yet: nothing to report
                continue
            v3.reported.add(m["messageId"])
            out.append(report_v3(m, fate))
    return jsonify({"results": out})


@bp.get("/sms/3/logs")
def logs_v3() -> Response:
    authenticate()
    q = parse_query(request.query_string)
    errs = Errors()
    limit = _limit(q, errs)
    general = parse_enum("generalStatus", q.get("generalStatus"), GENERAL_STATUSES, errs)
    since = parse_datetime("sentSince", q.get("sentSince"), errs)
    until = parse_datetime("sentUntil", q.get("sentUntil"), errs)
    use_cursor = parse_bool("useCursor", q.get("useCursor"), errs)
    if q.get("mnc") and not q.get("mcc"):
        errs.add("mnc", "needs mcc")
    start = 0
    if q.get("cursor"):
        try:
            start = int(base64.urlsafe_b64decode(q.get("cursor").encode()).decode())
        except (ValueError, UnicodeDecodeError):
            errs.add("cursor", "is not a cursor this API returned")
    errs.raise_if_any()
    lists = {k: {v for x in q.getall(k) for v in x.split(",") if v}
             for k in ("bulkId", "messageId", "campaignReferenceId")}
    singles = {"from": q.get("sender"), "to": q.get("destination"), "entityId": q.get("entityId"),
               "applicationId": q.get("applicationId")}
    matched = []
    v3 = _v3()
    with v3.lock:
        msgs = _messages()
        bulks = _bulks(msgs, v3)
        for m in msgs:
            if any(vals and m.get(k) not in vals for k, vals in lists.items()):
                continue
            if any(v and m.get(k) != v for k, v in singles.items()):
                continue
            code = mcc_mnc(m["to"])
            if (q.get("mcc") and code[:3] != q.get("mcc")) or (q.get("mnc") and code[3:] != q.get("mnc")):
                continue
            fate = _fate(m, bulks)
            sent = _when(fate[2])
            if (since and sent < since) or (until and sent > until) or (general and fate[0].group_name != general):
                continue
            matched.append(log_v3(m, fate))
    page = matched[start:start + limit]
    body: dict[str, Any] = {"results": page}
    if use_cursor or q.get("cursor"):
        more = start + limit < len(matched)
        body["cursor"] = {"limit": limit}
        if more:
            body["cursor"]["nextCursor"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
    return jsonify(body)


@bp.get("/sms/1/bulks")
@bp.get("/sms/1/bulks/")  # Infobip's Node SDK sends the slash
def bulk_get() -> Response:
    authenticate()
    bulk = _scheduled(_bulk_id_param())
    return jsonify({"bulkId": bulk["bulkId"], "sendAt": bulk["sendAt"]})


@bp.put("/sms/1/bulks")
@bp.put("/sms/1/bulks/")
def bulk_reschedule() -> Response:
    authenticate()
    bulk = _scheduled(_bulk_id_param())
    body = request.get_json(force=True, silent=True) or {}
    errs = Errors()
    when = parse_datetime("sendAt", body.get("sendAt"), errs) if body.get("sendAt") else None
    if when is None and "sendAt" not in errs.by_field:
        errs.add("sendAt", "is required")
    now = datetime.now(UTC)
    if when is not None and not now < when <= now + timedelta(days=180):
        errs.add("sendAt", "must be in the future and at most 180 days ahead")
    if bulk["status"] not in ("PENDING", "PAUSED"):
        errs.add("bulkId", f"bulk is {bulk['status']}: only PENDING or PAUSED bulks can be rescheduled")
    errs.raise_if_any()
    with _v3().lock:
        _v3().bulks.setdefault(bulk["bulkId"], {})["sendAt"] = format_datetime(when)  # type: ignore[arg-type]
    sandbox().dlr.replan(bulk["bulkId"])
    return jsonify({"bulkId": bulk["bulkId"], "sendAt": format_datetime(when)})  # type: ignore[arg-type]


@bp.get("/sms/1/bulks/status")
@bp.get("/sms/1/bulks/status/")
def bulk_status() -> Response:
    authenticate()
    bulk = _scheduled(_bulk_id_param())
    return jsonify({"bulkId": bulk["bulkId"], "status": bulk["status"]})


@bp.put("/sms/1/bulks/status")
@bp.put("/sms/1/bulks/status/")
def bulk_status_update() -> Response:
    authenticate()
    bulk = _scheduled(_bulk_id_param())
    body = request.get_json(force=True, silent=True) or {}
    errs = Errors()
    wanted = parse_enum("status", body.get("status"), tuple(BULK_CHANGES), errs)
    if wanted is None and "status" not in errs.by_field:
        errs.add("status", "is required: PAUSED, PENDING (resume) or CANCELED")
    elif wanted and bulk["status"] not in BULK_CHANGES[wanted]:
        errs.add("status", f"a {bulk['status']} bulk cannot become {wanted}")
    errs.raise_if_any()
    with _v3().lock:
        _v3().bulks.setdefault(bulk["bulkId"], {})["status"] = wanted  # type: ignore[assignment]
    sandbox().dlr.replan(bulk["bulkId"])
    return jsonify({"bulkId": bulk["bulkId"], "status": wanted})
