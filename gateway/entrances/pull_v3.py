"""The v3 pulls (``GET /sms/3/reports``, ``GET /sms/3/logs``) and the scheduled-bulk calls
(``GET|PUT /sms/1/bulks[/status]``), each for the caller's own messages only.

Scheduled bulks are held by the upstream, as on Infobip: a send with ``sendAt`` is forwarded at once
(sync) or by the queue worker (queued) with its sendAt and the caller's bulkId, and the bulk calls are
proxied upstream after the bridge has checked that the bulk is the caller's (404 otherwise, without
asking the upstream). A rescheduled sendAt is written back to the record, so the logs show it. A bulk
still in the bridge's queue (upstream not reached yet) can be read (from the record) but not changed
(503, retry). v3 paths answer errors in the v3 envelope; the v1 bulk paths in the legacy one.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from ..config import Caller
from ..context import bridge
from ..dlr import fmt_time, parse_time
from ..formats import JSON, render
from ..model import ApiError
from ..pull_v3 import decode_cursor, logs, pull_reports
from ..statuses import GROUPS
from ..validate import Errors, format_datetime, parse_bool, parse_datetime, parse_enum
from .common import authenticate, param_list, pull_limit, request_params

bp = Blueprint("pull_v3", __name__)

BULK_STATUSES = ("PENDING", "PAUSED", "CANCELED")


def _auth(scope: str) -> Caller:
    g.fmt = JSON
    return authenticate(None, scope)


@bp.get("/sms/3/reports")
def reports_v3() -> Response:
    caller = _auth("reports")
    params = request_params()
    errs = Errors()
    limit = pull_limit(params, errs)
    errs.raise_if_any()
    singles = {k: params.get(k) for k in ("entityId", "applicationId", "campaignReferenceId")}
    lists = {k: param_list(params, k) for k in ("bulkId", "messageId")}
    return render({"results": pull_reports(bridge().store, caller.name, singles, lists, limit)}, JSON, "reports")


@bp.get("/sms/3/logs")
def logs_v3() -> Response:
    caller = _auth("logs")
    params = request_params()
    errs = Errors()
    limit = pull_limit(params, errs)
    since = parse_datetime("sentSince", params.get("sentSince"), errs)
    until = parse_datetime("sentUntil", params.get("sentUntil"), errs)
    status = parse_enum("generalStatus", (params.get("generalStatus") or "").upper() or None,
                        tuple(GROUPS.values()), errs)
    use_cursor = parse_bool("useCursor", params.get("useCursor"), errs)
    if params.get("mnc") and not params.get("mcc"):
        errs.add("mnc", "needs mcc")
    before = None
    if params.get("cursor"):
        before = decode_cursor(params.get("cursor") or "")
        if before is None:
            errs.add("cursor", "is not a cursor this API returned")
    errs.raise_if_any()
    filters: dict[str, Any] = {
        "sender": params.get("sender"), "destination": (params.get("destination") or "").strip().lstrip("+") or None,
        "generalStatus": status, "entityId": params.get("entityId"), "applicationId": params.get("applicationId"),
        "mcc": params.get("mcc"), "mnc": params.get("mnc"),
        "bulkId": param_list(params, "bulkId"), "messageId": param_list(params, "messageId"),
        "campaignReferenceId": param_list(params, "campaignReferenceId"),
        "sentSince": since.timestamp() if since else None, "sentUntil": until.timestamp() if until else None,
    }
    page, nxt = logs(bridge().store, caller.name, filters, limit, before)
    body: dict[str, Any] = {"results": page}
    if use_cursor or before is not None:
        body["cursor"] = {"limit": limit, **({"nextCursor": nxt} if nxt else {})}
    return render(body, JSON, "logs")


# -- scheduled bulks ------------------------------------------------------------------------------
def _bulk(caller: Caller) -> tuple[str, list[Any]]:
    bulk_id = request_params().get("bulkId")
    if not bulk_id:
        raise ApiError.bad_request("bulkId", "is required")
    rows = bridge().store.db.query(
        "SELECT id, state, send_at, upstream_bulk_id FROM messages WHERE caller = ? AND bulk_id = ?"
        " AND send_at IS NOT NULL", (caller.name, bulk_id))
    if not rows:  # unknown, another caller's, or not scheduled: the same answer
        raise ApiError(404, "NOT_FOUND", f"No scheduled bulk with bulkId {bulk_id!r}")
    return bulk_id, rows


def _queued(rows: list[Any]) -> bool:
    return all(r["state"] in ("queued", "sending") for r in rows)


def _upstream_id(bulk_id: str, rows: list[Any]) -> str:
    return next((r["upstream_bulk_id"] for r in rows if r["upstream_bulk_id"]), bulk_id)


def _not_yet(bulk_id: str) -> ApiError:
    return ApiError(503, "SERVICE_UNAVAILABLE", f"Bulk {bulk_id!r} is still in the bridge's queue (the upstream "
                    "has not accepted it yet); retry later")


def _body() -> dict[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError.bad_request("body", "must be a JSON object")
    return body


@bp.get("/sms/1/bulks")
def bulk_get() -> Response:
    g.fmt = JSON
    bulk_id, rows = _bulk(authenticate(None, "bulks"))
    if _queued(rows):
        return render({"bulkId": bulk_id, "sendAt": fmt_time(rows[0]["send_at"])}, JSON, "bulk")
    answer = bridge().sender.upstream.bulk("GET", _upstream_id(bulk_id, rows))
    return render({**answer, "bulkId": bulk_id}, JSON, "bulk")


@bp.put("/sms/1/bulks")
def bulk_reschedule() -> Response:
    g.fmt = JSON
    bulk_id, rows = _bulk(authenticate(None, "bulks"))
    errs = Errors()
    when = parse_datetime("sendAt", _body().get("sendAt"), errs)
    if when is None and "sendAt" not in errs.by_field:
        errs.add("sendAt", "is required")
    errs.raise_if_any()
    if _queued(rows):
        raise _not_yet(bulk_id)
    answer = bridge().sender.upstream.bulk("PUT", _upstream_id(bulk_id, rows), body={"sendAt": format_datetime(when)})
    at = parse_time(answer.get("sendAt"))
    if at is not None:
        ctx = bridge()
        with ctx.store.db.transaction() as c:
            c.executemany("UPDATE messages SET send_at = ?, updated_at = ? WHERE id = ?",
                          [(at, ctx.clock.now(), r["id"]) for r in rows])
    return render({**answer, "bulkId": bulk_id}, JSON, "bulk")


@bp.get("/sms/1/bulks/status")
def bulk_status() -> Response:
    g.fmt = JSON
    bulk_id, rows = _bulk(authenticate(None, "bulks"))
    if _queued(rows):
        return render({"bulkId": bulk_id, "status": "PENDING"}, JSON, "bulk")
    answer = bridge().sender.upstream.bulk("GET", _upstream_id(bulk_id, rows), status=True)
    return render({**answer, "bulkId": bulk_id}, JSON, "bulk")


@bp.put("/sms/1/bulks/status")
def bulk_status_update() -> Response:
    g.fmt = JSON
    bulk_id, rows = _bulk(authenticate(None, "bulks"))
    errs = Errors()
    raw = _body().get("status")
    status = parse_enum("status", raw.upper() if isinstance(raw, str) else raw, BULK_STATUSES, errs)
    if status is None and "status" not in errs.by_field:
        errs.add("status", "is required: PAUSED, PENDING (resume) or CANCELED")
    errs.raise_if_any()
    if _queued(rows):
        raise _not_yet(bulk_id)
    answer = bridge().sender.upstream.bulk("PUT", _upstream_id(bulk_id, rows), status=True, body={"status": status})
    return render({**answer, "bulkId": bulk_id}, JSON, "bulk")
