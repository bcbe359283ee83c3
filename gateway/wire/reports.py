"""Delivery-report bodies on the wire (v1/v2 shape), shared by the bridge and the sandbox.

JSON: ``{"results": [report, ...]}``. XML (``notifyContentType: application/xml``, infobip-sms-api.md
§7.3): ``<reportResponse><results><result>…</result></results></reportResponse>``, child elements
named like the JSON properties. XML from outside is parsed with defusedxml only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element

from ..clock import fmt_time, parse_time
from ..model import ApiError, Price, Report, ReportError, Status
from ..validate import control_reason
from . import xmlbody
from .formats import _xml
from .jsonbody import loads

XML_TYPES = ("application/xml", "text/xml")
_INTS = {"smsCount", "groupId", "id", "messageCount"}
_JSON_HEAD, _JSON_TAIL = b'{"results":[', b"]}"
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><reportResponse><results>'
_XML_TAIL = b"</results></reportResponse>"


@lru_cache(maxsize=4096)
def wire_time(t: float) -> str:
    """:func:`fmt_time`, memoised: a report's times are written twice (stored body, push) and a push's
    reports often share them; formatting costs ~5 µs, a report ~400 µs end to end."""
    return fmt_time(t) or ""


def error_from_wire(d: Any) -> ReportError | None:
    if not isinstance(d, dict):
        return None
    return ReportError(int(d.get("groupId", 0)), str(d.get("groupName", "")), int(d.get("id", 0)),
                       str(d.get("name", "")), str(d.get("description", "")), bool(d.get("permanent", False)))


def error_to_wire(e: ReportError) -> dict[str, Any]:
    return {"groupId": e.group_id, "groupName": e.group_name, "id": e.id, "name": e.name,
            "description": e.description, "permanent": e.permanent}


def price_from_wire(d: Any) -> Price | None:
    if not isinstance(d, dict):
        return None
    return Price(d.get("pricePerMessage"), d.get("currency"))


def price_to_wire(p: Price) -> dict[str, Any]:
    return {k: v for k, v in (("pricePerMessage", p.price_per_message), ("currency", p.currency)) if v is not None}


def report_from_wire(d: dict[str, Any]) -> Report:
    """One report item (a push's, or a stored v1 body) as a :class:`Report`."""
    status, count = d.get("status"), d.get("smsCount")
    return Report(
        message_id=str(d.get("messageId", "")),
        status=Status.from_wire(status) if isinstance(status, dict) else None,
        error=error_from_wire(d.get("error")), bulk_id=d.get("bulkId"), to=d.get("to"), sender=d.get("from"),
        price=price_from_wire(d.get("price")), sent_at=parse_time(d.get("sentAt")), done_at=parse_time(d.get("doneAt")),
        sms_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        mcc_mnc=d.get("mccMnc"), callback_data=d.get("callbackData"),
    )


def report_v1(r: Report) -> dict[str, Any]:
    """A report in the caller-facing v1/v2 shape (a push result, a pull result, the stored body)."""
    out: dict[str, Any] = {
        "bulkId": r.bulk_id, "messageId": r.message_id, "to": r.to, "from": r.sender,
        "sentAt": None if r.sent_at is None else wire_time(r.sent_at),
        "doneAt": None if r.done_at is None else wire_time(r.done_at), "smsCount": r.sms_count,
        "mccMnc": r.mcc_mnc, "callbackData": r.callback_data,
        "price": price_to_wire(r.price) if r.price else None,
        "status": r.status.to_wire() if r.status else None,
        "error": error_to_wire(r.error) if r.error else None,
    }
    return {k: v for k, v in out.items() if v is not None}


def log_v1(r: Report, text: str) -> dict[str, Any]:
    """A message's current state (as a report) in the ``GET /sms/1/logs`` v1 shape: the report's fields with
    the text, without callbackData."""
    out: dict[str, Any] = {
        "bulkId": r.bulk_id, "messageId": r.message_id or None, "to": r.to, "from": r.sender, "text": text,
        "sentAt": None if r.sent_at is None else wire_time(r.sent_at),
        "doneAt": None if r.done_at is None else wire_time(r.done_at), "smsCount": r.sms_count,
        "mccMnc": r.mcc_mnc, "price": price_to_wire(r.price) if r.price else None,
        "status": r.status.to_wire() if r.status else None,
        "error": error_to_wire(r.error) if r.error else None,
    }
    return {k: v for k, v in out.items() if v is not None}


def is_xml(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in XML_TYPES


def reports_body(results: list[dict[str, Any]], content_type: str | None) -> tuple[bytes, str]:
    """The push body for ``results`` and its content type (JSON unless ``content_type`` is XML)."""
    if is_xml(content_type):
        out: list[str] = []
        for r in results:
            _xml("result", r, out)
        return _XML_HEAD + "".join(out).encode("utf-8") + _XML_TAIL, "application/xml"
    items = ",".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in results)
    return _JSON_HEAD + items.encode("utf-8") + _JSON_TAIL, "application/json"


def merge_reports_bodies(bodies: Sequence[bytes | None], content_type: str | None) -> bytes | None:
    """One push body with the results of several :func:`reports_body` bodies of one format, in order;
    None when a body is not one (e.g. written by something else): those are sent one by one.

    The bodies are spliced, not re-parsed: JSON ``{"results":[a]}`` + ``{"results":[b,c]}`` ->
    ``{"results":[a,b,c]}``; XML keeps one declaration and one ``<reportResponse><results>`` around
    every ``<result>``."""
    head, tail, sep = (_XML_HEAD, _XML_TAIL, b"") if is_xml(content_type) else (_JSON_HEAD, _JSON_TAIL, b",")
    parts = []
    for body in bodies:
        if body is None or len(body) < len(head) + len(tail) or not body.startswith(head) \
                or not body.endswith(tail):
            return None
        inner = body[len(head):len(body) - len(tail)]
        if inner:
            parts.append(inner)
    return head + sep.join(parts) + tail


def _element(e: Element) -> Any:
    children = list(e)
    if not children:
        text = (e.text or "").strip()
        if e.tag in _INTS and text.lstrip("-").isdigit() and text.isascii() and len(text) < 19:
            return int(text)
        if text in ("true", "false"):
            return text == "true"
        if e.tag == "pricePerMessage":
            try:
                return float(text)
            except ValueError:
                return text
        return text
    return {c.tag: _element(c) for c in children}


def reports_from_push(body: bytes, content_type: str | None) -> list[Report]:
    """The reports of a pushed body (see :func:`parse_reports`); 400 naming the first bad item."""
    out = []
    for i, item in enumerate(parse_reports(body, content_type)):
        try:
            out.append(report_from_wire(item))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ApiError.bad_request(f"results[{i}]", f"is not a delivery report ({type(exc).__name__})") from None
    return out


_CHECKED = ("messageId", "bulkId", "to", "from", "callbackData", "mccMnc", "sentAt", "doneAt")


def _check_item(i: int, item: dict[str, Any]) -> None:
    """A report's ids and status names: strings (or numbers) without control characters."""
    fields = [(k, item.get(k)) for k in _CHECKED]
    for part in ("status", "error", "price"):
        sub = item.get(part)
        if isinstance(sub, dict):
            fields += [(f"{part}.{k}", v) for k, v in sub.items()]
        elif sub is not None:
            raise ApiError.bad_request(f"results[{i}].{part}", "must be an object")
    for name, value in fields:
        if value is None or isinstance(value, bool | int | float):
            continue
        if not isinstance(value, str):
            raise ApiError.bad_request(f"results[{i}].{name}", "must be a string")
        reason = control_reason(value)
        if reason:
            raise ApiError.bad_request(f"results[{i}].{name}", reason)


def parse_reports(body: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """The report items of a pushed body (JSON, or XML by content type or a leading ``<``)."""
    stripped = body.lstrip()
    if is_xml(content_type) or stripped.startswith(b"<") or stripped[:2] in (b"\xff\xfe", b"\xfe\xff"):
        root = xmlbody.parse(body)  # UTF-8/-16, ASCII or Latin-1 only; no DTDs or entities
        results = root.find("results")
        items = list(results) if results is not None else root.findall("result")
        parsed = [_element(i) for i in items]  # <result> items (or <results> items: tolerated)
        out = [p for p in parsed if isinstance(p, dict)]
    else:
        doc = loads(body or b"null")  # depth, lone surrogates, NaN: 400 naming the field
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list):
            raise ApiError.bad_request("results", "is required: an array of delivery reports")
        out = [r for r in results if isinstance(r, dict)]
    for i, item in enumerate(out):
        _check_item(i, item)
    return out
