"""Exits: JSON and XML writers for Infobip's shapes, and the error envelope.

The path extension picks the serialisation (``.xml``, ``.json``); without one, ``Accept:
application/xml`` picks XML and anything else JSON. XML follows the legacy Infobip convention: the
root element is named per response (``SMSResponse`` ...), lists are double-wrapped with the list's
name reused for each item (``<messages><messages>…</messages></messages>``).
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from flask import Request, Response

from ..model import ApiError

JSON = "json"
XML = "xml"

# Root element per response kind (infobip-sms-api.md §12.4).
XML_ROOTS = {
    "send": "SMSResponse",
    "reports": "SMSReportResponse",
    "logs": "SMSLogsResponse",
    "inbox": "MOReportResponse",
    "preview": "SMSPreviewResponse",
    "dlr": "reportResponse",
    "error": "requestError",
    "generic": "response",
}


def negotiate(request: Request, ext: str | None) -> str:
    """``xml`` or ``json`` for this request: the extension wins, then the Accept header."""
    if ext:
        return XML if ext.lower() == "xml" else JSON
    accept = request.accept_mimetypes
    if accept["text/html"]:
        # A browser's address bar (Accept: text/html,…,application/xml;q=0.9,…): JSON, as for curl.
        return JSON
    if accept and accept.best_match(["application/json", "application/xml", "text/xml"]) in (
        "application/xml",
        "text/xml",
    ):
        # "*/*" (browsers, curl) prefers the first listed, JSON.
        return XML
    return JSON


def _xml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return escape(str(v))


def _xml(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for k, v in value.items():
            _xml(k, v, out)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        out.append(f"<{name}>")
        for item in value:
            _xml(name, item, out)
        out.append(f"</{name}>")
    elif value == "":
        out.append(f"<{name} />")
    else:
        out.append(f"<{name}>{_xml_value(value)}</{name}>")


def to_xml(root: str, body: dict[str, Any]) -> str:
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _xml(root, body, out)
    return "".join(out)


def render(body: dict[str, Any], fmt: str, kind: str = "generic", status: int = 200) -> Response:
    """A Response with ``body`` as JSON or XML."""
    if fmt == XML:
        return Response(to_xml(XML_ROOTS.get(kind, kind), body), status, mimetype="application/xml")
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")), status, mimetype="application/json"
    )


def error_body(err: ApiError) -> dict[str, Any]:
    exc: dict[str, Any] = {"messageId": err.message_id, "text": err.text}
    if err.validation_errors:
        exc["validationErrors"] = err.validation_errors
    return {"requestError": {"serviceException": exc}}


def error_xml(err: ApiError) -> str:
    """XML envelope; validation errors become <validationError><property/><message/></…> items,
    since property paths such as ``messages[0].text`` are not valid element names."""
    out = ['<?xml version="1.0" encoding="UTF-8"?><requestError><serviceException>']
    out.append(f"<messageId>{escape(err.message_id)}</messageId><text>{escape(err.text)}</text>")
    if err.validation_errors:
        out.append("<validationErrors>")
        for prop, msgs in err.validation_errors.items():
            for m in msgs:
                out.append(
                    f"<validationError><property>{escape(prop)}</property>"
                    f"<message>{escape(m)}</message></validationError>"
                )
        out.append("</validationErrors>")
    out.append("</serviceException></requestError>")
    return "".join(out)


def render_error(err: ApiError, fmt: str) -> Response:
    if fmt == XML:
        resp = Response(error_xml(err), err.http_status, mimetype="application/xml")
    else:
        resp = Response(
            json.dumps(error_body(err), ensure_ascii=False, separators=(",", ":")),
            err.http_status,
            mimetype="application/json",
        )
    if err.http_status == 401:
        # Not "Basic": a browser would pop up a login box instead of showing the JSON error.
        resp.headers["WWW-Authenticate"] = 'App realm="smsbridge"'
    return resp
