"""Infobip's v3 shapes (``POST /sms/3/messages``, infobip-sms-api.md §5, §12.2) and the canonical model.

One parser, used by the bridge's v3 entrance and by the sandbox; one writer for the ``messages``
upstream; the v3 response and the v3 error envelope ``{errorCode, description, action, violations,
resources}``. v1/v2 endpoints keep the legacy envelope (gateway/formats.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response

from ..errors import ValidationFailed
from ..model import (
    ApiError,
    Destination,
    Message,
    SentMessage,
    Status,
    Submission,
    SubmissionResult,
    Tracking,
)
from ..validate import (
    CONTENT_TYPES,
    LANGUAGE_CODES,
    TRANSLITERATIONS,
    Errors,
    parse_bool,
    parse_enum,
    parse_int,
)
from .formats import render_error
from .legacy import _obj, _str

TIME_UNITS = ("SECONDS", "MINUTES", "HOURS")
V3_PREFIX = "/sms/3/"
RESOURCES = [{"name": "Infobip SMS API documentation", "url": "https://www.infobip.com/docs/api/channels/sms"}]
_ACTIONS = {
    400: "Check the syntax, violations and adjust the request.",
    401: "Check the credentials: send Authorization: App <your key> (or Basic).",
    403: "Ask the administrator for the scope this request needs.",
    404: "Check the path and the identifiers in the request.",
    405: "Use a method the endpoint allows.",
    429: "Slow down and retry later.",
    502: "The upstream refused or garbled the bridge's request; tell the administrator.",
    503: "The upstream is unreachable and nothing was sent; retry later.",
    504: "The message may have been accepted: check the logs before sending again.",
}


def minutes_of(amount: int, unit: str) -> int:
    """Validity in whole minutes (the canonical unit): seconds round up, so a validity never shrinks."""
    if unit == "HOURS":
        return amount * 60
    if unit == "SECONDS":
        return -(-amount // 60)
    return amount


def _max_len(value: str | None, field: str, limit: int, errs: Errors) -> str | None:
    if value is not None and len(value) > limit:
        errs.add(field, f"must be at most {limit} characters")
    return value


def _message(m: dict[str, Any], p: str, send_at: str | None, errs: Errors) -> Message:
    dests: list[Destination] = []
    raw_dests = m.get("destinations")
    if not isinstance(raw_dests, list):
        errs.add(f"{p}destinations", "is required and must be an array of {\"to\": ...} objects")
        raw_dests = []
    for di, d in enumerate(raw_dests):
        if not isinstance(d, dict) or not isinstance(d.get("to"), str | int) or isinstance(d.get("to"), bool):
            errs.add(f"{p}destinations[{di}].to", "is required and must be a string")
            continue
        dests.append(Destination(str(d["to"]), _str(d, "messageId", f"{p}destinations[{di}].", errs)))
    content = _obj(m, "content", p, errs)
    if content is None:
        errs.add(f"{p}content", "is required: give {\"text\": \"...\"}")
        content = {}
    elif "text" not in content and "hex" in content:
        errs.add(f"{p}content", "binary content (hex) is not supported by smsbridge: send text")
    cp = f"{p}content."
    language = content.get("language")
    if isinstance(language, str):
        language = {"languageCode": language}
    lang_code = None
    if isinstance(language, dict):
        lang_code = parse_enum(f"{cp}language.languageCode", language.get("languageCode"), LANGUAGE_CODES, errs)
    elif language is not None:
        errs.add(f"{cp}language", "must be an object like {\"languageCode\": \"TR\"}")
    options = _obj(m, "options", p, errs) or {}
    op = f"{p}options."
    validity = None
    vp = _obj(options, "validityPeriod", op, errs)
    if vp is not None:
        amount = parse_int(f"{op}validityPeriod.amount", vp.get("amount"), -(2**31), 2**31, errs)
        unit = parse_enum(f"{op}validityPeriod.timeUnit", vp.get("timeUnit"), TIME_UNITS, errs) or "MINUTES"
        if amount is None and "amount" not in vp:
            errs.add(f"{op}validityPeriod.amount", "is required")
        elif amount is not None:
            validity = minutes_of(amount, unit)
    platform = _obj(options, "platform", op, errs) or {}
    webhooks = _obj(m, "webhooks", p, errs) or {}
    wp = f"{p}webhooks."
    delivery = _obj(webhooks, "delivery", wp, errs) or {}
    return Message(
        destinations=dests,
        text=_str(content, "text", cp, errs) or "",
        sender=_str(m, "sender", p, errs),
        flash=bool(parse_bool(f"{op}flash", options.get("flash"), errs)),
        transliteration=parse_enum(f"{cp}transliteration", content.get("transliteration"), TRANSLITERATIONS, errs),
        language_code=lang_code,
        validity_period=validity,
        send_at=send_at,
        notify_url=_str(delivery, "url", f"{wp}delivery.", errs),
        notify_content_type=parse_enum(f"{wp}contentType", webhooks.get("contentType"), CONTENT_TYPES, errs),
        callback_data=_str(webhooks, "callbackData", wp, errs),
        intermediate_report=bool(parse_bool(f"{wp}delivery.intermediateReport", delivery.get("intermediateReport"),
                                            errs)),
        notify=parse_bool(f"{wp}delivery.notify", delivery.get("notify"), errs),
        delivery_time_window=_obj(options, "deliveryTimeWindow", op, errs),
        regional=_obj(options, "regional", op, errs),
        entity_id=_max_len(_str(platform, "entityId", f"{op}platform.", errs), f"{op}platform.entityId", 255, errs),
        application_id=_max_len(
            _str(platform, "applicationId", f"{op}platform.", errs), f"{op}platform.applicationId", 255, errs
        ),
        campaign_reference_id=_max_len(
            _str(options, "campaignReferenceId", op, errs), f"{op}campaignReferenceId", 255, errs
        ),
    )


def submission_from_v3(body: Any, errs: Errors | None = None) -> Submission:
    """Canonical Submission from a ``POST /sms/3/messages`` body. Parse errors go to ``errs`` when
    given (named by their v3 JSON path), else raise at once."""
    own = errs is None
    errs = Errors() if errs is None else errs
    if not isinstance(body, dict):
        raise ApiError.bad_request("body", "must be a JSON object with a messages array")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise ApiError.bad_request("messages", "is required and must be a non-empty array")
    options = _obj(body, "options", "", errs) or {}
    schedule = _obj(options, "schedule", "options.", errs) or {}
    send_at = _str(schedule, "sendAt", "options.schedule.", errs)
    messages = []
    for mi, m in enumerate(raw_messages):
        if not isinstance(m, dict):
            errs.add(f"messages[{mi}]", "must be an object")
            continue
        messages.append(_message(m, f"messages[{mi}].", send_at, errs))
    tracking = None
    ct = _obj(options, "conversionTracking", "options.", errs)
    if ct and parse_bool("options.conversionTracking.useConversionTracking", ct.get("useConversionTracking"), errs):
        tracking = Tracking(track="SMS", type=_str(ct, "conversionTrackingName", "options.conversionTracking.", errs))
    sub = Submission(
        messages=messages,
        bulk_id=_str(schedule, "bulkId", "options.schedule.", errs),
        tracking=tracking,
        url_options=_obj(options, "tracking", "options.", errs),
        sending_speed_limit=_obj(schedule, "sendingSpeedLimit", "options.schedule.", errs),
        include_sms_count=bool(
            parse_bool("options.includeSmsCountInResponse", options.get("includeSmsCountInResponse"), errs)
        ),
        entrance="messages",
    )
    if own:
        errs.raise_if_any()
    return sub


# validate_submission and the placeholder checks name fields as v2 does; v3 callers see v3 paths.
_V2_TO_V3 = {
    "from": "sender", "text": "content.text", "validityPeriod": "options.validityPeriod",
    "notifyUrl": "webhooks.delivery.url", "callbackData": "webhooks.callbackData",
}
_V2_PATH = re.compile(r"^messages\[(\d+)\]\.(\w+)$")


def v3_path(field: str) -> str:
    """``messages[0].from`` → ``messages[0].sender`` (and the other renamed fields)."""
    if field == "bulkId":
        return "options.schedule.bulkId"
    m = _V2_PATH.match(field)
    if not m:
        return field
    if m.group(2) == "sendAt":
        return "options.schedule.sendAt"
    return f"messages[{m.group(1)}].{_V2_TO_V3.get(m.group(2), m.group(2))}"


def v3_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for field, reasons in errors.items():
        for r in reasons:
            if r not in out.setdefault(v3_path(field), []):
                out[v3_path(field)].append(r)
    return out


def message_to_v3(msg: Message) -> dict[str, Any]:
    content: dict[str, Any] = {"text": msg.text}
    if msg.transliteration:
        content["transliteration"] = msg.transliteration
    if msg.language_code:
        content["language"] = {"languageCode": msg.language_code}
    out: dict[str, Any] = {
        "destinations": [{"to": d.to, **({"messageId": d.message_id} if d.message_id else {})} for d in msg.destinations],
        "content": content,
    }
    if msg.sender:
        out["sender"] = msg.sender
    options: dict[str, Any] = {}
    if msg.flash:
        options["flash"] = True
    if msg.validity_period is not None:
        options["validityPeriod"] = {"amount": msg.validity_period, "timeUnit": "MINUTES"}
    platform = {k: v for k, v in (("entityId", msg.entity_id), ("applicationId", msg.application_id)) if v}
    for key, value in (("platform", platform), ("deliveryTimeWindow", msg.delivery_time_window),
                       ("regional", msg.regional), ("campaignReferenceId", msg.campaign_reference_id)):
        if value:
            options[key] = value
    if options:
        out["options"] = options
    webhooks: dict[str, Any] = {}
    delivery: dict[str, Any] = {}
    if msg.notify_url:
        delivery["url"] = msg.notify_url
    if msg.intermediate_report:
        delivery["intermediateReport"] = True
    if msg.notify is not None:
        delivery["notify"] = msg.notify
    if delivery:
        webhooks["delivery"] = delivery
    if msg.notify_content_type:
        webhooks["contentType"] = msg.notify_content_type
    if msg.callback_data is not None:
        webhooks["callbackData"] = msg.callback_data
    if webhooks:
        out["webhooks"] = webhooks
    return out


def submission_to_v3(sub: Submission) -> dict[str, Any]:
    """The ``POST /sms/3/messages`` body. v3 schedules a whole request at one time, so messages
    with different ``sendAt`` cannot share a request: that is refused before anything is sent."""
    times = {m.send_at for m in sub.messages}
    if len(times) > 1:
        raise ValidationFailed.one(
            "messages", "the messages upstream schedules a whole request at once: give every message the same sendAt"
        )
    schedule: dict[str, Any] = {}
    if sub.bulk_id:
        schedule["bulkId"] = sub.bulk_id
    send_at = next(iter(times)) if times else None
    if send_at:
        schedule["sendAt"] = send_at
    if sub.sending_speed_limit:
        schedule["sendingSpeedLimit"] = sub.sending_speed_limit
    options: dict[str, Any] = {"includeSmsCountInResponse": True}
    if schedule:
        options["schedule"] = schedule
    if sub.url_options:
        options["tracking"] = sub.url_options
    if sub.tracking and (sub.tracking.track or sub.tracking.type):
        options["conversionTracking"] = {"useConversionTracking": True,
                                         **({"conversionTrackingName": sub.tracking.type} if sub.tracking.type else {})}
    return {"messages": [message_to_v3(m) for m in sub.messages], "options": options}


def result_from_v3(body: Any) -> SubmissionResult:
    """Parse a v3 send response."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError("upstream answer has no messages array")
    out = SubmissionResult(bulk_id=body.get("bulkId"))
    for m in body["messages"]:
        details = m.get("details") or {}
        out.messages.append(
            SentMessage(
                to=str(m.get("destination", "")),
                status=Status.from_wire(m.get("status") or {}),
                message_id=m.get("messageId"),
                sms_count=details.get("messageCount") if isinstance(details, dict) else None,
            )
        )
    return out


def result_to_v3(result: SubmissionResult, include_count: bool = True) -> dict[str, Any]:
    """The v3 send response body: ``messages`` is always present (the official client requires it)."""
    body: dict[str, Any] = {}
    if result.bulk_id:
        body["bulkId"] = result.bulk_id
    messages = []
    for m in result.messages:
        item: dict[str, Any] = {}
        if m.message_id:
            item["messageId"] = m.message_id
        item["status"] = m.status.to_wire()
        item["destination"] = m.to
        if include_count and m.sms_count is not None:
            item["details"] = {"messageCount": m.sms_count}
        messages.append(item)
    body["messages"] = messages
    return body


def error_body_v3(err: ApiError) -> dict[str, Any]:
    """The v3 envelope: all five fields, always (the official client requires each of them)."""
    return {
        "errorCode": f"E{err.http_status}",
        "description": err.text,
        "action": _ACTIONS.get(err.http_status, "Retry later; if it persists, tell the administrator."),
        "violations": [
            {"property": prop, "violation": reason}
            for prop, reasons in err.validation_errors.items()
            for reason in reasons
        ],
        "resources": list(RESOURCES),
    }


def errors_from_v3(body: Any) -> dict[str, list[str]]:
    """``violations`` of a v3 error body as ``{property: [reasons]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(body, dict) and isinstance(body.get("violations"), list):
        for v in body["violations"]:
            if isinstance(v, dict):
                out.setdefault(str(v.get("property") or "request"), []).append(str(v.get("violation") or ""))
    return out


def is_v3(path: str) -> bool:
    return path.startswith(V3_PREFIX)


def render_error_for(path: str, err: ApiError, fmt: str) -> Response:
    """The error envelope the endpoint's generation uses: v3 under ``/sms/3/``, else the legacy one."""
    if not is_v3(path):
        return render_error(err, fmt)
    resp = Response(json.dumps(error_body_v3(err), ensure_ascii=False, separators=(",", ":")), err.http_status,
                    mimetype="application/json")
    if err.http_status == 401:
        resp.headers["WWW-Authenticate"] = 'App realm="smsbridge"'
    return resp
