"""Conversions between Infobip's wire shapes (query v1, advanced v2) and the canonical model.

Used by the bridge's entrances and upstream client, and by the sandbox: one parser per shape, so
both sides read a request the same way.
"""

from __future__ import annotations

from typing import Any

from ..entrances.querystring import QueryParams
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
    TRACK_VALUES,
    TRANSLITERATIONS,
    Errors,
    parse_bool,
    parse_enum,
    parse_int,
)

# Every parameter GET /sms/1/text/query documents (infobip-sms-api.md §3), plus the bridge's own.
QUERY_PARAMS = frozenset(
    {
        "username", "password", "bulkId", "from", "to", "text", "flash", "transliteration", "languageCode",
        "intermediateReport", "notifyUrl", "notifyContentType", "callbackData", "validityPeriod", "sendAt",
        "track", "processKey", "trackingType", "indiaDltContentTemplateId", "indiaDltPrincipalEntityId",
        "indiaDltTelemarketerId", "charset",
    }
)


def split_destinations(values: list[str]) -> list[str]:
    """``to`` as a comma list and/or repeated keys. A value that decoded to a space followed by
    digits was ``+digits`` sent unencoded (``+`` means space in a query string): restore it."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            if part[:1] == " " and part.strip()[:1].isdigit():
                part = "+" + part.strip()
            if part.strip():
                out.append(part)
    return out


def submission_from_query(q: QueryParams, errs: Errors | None = None) -> Submission:
    """Canonical Submission from ``/sms/1/text/query`` parameters. Parse errors go to ``errs`` when
    given (so validation can report them together with its own), else raise at once."""
    own = errs is None
    errs = Errors() if errs is None else errs
    to_values = q.getall("to")
    if not to_values or not any(v.strip(" ,") for v in to_values):
        errs.add("to", "is required: give one or more destinations, comma-separated")
    msg = Message(
        destinations=[Destination(t) for t in split_destinations(to_values)],
        text=q.get("text") or "",
        sender=q.get("from") or None,
        flash=bool(parse_bool("flash", q.get("flash"), errs)),
        transliteration=parse_enum("transliteration", q.get("transliteration"), TRANSLITERATIONS, errs),
        language_code=parse_enum("languageCode", q.get("languageCode"), LANGUAGE_CODES, errs),
        validity_period=parse_int("validityPeriod", q.get("validityPeriod"), -(2**31), 2**31, errs),
        send_at=q.get("sendAt") or None,
        notify_url=q.get("notifyUrl") or None,
        notify_content_type=parse_enum("notifyContentType", q.get("notifyContentType"), CONTENT_TYPES, errs),
        callback_data=q.get("callbackData"),
        intermediate_report=bool(parse_bool("intermediateReport", q.get("intermediateReport"), errs)),
    )
    dlt = {
        k: q.get(f"indiaDlt{k[0].upper()}{k[1:]}")
        for k in ("contentTemplateId", "principalEntityId", "telemarketerId")
    }
    if any(dlt.values()):
        msg.regional = {"indiaDlt": {k: v for k, v in dlt.items() if v}}
    track = parse_enum("track", q.get("track"), TRACK_VALUES, errs)
    tracking = None
    if track or q.get("trackingType") or q.get("processKey"):
        tracking = Tracking(track=track, type=q.get("trackingType"), process_key=q.get("processKey"))
    if own:
        errs.raise_if_any()
    return Submission(messages=[msg], bulk_id=q.get("bulkId") or None, tracking=tracking, include_sms_count=True)


def _str(d: dict[str, Any], key: str, path: str, errs: Errors) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    errs.add(f"{path}{key}", f"must be a string, got {type(v).__name__}")
    return None


def _obj(d: dict[str, Any], key: str, path: str, errs: Errors) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        errs.add(f"{path}{key}", "must be an object")
        return None
    return v


def submission_from_advanced(body: Any, errs: Errors | None = None) -> Submission:
    """Canonical Submission from a ``/sms/2/text/advanced`` JSON body (``errs`` as for query)."""
    own = errs is None
    errs = Errors() if errs is None else errs
    if not isinstance(body, dict):
        raise ApiError.bad_request("body", "must be a JSON object with a messages array")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise ApiError.bad_request("messages", "is required and must be a non-empty array")
    messages: list[Message] = []
    for mi, m in enumerate(raw_messages):
        p = f"messages[{mi}]."
        if not isinstance(m, dict):
            errs.add(f"messages[{mi}]", "must be an object")
            continue
        dests: list[Destination] = []
        raw_dests = m.get("destinations")
        if not isinstance(raw_dests, list):
            errs.add(f"{p}destinations", "is required and must be an array of {\"to\": ...} objects")
            raw_dests = []
        for di, d in enumerate(raw_dests):
            if not isinstance(d, dict) or not isinstance(d.get("to"), str | int):
                errs.add(f"{p}destinations[{di}].to", "is required and must be a string")
                continue
            dests.append(Destination(str(d["to"]), _str(d, "messageId", f"{p}destinations[{di}].", errs)))
        language = m.get("language")
        if isinstance(language, str):  # one SDK sends "language":"TR"
            language = {"languageCode": language}
        lang_code = None
        if isinstance(language, dict):
            lang_code = parse_enum(f"{p}language.languageCode", language.get("languageCode"), LANGUAGE_CODES, errs)
        elif language is not None:
            errs.add(f"{p}language", "must be an object like {\"languageCode\": \"TR\"}")
        messages.append(
            Message(
                destinations=dests,
                text=_str(m, "text", p, errs) or "",
                sender=_str(m, "from", p, errs),
                flash=bool(parse_bool(f"{p}flash", m.get("flash"), errs)),
                transliteration=parse_enum(f"{p}transliteration", m.get("transliteration"), TRANSLITERATIONS, errs),
                language_code=lang_code,
                validity_period=parse_int(f"{p}validityPeriod", m.get("validityPeriod"), -(2**31), 2**31, errs),
                send_at=_str(m, "sendAt", p, errs),
                notify_url=_str(m, "notifyUrl", p, errs),
                notify_content_type=parse_enum(
                    f"{p}notifyContentType", m.get("notifyContentType"), CONTENT_TYPES, errs
                ),
                callback_data=_str(m, "callbackData", p, errs),
                intermediate_report=bool(parse_bool(f"{p}intermediateReport", m.get("intermediateReport"), errs)),
                delivery_time_window=_obj(m, "deliveryTimeWindow", p, errs),
                regional=_obj(m, "regional", p, errs),
                entity_id=_str(m, "entityId", p, errs),
                application_id=_str(m, "applicationId", p, errs),
            )
        )
    tracking = None
    t = _obj(body, "tracking", "", errs)
    if t:
        tracking = Tracking(
            track=parse_enum("tracking.track", t.get("track"), TRACK_VALUES, errs),
            type=_str(t, "type", "tracking.", errs),
            process_key=_str(t, "processKey", "tracking.", errs),
            base_url=_str(t, "baseUrl", "tracking.", errs),
        )
    sub = Submission(
        messages=messages,
        bulk_id=_str(body, "bulkId", "", errs),
        tracking=tracking,
        url_options=_obj(body, "urlOptions", "", errs),
        sending_speed_limit=_obj(body, "sendingSpeedLimit", "", errs),
        include_sms_count=bool(parse_bool("includeSmsCountInResponse", body.get("includeSmsCountInResponse"), errs)),
        entrance="advanced",
    )
    if own:
        errs.raise_if_any()
    return sub


def message_to_advanced(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "destinations": [{"to": d.to, **({"messageId": d.message_id} if d.message_id else {})} for d in msg.destinations],
        "text": msg.text,
    }
    if msg.sender:
        out["from"] = msg.sender
    if msg.flash:
        out["flash"] = True
    if msg.transliteration:
        out["transliteration"] = msg.transliteration
    if msg.language_code:
        out["language"] = {"languageCode": msg.language_code}
    optional = {
        "validityPeriod": msg.validity_period,
        "sendAt": msg.send_at,
        "notifyUrl": msg.notify_url,
        "notifyContentType": msg.notify_content_type,
        "callbackData": msg.callback_data,
        "deliveryTimeWindow": msg.delivery_time_window,
        "regional": msg.regional,
        "entityId": msg.entity_id,
        "applicationId": msg.application_id,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    if msg.intermediate_report:
        out["intermediateReport"] = True
    return out


def submission_to_advanced(sub: Submission) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [message_to_advanced(m) for m in sub.messages]}
    if sub.bulk_id:
        body["bulkId"] = sub.bulk_id
    if sub.tracking:
        t = sub.tracking
        body["tracking"] = {
            k: v
            for k, v in (("track", t.track), ("type", t.type), ("processKey", t.process_key), ("baseUrl", t.base_url))
            if v
        }
    if sub.url_options:
        body["urlOptions"] = sub.url_options
    if sub.sending_speed_limit:
        body["sendingSpeedLimit"] = sub.sending_speed_limit
    body["includeSmsCountInResponse"] = True
    return body


def message_to_query(sub: Submission, msg: Message) -> list[tuple[str, str]]:
    """Query parameters for one message (the query API carries one text per request)."""
    params: list[tuple[str, str]] = []
    if sub.bulk_id:
        params.append(("bulkId", sub.bulk_id))
    if msg.sender:
        params.append(("from", msg.sender))
    params.append(("to", ",".join(d.to for d in msg.destinations)))
    params.append(("text", msg.text))
    if msg.flash:
        params.append(("flash", "true"))
    for name, value in (
        ("transliteration", msg.transliteration),
        ("languageCode", msg.language_code),
        ("notifyUrl", msg.notify_url),
        ("notifyContentType", msg.notify_content_type),
        ("callbackData", msg.callback_data),
        ("validityPeriod", msg.validity_period),
        ("sendAt", msg.send_at),
    ):
        if value is not None:
            params.append((name, str(value)))
    if msg.intermediate_report:
        params.append(("intermediateReport", "true"))
    if msg.regional and isinstance(msg.regional.get("indiaDlt"), dict):
        for k, v in msg.regional["indiaDlt"].items():
            params.append((f"indiaDlt{k[0].upper()}{k[1:]}", str(v)))
    if sub.tracking:
        t = sub.tracking
        for name, value in (("track", t.track), ("trackingType", t.type), ("processKey", t.process_key)):
            if value:
                params.append((name, value))
    return params


def result_from_wire(body: Any) -> SubmissionResult:
    """Parse an upstream send response (v1/v2 shape)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError("upstream answer has no messages array")
    out = SubmissionResult(bulk_id=body.get("bulkId"))
    for m in body["messages"]:
        out.messages.append(
            SentMessage(
                to=str(m.get("to", "")),
                status=Status.from_wire(m.get("status") or {}),
                message_id=m.get("messageId"),
                sms_count=m.get("smsCount"),
            )
        )
    return out


def result_to_wire(result: SubmissionResult, include_sms_count: bool = True) -> dict[str, Any]:
    """The v1/v2 send response body."""
    body: dict[str, Any] = {}
    if result.bulk_id:
        body["bulkId"] = result.bulk_id
    messages = []
    for m in result.messages:
        item: dict[str, Any] = {"to": m.to, "status": m.status.to_wire()}
        if include_sms_count and m.sms_count is not None:
            item["smsCount"] = m.sms_count
        if m.message_id:
            item["messageId"] = m.message_id
        messages.append(item)
    body["messages"] = messages
    return body
