"""The v3 pulls (``GET /sms/3/reports``, ``GET /sms/3/logs``), each for the caller's own messages only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from ..config import Caller
from ..reports.pulls import decode_cursor, logs, pull_reports
from ..services import bridge
from ..validate import Errors, parse_bool, parse_datetime, parse_enum
from ..wire.formats import JSON, render
from ..wire.statuses import GROUPS
from .common import authenticate, param_list, pull_limit, request_params

bp = Blueprint("pulls_v3", __name__)


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
