"""The scheduled-bulk calls (``GET|PUT /sms/1/bulks[/status]``) for the caller's own bulks.

Scheduled bulks are held by the upstream, as on Infobip: a send with ``sendAt`` is forwarded at once
(sync) or by the queue worker (queued) with its sendAt and the caller's bulkId, and the bulk calls are
proxied upstream after the bridge has checked that the bulk is the caller's (404 otherwise, without
asking the upstream). A rescheduled sendAt is written back to the record, so the logs show it. A bulk
still in the bridge's queue (upstream not reached yet) can be read (from the record) but not changed
(503, retry). Errors come in the legacy envelope.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from ..clock import fmt_time, parse_time
from ..config import Caller
from ..model import ApiError
from ..services import bridge
from ..store.bulks import ScheduledMessage, reschedule, scheduled
from ..validate import Errors, format_datetime, parse_datetime, parse_enum
from ..wire.formats import JSON, render
from .common import authenticate, json_object, request_params

bp = Blueprint("bulks", __name__)

BULK_STATUSES = ("PENDING", "PAUSED", "CANCELED")


def _bulk(caller: Caller) -> tuple[str, list[ScheduledMessage]]:
    bulk_id = request_params().get("bulkId")
    if not bulk_id:
        raise ApiError.bad_request("bulkId", "is required")
    rows = scheduled(bridge().store.db, caller.name, bulk_id)
    if not rows:  # unknown, another caller's, or not scheduled: the same answer
        raise ApiError(404, "NOT_FOUND", f"No scheduled bulk with bulkId {bulk_id!r}")
    return bulk_id, rows


def _queued(rows: list[ScheduledMessage]) -> bool:
    return all(r.state in ("queued", "sending") for r in rows)


def _upstream_id(bulk_id: str, rows: list[ScheduledMessage]) -> str:
    return next((r.upstream_bulk_id for r in rows if r.upstream_bulk_id), bulk_id)


def _not_yet(bulk_id: str) -> ApiError:
    return ApiError(503, "SERVICE_UNAVAILABLE", f"Bulk {bulk_id!r} is still in the bridge's queue (the upstream "
                    "has not accepted it yet); retry later")


def _body() -> dict[str, Any]:
    return json_object()


@bp.get("/sms/1/bulks")
@bp.get("/sms/1/bulks/")  # Infobip's Node SDK sends the slash
def bulk_get() -> Response:
    g.fmt = JSON
    bulk_id, rows = _bulk(authenticate(None, "bulks"))
    if _queued(rows):
        return render({"bulkId": bulk_id, "sendAt": fmt_time(rows[0].send_at)}, JSON, "bulk")
    answer = bridge().sender.upstream.bulk("GET", _upstream_id(bulk_id, rows))
    return render({**answer, "bulkId": bulk_id}, JSON, "bulk")


@bp.put("/sms/1/bulks")
@bp.put("/sms/1/bulks/")
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
        reschedule(ctx.store.db, [r.row_id for r in rows], at, ctx.clock.now())
    return render({**answer, "bulkId": bulk_id}, JSON, "bulk")


@bp.get("/sms/1/bulks/status")
@bp.get("/sms/1/bulks/status/")
def bulk_status() -> Response:
    g.fmt = JSON
    bulk_id, rows = _bulk(authenticate(None, "bulks"))
    if _queued(rows):
        return render({"bulkId": bulk_id, "status": "PENDING"}, JSON, "bulk")
    answer = bridge().sender.upstream.bulk("GET", _upstream_id(bulk_id, rows), status=True)
    return render({**answer, "bulkId": bulk_id}, JSON, "bulk")


@bp.put("/sms/1/bulks/status")
@bp.put("/sms/1/bulks/status/")
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
