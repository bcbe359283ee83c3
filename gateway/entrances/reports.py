"""Delivery reports: the upstream's push (``POST /hooks/dlr/<token>``) and the caller's pulls
(``GET /sms/1/reports[.json|.xml]``, each report once; ``GET /sms/1/logs[.json|.xml]``, re-readable),
each for the caller's own messages only."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..model import ApiError
from ..reports.pulls import logs_v1, pull_reports_v1
from ..services import bridge
from ..validate import Errors
from ..wire.formats import render
from .common import authenticate, begin, log_filters, param_list, pull_limit, request_params

bp = Blueprint("reports", __name__)

MAX_REPORT_BODY = 4 << 20  # Infobip pushes buckets of up to 100 reports: a few hundred kB at most


@bp.post("/hooks/dlr/<token>")
def report_hook(token: str) -> Response:
    begin(None)
    ctx = bridge()
    sub = ctx.intake.submission(token)  # the token is checked before the body is read
    if (request.content_length or 0) > MAX_REPORT_BODY:
        raise ApiError(413, "BAD_REQUEST", f"A report body may be at most {MAX_REPORT_BODY} bytes")
    body = request.stream.read(MAX_REPORT_BODY + 1)
    if len(body) > MAX_REPORT_BODY:
        raise ApiError(413, "BAD_REQUEST", f"A report body may be at most {MAX_REPORT_BODY} bytes")
    return jsonify(ctx.intake.accept(sub, body, request.content_type))


@bp.get("/sms/1/reports", defaults={"ext": None})
@bp.get("/sms/1/reports.<any(json,xml):ext>")
def pull_reports(ext: str | None) -> Response:
    fmt = begin(ext)
    ctx = bridge()
    params = request_params()
    caller = authenticate(params, "reports")
    errs = Errors()
    limit = pull_limit(params, errs)
    errs.raise_if_any()
    results = pull_reports_v1(ctx.store, caller.name, param_list(params, "bulkId"), param_list(params, "messageId"),
                              limit)
    return render({"results": results}, fmt, "reports")


@bp.get("/sms/1/logs", defaults={"ext": None})
@bp.get("/sms/1/logs.<any(json,xml):ext>")
def logs(ext: str | None) -> Response:
    fmt = begin(ext)
    ctx = bridge()
    params = request_params()
    caller = authenticate(params, "logs")
    errs = Errors()
    limit = pull_limit(params, errs)
    filters = log_filters(params, errs, "from", "to")
    errs.raise_if_any()
    return render({"results": logs_v1(ctx.store, caller.name, filters, limit)}, fmt, "logs")
