"""The v3 pulls (``GET /sms/3/reports``, ``GET /sms/3/logs``), each for the caller's own messages only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from ..config import Caller
from ..reports.pulls import decode_cursor, logs, pull_reports
from ..services import bridge
from ..validate import Errors, parse_bool
from ..wire.formats import JSON, render
from .common import authenticate, log_filters, param_list, pull_limit, request_params

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
    filters = log_filters(params, errs, "sender", "destination")
    use_cursor = parse_bool("useCursor", params.get("useCursor"), errs)
    if params.get("mnc") and not params.get("mcc"):
        errs.add("mnc", "needs mcc")
    before = None
    if params.get("cursor"):
        before = decode_cursor(params.get("cursor") or "")
        if before is None:
            errs.add("cursor", "is not a cursor this API returned")
    errs.raise_if_any()
    filters.update({"entityId": params.get("entityId"), "applicationId": params.get("applicationId"),
                    "mcc": params.get("mcc"), "mnc": params.get("mnc"),
                    "campaignReferenceId": param_list(params, "campaignReferenceId")})
    page, nxt = logs(bridge().store, caller.name, filters, limit, before)
    body: dict[str, Any] = {"results": page}
    if use_cursor or before is not None:
        body["cursor"] = {"limit": limit, **({"nextCursor": nxt} if nxt else {})}
    return render(body, JSON, "logs")
