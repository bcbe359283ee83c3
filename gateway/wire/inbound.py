"""Infobip's inbound (MO) shape: parsing a push (JSON or XML) and writing the pull/forward shape.

A push is validated in Infobip's wire names (``messageId, from, to, text, cleanText, keyword,
receivedAt, smsCount, price{pricePerMessage, currency}, callbackData`` and the passed-through
``applicationId``, ``entityId``, ``campaignReferenceId``) and leaves as :class:`InboundMessage`;
:func:`inbox_body` writes the pull (and ``infobip`` forward) shape from the model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from ..model import ApiError, InboundMessage
from ..validate import Errors, control_reason, format_datetime
from . import xmlbody
from .reports import price_from_wire, price_to_wire

REQUIRED = ("messageId", "from", "to")
STRINGS = ("messageId", "from", "to", "text", "cleanText", "keyword", "receivedAt", "callbackData",
           "applicationId", "entityId", "campaignReferenceId")
TEXTS = ("text", "cleanText")  # may hold line breaks; lone surrogates and NUL are refused
MAX_RESULTS = 1000


def _text_reason(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which no text encoding can carry"
    return None


def _item(raw: Any, i: int, errs: Errors, now: datetime) -> dict[str, Any] | None:
    path = f"results[{i}]"
    if not isinstance(raw, dict):
        errs.add(path, "must be an object")
        return None
    msg: dict[str, Any] = {}
    for key, value in raw.items():
        if key in STRINGS:
            if value is None:
                continue
            if not isinstance(value, str | int) or isinstance(value, bool):
                errs.add(f"{path}.{key}", "must be a string")
                continue
            text = str(value)
            reason = _text_reason(text) if key in TEXTS else control_reason(text)
            if reason:
                errs.add(f"{path}.{key}", reason)
                continue
            msg[key] = text
        elif key == "smsCount":
            try:
                msg[key] = int(value)
            except (TypeError, ValueError, OverflowError):
                errs.add(f"{path}.smsCount", "must be a whole number")
        elif key == "price":
            if isinstance(value, dict):
                price: dict[str, Any] = {}
                if value.get("pricePerMessage") is not None:
                    try:
                        price["pricePerMessage"] = float(value["pricePerMessage"])
                    except (TypeError, ValueError, OverflowError):
                        errs.add(f"{path}.price.pricePerMessage", "must be a number")
                if value.get("currency") is not None:
                    if control_reason(str(value["currency"])):
                        errs.add(f"{path}.price.currency", "contains a control character")
                    else:
                        price["currency"] = str(value["currency"])
                msg["price"] = price
            elif value is not None:
                errs.add(f"{path}.price", "must be an object")
        # other keys are ignored: Infobip may add fields
    for key in REQUIRED:
        if not msg.get(key):
            errs.add(f"{path}.{key}", "is required")
    msg.setdefault("text", "")
    msg.setdefault("cleanText", msg["text"])
    msg.setdefault("keyword", "")
    msg.setdefault("receivedAt", format_datetime(now))  # absent: when the bridge received it
    msg.setdefault("smsCount", 1)
    return msg


_FIELDS = ("messageId", "from", "to", "text", "cleanText", "keyword", "receivedAt", "smsCount", "price",
           "callbackData")


def inbound_from_wire(d: dict[str, Any]) -> InboundMessage:
    """A validated (or stored) message in the wire names as the model."""
    price = d.get("price")
    return InboundMessage(
        str(d["messageId"]), str(d["from"]), str(d["to"]), d.get("text") or "", d.get("cleanText"),
        d.get("keyword") or "", d.get("receivedAt") or "", int(d["smsCount"]) if d.get("smsCount") is not None else 1,
        price_from_wire(price),
        d.get("callbackData"), {k: v for k, v in d.items() if k not in _FIELDS},
    )


def inbound_to_wire(m: InboundMessage) -> dict[str, Any]:
    """A message in Infobip's pull shape."""
    out: dict[str, Any] = {
        "messageId": m.message_id, "from": m.sender, "to": m.to, "text": m.text,
        "cleanText": m.clean_text if m.clean_text is not None else m.text, "keyword": m.keyword or "",
        "receivedAt": m.received_at, "smsCount": m.sms_count or 1,
    }
    if m.price is not None:
        out["price"] = price_to_wire(m.price)
    if m.callback_data is not None:
        out["callbackData"] = m.callback_data
    out.update(m.extra)
    return out


def parse_json(body: Any, now: datetime) -> list[InboundMessage]:
    """The messages of a JSON push ``{"results": [...]}``; 400 naming each bad field."""
    return [inbound_from_wire(m) for m in _parse_json(body, now)]


def _parse_json(body: Any, now: datetime) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ApiError.bad_request("results", "is required: a push body is {\"results\": [...]}")
    results = body["results"]
    if len(results) > MAX_RESULTS:
        raise ApiError.bad_request("results", f"at most {MAX_RESULTS} messages per push")
    errs = Errors()
    out = [m for i, r in enumerate(results) if (m := _item(r, i, errs, now)) is not None]
    errs.raise_if_any()
    return out


def _xml_value(el: Element) -> Any:
    children = list(el)
    if not children:
        return el.text or ""
    return {c.tag: _xml_value(c) for c in children}


def _xml_items(root: Element) -> list[Element]:
    """Message elements, whatever the list convention: ``<results><results>…`` (double-wrapped),
    ``<results><result>…`` (the DLR style) or ``<results>…`` repeated under the root."""
    items: list[Element] = []
    for res in root.findall("results"):
        kids = list(res)
        if kids and all(k.tag in ("result", "results") for k in kids):
            items.extend(kids)
        else:
            items.append(res)
    return items


def parse_xml(data: bytes, now: datetime) -> list[InboundMessage]:
    """The messages of an XML push, parsed with defusedxml (no DTDs, entities or external fetches; UTF-8,
    UTF-16, US-ASCII or Latin-1 only: gateway/wire/xmlbody.py)."""
    root = xmlbody.parse(data)
    results = [_xml_value(el) for el in _xml_items(root)]
    if not results:
        raise ApiError.bad_request("results", "is required: no <results> element in the XML body")
    return parse_json({"results": [r if isinstance(r, dict) else {} for r in results]}, now)


def pull_body(messages: list[dict[str, Any]], pending: int) -> dict[str, Any]:
    """Infobip's pull (and forward) shape: ``{results, messageCount, pendingMessageCount}``."""
    return {"results": messages, "messageCount": len(messages), "pendingMessageCount": pending}


def inbox_body(messages: list[InboundMessage], pending: int) -> dict[str, Any]:
    """:func:`pull_body` of model messages."""
    return pull_body([inbound_to_wire(m) for m in messages], pending)
