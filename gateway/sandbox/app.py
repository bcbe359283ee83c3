"""The sandbox's Flask app: Infobip's send endpoints, plus test-only control endpoints."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid
from dataclasses import replace
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..config import SandboxSettings
from ..entrances.querystring import parse_query
from ..ids import new_id
from ..model import ApiError, SentMessage, Submission, SubmissionResult
from ..sms import analyse
from ..validate import Limits, normalise_destination, validate_submission
from ..wire.formats import JSON, XML, negotiate, render
from ..wire.legacy import result_to_wire, submission_from_advanced, submission_from_query
from ..wire.preview import preview_body
from ..wire.statuses import PENDING_ACCEPTED, REJECTED_INVALID_DESTINATION, STATUS_BY_NAME
from ..wire.v3 import render_error_for
from .inbound import register_inbound
from .reports import install_reports
from .state import Faults, SandboxState
from .v3 import register_v3


def _state() -> SandboxState:
    return current_app.extensions["sandbox"]


def _settings() -> SandboxSettings:
    return current_app.extensions["sandbox.settings"]


def _auth(query_user: str | None = None, query_password: str | None = None) -> str:
    """Infobip-like auth: ``App <key>``, ``Basic``, or (query API only) username/password."""
    s = _settings()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "app" and hmac.compare_digest(value.strip().encode(), s.api_key.encode()):
        return "api_key"
    if scheme.lower() == "basic":
        try:
            user, _, pw = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, pw = "", ""
        if user == s.username and hmac.compare_digest(pw.encode(), s.password.encode()):
            return "basic"
    if not header and query_user is not None:
        if query_user == s.username and hmac.compare_digest((query_password or "").encode(), s.password.encode()):
            return "query"
    raise ApiError(401, "UNAUTHORIZED", "Invalid login details")


def _fault() -> Response | None:
    f: Faults | None = _state().take_fault()
    if f is None:
        return None
    if f.delay_ms:
        time.sleep(f.delay_ms / 1000)  # simulated upstream latency, not test synchronisation
    if f.count and f.status:
        return render_error_for(request.path, ApiError(f.status, "GENERAL_ERROR", "Injected fault"), g.fmt)
    return None


def _accept(sub: Submission, limits: Limits) -> SubmissionResult:
    """Validate like Infobip: request-level problems are a 400; a bad number is a per-destination
    REJECTED status inside a 200."""
    bad: set[tuple[int, int]] = set()
    for mi, m in enumerate(sub.messages):
        for di, d in enumerate(m.destinations):
            norm, reason = normalise_destination(d.to, limits)
            if reason:
                bad.add((mi, di))
            else:
                d.to = norm  # type: ignore[assignment]
    good = Submission(
        messages=[],
        bulk_id=sub.bulk_id,
    )
    for mi, m in enumerate(sub.messages):
        keep = [d for di, d in enumerate(m.destinations) if (mi, di) not in bad]
        if keep:
            good.messages.append(replace(m, destinations=keep))
    if good.messages:
        validate_submission(good, limits, flat=sub.entrance == "query")
    state = _state()
    bulk_id = sub.bulk_id or (new_id() if sub.destination_count > 1 or any(m.send_at for m in sub.messages) else None)
    result = SubmissionResult(bulk_id=bulk_id)
    for mi, m in enumerate(sub.messages):
        shown = analyse(m.text, m.language_code, m.transliteration)  # what the handset gets
        count = shown.message_count
        for di, d in enumerate(m.destinations):
            if (mi, di) in bad:
                result.messages.append(SentMessage(d.to, REJECTED_INVALID_DESTINATION))
                continue
            mid = d.message_id or str(uuid.uuid4())
            with state.lock:
                if mid in state.messages:  # like Infobip: a repeated messageId is not sent twice
                    result.messages.append(SentMessage(d.to, STATUS_BY_NAME["REJECTED_DUPLICATE_MESSAGE_ID"], mid))
                    continue
                result.messages.append(SentMessage(d.to, PENDING_ACCEPTED, mid, count))
                state.messages[mid] = {
                    "messageId": mid, "bulkId": bulk_id, "to": d.to, "from": m.sender, "text": m.text,
                    "textPreview": shown.text, "flash": m.flash, "validityPeriod": m.validity_period,
                    "smsCount": count, "notifyUrl": m.notify_url, "notifyContentType": m.notify_content_type,
                    "callbackData": m.callback_data, "sentAt": time.time(),
                    "intermediateReport": m.intermediate_report, "status": PENDING_ACCEPTED.to_wire(),
                    "sendAt": m.send_at, "entityId": m.entity_id, "applicationId": m.application_id,
                }
                current_app.extensions["sandbox.dlr"].accepted(dict(state.messages[mid]))
    return result


def create_sandbox_app(settings: SandboxSettings | None = None, limits: Limits | None = None) -> Flask:
    app = Flask("smsbridge-sandbox")
    app.extensions["sandbox"] = SandboxState()
    app.extensions["sandbox.settings"] = settings or SandboxSettings()
    limits = limits or Limits(max_destinations=100000)

    @app.before_request
    def _begin() -> Response | None:
        ext = request.path.rsplit(".", 1)[1] if request.path.endswith((".xml", ".json")) else None
        g.fmt = negotiate(request, ext)
        if request.path.startswith("/sandbox/"):
            return None
        auth_header = request.headers.get("Authorization", "")
        _state().record(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode("latin-1"),
                "json": request.get_json(silent=True) if request.is_json else None,
                "auth": auth_header.partition(" ")[0] or None,
                "userAgent": request.headers.get("User-Agent"),
            }
        )
        return _fault()

    @app.get("/sms/1/text/query", defaults={"ext": None})
    @app.get("/sms/1/text/query.<any(json,xml):ext>")
    def query(ext: str | None) -> Response:
        params = parse_query(request.query_string)
        g.auth = _auth(params.get("username"), params.get("password"))
        sub = submission_from_query(params)
        sub.entrance = "query"
        return render(result_to_wire(_accept(sub, limits), include_sms_count=True), g.fmt, "send")

    @app.post("/sms/2/text/advanced", defaults={"ext": None})
    @app.post("/sms/2/text/advanced.<any(json,xml):ext>")
    def advanced(ext: str | None) -> Response:
        g.auth = _auth()
        body = request.get_json(force=True, silent=True)
        if body is None:
            raise ApiError.bad_request("body", "must be JSON")
        sub = submission_from_advanced(body)
        return render(result_to_wire(_accept(sub, limits), sub.include_sms_count), g.fmt, "send")

    @app.post("/sms/1/preview")
    def preview() -> Response:
        _auth()
        return jsonify(preview_body(request.get_json(force=True, silent=True)))

    # ---- test and demo control (not part of Infobip's API) ----
    @app.get("/sandbox/requests")
    def requests_seen() -> Response:
        with _state().lock:
            return jsonify(list(_state().requests))

    @app.get("/sandbox/messages")
    def messages_seen() -> Response:
        with _state().lock:
            return jsonify(list(_state().messages.values()))

    @app.post("/sandbox/faults")
    def set_faults() -> Response:
        body: dict[str, Any] = request.get_json(force=True, silent=True) or {}
        with _state().lock:
            _state().faults = Faults(
                status=body.get("status"), count=int(body.get("count", 0)), delay_ms=int(body.get("delay_ms", 0)),
            )
        return jsonify({"ok": True})

    install_reports(app, app.extensions["sandbox.settings"], _auth)
    register_v3(app, limits, _auth, _accept)

    @app.post("/sandbox/reset")
    def reset() -> Response:
        _state().reset()
        current_app.extensions["sandbox.dlr"].reset()
        for hook in app.extensions.get("sandbox.reset_hooks", []):
            hook()
        return jsonify({"ok": True})

    register_inbound(app, _auth)

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return render_error_for(request.path, err, g.get("fmt", JSON))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        fmt = g.get("fmt") or (XML if request.path.endswith(".xml") else JSON)
        return render_error_for(request.path, ApiError(
            code, {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(code, "BAD_REQUEST"), exc.description or exc.name
        ), fmt)

    return app
