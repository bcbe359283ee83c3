"""The OpenAPI 3 description of every bridge endpoint, served at ``/openapi.json``.

``PATHS`` is assembled from one function per concern; a branch that adds routes adds a function here.
tests/test_openapi.py keeps it in sync with the app's url_map (both ways) and runs schemathesis
against a running bridge.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from .. import accepts

JSON_CT = "application/json"
XML_CT = "application/xml"
HTML_CT = "text/html"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {JSON_CT: {"schema": _ref("RequestError")}, XML_CT: {"schema": {"type": "string"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Invalid request (the envelope names each parameter)", 401: "Missing or wrong credentials",
            403: "Scope or template not allowed", 404: "No such template or endpoint",
            405: "Method not allowed", 409: "A request with this Idempotency-Key is still in flight; retry later",
            422: "The Idempotency-Key was used for a different request", 413: "Request too large", 414: "URI too long",
            429: "Too many failed logins; for a send also the upstream's rate limit or the caller's "
                 "limits.max_waiting (Retry-After)", 502: "Upstream refused the bridge's key or answered nonsense",
            503: "Upstream unreachable; nothing was sent", 504: "Upstream did not answer in time"}
    if 401 in codes and 429 not in codes:  # whatever checks credentials may refuse a locked name or address
        codes = (*codes, 429)
    return {str(c): _error(text[c]) for c in codes}


SEND_ERRORS = (400, 401, 403, 404, 409, 422, 429, 502, 503, 504)
IDEM = [  # every send entrance (docs/delivery.md "Retries, idempotency keys and duplicates")
    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255},
     "description": "a retry with the same key gets the first answer (Idempotent-Replayed: true), nothing is sent"},
    {"name": "idempotencyKey", "in": "query", "schema": {"type": "string", "maxLength": 255},
     "description": "the Idempotency-Key header as a parameter"},
]
EXT = {"name": "ext", "in": "path", "required": True, "schema": {"type": "string", "enum": ["json", "xml"]},
       "description": "json or xml: the response format"}
CREDS = [
    {"name": "username", "in": "query", "schema": {"type": "string"}, "description": "the caller's name"},
    {"name": "password", "in": "query", "schema": {"type": "string"}, "description": "the caller's password"},
    {"name": "charset", "in": "query", "schema": {"type": "string"},
     "description": "charset of the values (utf-8 default, windows-1252, iso-8859-1, …)"},
]
QUERY_FIELDS = ("bulkId", "from", "to", "text", "flash", "transliteration", "languageCode", "intermediateReport",
                "notifyUrl", "notifyContentType", "callbackData", "validityPeriod", "sendAt", "track",
                "processKey", "trackingType", "indiaDltContentTemplateId", "indiaDltPrincipalEntityId",
                "indiaDltTelemarketerId")


def _send_ok(description: str = "Accepted: per destination status and messageId") -> dict[str, Any]:
    return {"description": description,
            "content": {JSON_CT: {"schema": _ref("SendResponse")}, XML_CT: {"schema": {"type": "string"}}}}


def _with_ext(path: str, ops: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same operations at ``path`` and ``path.{ext}``."""
    out = {path: ops, path + ".{ext}": {}}
    for method, op in ops.items():
        op2 = dict(op)
        op2["operationId"] = op["operationId"] + "Ext"
        op2["parameters"] = [EXT, *op.get("parameters", [])]
        out[path + ".{ext}"][method] = op2
    return out


def send_paths() -> dict[str, Any]:
    query_params = [*CREDS, *IDEM, *({"name": n, "in": "query", "schema": {"type": "string"}} for n in QUERY_FIELDS)]
    paths: dict[str, Any] = {}
    paths.update(_with_ext("/sms/1/text/query", {"get": {
        "operationId": "sendQuery", "tags": ["send"], "summary": "Infobip's query API (GET), for legacy apps",
        "parameters": query_params, "responses": {"200": _send_ok(), **_errors(*SEND_ERRORS)}}}))
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[^./]+$"},
            "description": "a template configured in config.yaml"}
    tmpl = {"tags": ["send"], "parameters": [name, *CREDS, *IDEM],
            "responses": {"200": _send_ok(), **_errors(*SEND_ERRORS)}}
    paths.update(_with_ext("/t/{name}", {
        "get": {**tmpl, "operationId": "sendTemplate",
                "summary": "A configured template; its own parameters are query parameters"},
        "post": {**tmpl, "operationId": "sendTemplateForm", "summary": "A configured template, form body",
                 "requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {
                     "schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
    }))
    paths.update(_with_ext("/sms/2/text/advanced", {"post": {
        "operationId": "sendAdvanced", "tags": ["send"], "summary": "Infobip's JSON send", "parameters": IDEM,
        "requestBody": {"required": True, "content": {JSON_CT: {"schema": _ref("AdvancedRequest")}}},
        "responses": {"200": _send_ok(), **_errors(*SEND_ERRORS)}}}))
    v3_error = {"description": "v3 error envelope", "content": {JSON_CT: {"schema": _ref("ApiErrorV3")}}}
    paths["/sms/3/messages"] = {"post": {
        "operationId": "sendMessagesV3", "tags": ["send"], "summary": "Infobip's v3 send (official SDKs)",
        "parameters": IDEM,
        "requestBody": {"required": True, "content": {JSON_CT: {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "Accepted", "content": {JSON_CT: {"schema": _ref("SendResponseV3")}}},
                      **{str(c): v3_error for c in (400, 401, 403, 404, 409, 422, 429, 502, 503, 504)}}}}
    preview_ok = {"description": "Parts, characters remaining, the text as it arrives",
                  "content": {JSON_CT: {"schema": _ref("PreviewResponse")}, XML_CT: {"schema": {"type": "string"}}}}
    preview_q = [*CREDS, {"name": "text", "in": "query", "schema": {"type": "string"}},
                 {"name": "languageCode", "in": "query", "schema": {"type": "string"}},
                 {"name": "transliteration", "in": "query", "schema": {"type": "string"}}]
    paths.update(_with_ext("/sms/1/preview", {
        "get": {"operationId": "previewGet", "tags": ["preview"], "summary": "Preview a text (query parameters)",
                "parameters": preview_q, "responses": {"200": preview_ok, **_errors(400, 401, 403)}},
        "post": {"operationId": "previewPost", "tags": ["preview"], "summary": "Infobip's preview (JSON body)",
                 "requestBody": {"required": True, "content": {JSON_CT: {"schema": _ref("PreviewRequest")}}},
                 "responses": {"200": preview_ok, **_errors(400, 401, 403)}},
    }))
    return paths


KANNEL_PARAMS = tuple(sorted(accepts.KANNEL_SEND - {accepts.IDEMPOTENCY_PARAM}))  # the entrance's own table


def kannel_paths() -> dict[str, Any]:
    """Kannel's smsbox (gateway/entrances/kannel.py): text answers, never JSON."""
    text = {"content": {HTML_CT: {"schema": {"type": "string"}}}}
    texts = {"202": "0: Accepted for delivery | 3: Queued for later delivery",
             "400": "<Field> field misformed, rejected[: reason]", "403": "Authorization failed for sendsms",
             "405": "Method not allowed", "409": "An Idempotency-Key still in flight",
             "422": "An Idempotency-Key used for a different request", "429": "Too many failed logins",
             "500": "Sending failed.", "502": "Sending failed. (the upstream)",
             "503": "Temporal failure, try again later.", "504": "Sending failed. (outcome unknown)"}
    responses = {code: {"description": d, **text} for code, d in texts.items()}
    params = [*IDEM, *({"name": n, "in": "query", "schema": {"type": "string"}} for n in KANNEL_PARAMS)]
    op = {"tags": ["send"], "parameters": params, "responses": responses}
    return {"/cgi-bin/sendsms": {
        "get": {**op, "operationId": "kannelSendsms", "summary": "Kannel's sendsms, for applications written for Kannel"},
        "post": {**op, "operationId": "kannelSendsmsPost", "summary": "Kannel's sendsms: a form, or text/plain "
                 "with X-Kannel-* headers", "requestBody": {"required": False, "content": {
                     "application/x-www-form-urlencoded": {"schema": {
                         "type": "object", "additionalProperties": {"type": "string"}}},
                     "text/plain": {"schema": {"type": "string"}}, "text/xml": {"schema": {"type": "string"}}}}},
    }}


def inbound_paths() -> dict[str, Any]:
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
    pulled = {"description": "The caller's unfetched inbound messages, each once",
              "content": {JSON_CT: {"schema": _ref("InboundResult")}, XML_CT: {"schema": {"type": "string"}}}}
    paths: dict[str, Any] = dict(_with_ext("/sms/1/inbox/reports", {"get": {
        "operationId": "pullInbound", "tags": ["inbound"], "summary": "Pull inbound SMS (Infobip's shape)",
        "parameters": [*CREDS, limit], "responses": {"200": pulled, **_errors(400, 401, 403)}}}))
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "inbound.token of the configuration"}
    paths["/hooks/inbound/{token}"] = {"post": {
        "operationId": "inboundPush", "tags": ["inbound"], "security": [],
        "summary": "Infobip's inbound push (JSON or XML), configured as the number's forward URL",
        "parameters": [token],
        "requestBody": {"required": True, "content": {JSON_CT: {"schema": _ref("InboundResult")},
                                                      XML_CT: {"schema": {"type": "string"}}}},
        "responses": {"200": {"description": "Stored", "content": {JSON_CT: {"schema": {"type": "object"}}}},
                      **_errors(400, 401, 404, 413)}}}
    return paths


def report_paths() -> dict[str, Any]:
    def q(*names: str) -> list[dict[str, Any]]:
        return [{"name": n, "in": "query", "schema": {"type": "string"}} for n in names]

    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
    results = {"description": "The caller's own reports or log entries",
               "content": {JSON_CT: {"schema": _ref("Results")}, XML_CT: {"schema": {"type": "string"}}}}
    paths: dict[str, Any] = {}
    paths.update(_with_ext("/sms/1/reports", {"get": {
        "operationId": "pullReports", "tags": ["reports"], "summary": "Delivery reports, each returned once",
        "parameters": [*CREDS, *q("bulkId", "messageId"), limit],
        "responses": {"200": results, **_errors(400, 401, 403)}}}))
    paths.update(_with_ext("/sms/1/logs", {"get": {
        "operationId": "logs", "tags": ["reports"], "summary": "Message logs (re-readable)",
        "parameters": [*CREDS, *q("from", "to", "bulkId", "messageId", "generalStatus", "sentSince", "sentUntil"),
                       limit],
        "responses": {"200": results, **_errors(400, 401, 403)}}}))
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "the token the bridge put in the notifyUrl it gave the upstream"}
    paths["/hooks/dlr/{token}"] = {"post": {
        "operationId": "reportPush", "tags": ["reports"], "security": [], "parameters": [token],
        "summary": "Infobip's delivery report push (JSON or XML) to the bridge's own notifyUrl",
        "requestBody": {"required": True, "content": {JSON_CT: {"schema": _ref("Results")},
                                                      XML_CT: {"schema": {"type": "string"}}}},
        "responses": {"200": {"description": "Stored", "content": {JSON_CT: {"schema": {"type": "object"}}}},
                      **_errors(400, 404, 413)}}}
    return paths


def conversion_paths() -> dict[str, Any]:
    mid = {"name": "messageId", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[^./]+$"},
           "description": "the messageId the caller was given for one of its own messages"}
    ok = {"description": "Conversion logged upstream (or already logged: the same processKey again)",
          "content": {JSON_CT: {"schema": _ref("Conversion")}, XML_CT: {"schema": {"type": "string"}}}}
    errors = {**_errors(400, 401, 403, 502, 503, 504),
              "404": _error("No such message among the caller's own (unknown and foreign ids alike)"),
              "409": _error("The message is not forwarded yet, or was never accepted upstream")}
    op = {"tags": ["conversion"], "parameters": [mid, *CREDS], "responses": {"200": ok, **errors}}
    return dict(_with_ext("/ct/1/log/end/{messageId}", {
        "get": {**op, "operationId": "logConversion", "summary": "Conversion tracking end tag, by a plain GET"},
        "post": {**op, "operationId": "logConversionPost", "summary": "Conversion tracking end tag (Infobip's POST)"},
    }))
def v3_pull_paths() -> dict[str, Any]:
    """``GET /sms/3/reports``, ``GET /sms/3/logs`` (v3 shapes, v3 errors) and the scheduled bulks."""
    def q(*names: str, array: bool = False) -> list[dict[str, Any]]:
        schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}} if array else {"type": "string"}
        return [{"name": n, "in": "query", "schema": schema, **({"explode": True} if array else {})} for n in names]

    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
    v3_error = {"description": "v3 error envelope", "content": {JSON_CT: {"schema": _ref("ApiErrorV3")}}}
    errors = {str(c): v3_error for c in (400, 401, 403)}
    paths: dict[str, Any] = {
        "/sms/3/reports": {"get": {
            "operationId": "pullReportsV3", "tags": ["reports"],
            "summary": "Delivery reports in the v3 shape, each returned once (shared with /sms/1/reports)",
            "parameters": [*q("bulkId", "messageId", "entityId", "applicationId", "campaignReferenceId"), limit],
            "responses": {"200": {"description": "The caller's unfetched final reports",
                                  "content": {JSON_CT: {"schema": _ref("Results")}}}, **errors}}},
        "/sms/3/logs": {"get": {
            "operationId": "logsV3", "tags": ["reports"], "summary": "Message logs in the v3 shape, cursor paging",
            "parameters": [*q("mcc", "mnc", "sender", "destination", "generalStatus", "sentSince", "sentUntil",
                              "entityId", "applicationId", "cursor"),
                           *q("bulkId", "messageId", "campaignReferenceId", array=True), limit,
                           {"name": "useCursor", "in": "query", "schema": {"type": "boolean"}}],
            "responses": {"200": {"description": "The caller's own messages, newest first", "content": {JSON_CT: {
                "schema": {"type": "object", "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"type": "object"}},
                    "cursor": {"type": "object", "properties": {"limit": {"type": "integer"},
                                                                "nextCursor": {"type": "string"}}}}}}}},
                          **errors}}},
    }
    bulk_id = {"name": "bulkId", "in": "query", "required": True, "schema": {"type": "string"}}
    bulk_errors = _errors(400, 401, 403, 404, 429, 502, 503, 504)

    def bulk_ok(field: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": "The scheduled bulk (the upstream's answer, the caller's bulkId)",
                "content": {JSON_CT: {"schema": {"type": "object", "required": ["bulkId"], "properties": {
                    "bulkId": {"type": "string"}, field: schema}}}}}

    send_at = bulk_ok("sendAt", {"type": "string"})
    status = bulk_ok("status", {"type": "string"})
    paths["/sms/1/bulks"] = {
        "get": {"operationId": "getScheduledBulk", "tags": ["bulks"], "summary": "A scheduled bulk's sendAt",
                "parameters": [bulk_id], "responses": {"200": send_at, **bulk_errors}},
        "put": {"operationId": "rescheduleBulk", "tags": ["bulks"], "summary": "Move a scheduled bulk",
                "parameters": [bulk_id], "requestBody": {"required": True, "content": {JSON_CT: {"schema": {
                    "type": "object", "required": ["sendAt"], "properties": {"sendAt": {"type": "string"}}}}}},
                "responses": {"200": send_at, **bulk_errors}},
    }
    paths["/sms/1/bulks/status"] = {
        "get": {"operationId": "getScheduledBulkStatus", "tags": ["bulks"], "summary": "A scheduled bulk's status",
                "parameters": [bulk_id], "responses": {"200": status, **bulk_errors}},
        "put": {"operationId": "updateScheduledBulkStatus", "tags": ["bulks"],
                "summary": "Pause (PAUSED), resume (PENDING) or cancel (CANCELED) a scheduled bulk",
                "parameters": [bulk_id], "requestBody": {"required": True, "content": {JSON_CT: {"schema": {
                    "type": "object", "required": ["status"], "properties": {
                        "status": {"enum": ["PENDING", "PAUSED", "CANCELED"]}}}}}},
                "responses": {"200": status, **bulk_errors}},
    }
    for path in ("/sms/1/bulks", "/sms/1/bulks/status"):  # Infobip's Node SDK sends a trailing slash
        paths[path + "/"] = {method: {**op, "operationId": op["operationId"] + "Slash",
                                      "summary": op["summary"] + " (with a trailing slash, as without)"}
                             for method, op in paths[path].items()}
    return paths


def dialect_paths() -> dict[str, Any]:
    """Other gateways' APIs (gateway/entrances/jasmin.py, smseagle.py): their own answers, not Infobip's."""
    def answers(ctypes: tuple[str, ...], *codes: int) -> dict[str, Any]:
        content = {ct: {"schema": {"type": "object" if ct == JSON_CT else "string"}} for ct in ctypes}
        out = {str(c): {"description": "Success" if c == 200 else "Refused, in the dialect's own words",
                        "content": content} for c in codes}
        return {**out, **_errors(413, 414)}

    def op(op_id: str, summary: str, responses: dict[str, Any], params: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"operationId": op_id, "tags": ["dialects"], "summary": summary, "security": [],
                "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}} for n in params],
                "responses": responses}

    sent = (200, 400, 403, 409, 412, 422, 500, 502, 503, 504)
    jasmin_send = answers(("text/plain",), *sent)
    jasmin_json = {"200": {"description": "Balance or rate (Jasmin's JSON)", "content": {JSON_CT: {"schema": {}}}},
                   **{str(c): {"description": "A JSON string: the reason", "content": {JSON_CT: {"schema": {}}}}
                      for c in (400, 403)}, **_errors(413, 414)}
    creds = ("username", "password")
    eagle = answers(("text/plain", XML_CT), 200, 400, 401, 403, 409, 422, 429, 500, 502, 503, 504)
    rpc = answers((JSON_CT,), 200, 400, 401, 403, 409, 422, 429, 500, 502, 503, 504)
    eagle_ops = {m: op(f"smseagleSend{m.title()}", "SMSEagle API v1 send_sms", eagle,
                       ("access_token", "login", "pass", "to", "message")) for m in ("get", "post")}
    rpc_op = {"post": {**op("smseagleJsonRpc", "SMSEagle JSON-RPC sms.send_sms", rpc),
                       "requestBody": {"required": True, "content": {JSON_CT: {"schema": {"type": "object"}}}}}}
    return {
        "/send": {m: op(f"jasminSend{m.title()}", "Jasmin's /send", jasmin_send, (*creds, "to", "content"))
                  for m in ("get", "post")},
        "/balance": {m: op(f"jasminBalance{m.title()}", "Jasmin's /balance", jasmin_json, creds)
                     for m in ("get", "post")},
        "/rate": {m: op(f"jasminRate{m.title()}", "Jasmin's /rate", jasmin_json, (*creds, "to", "content"))
                  for m in ("get", "post")},
        "/ping": {"get": op("jasminPing", "Jasmin's /ping: Jasmin/PONG",
                            {"200": {"description": "Jasmin/PONG", "content": {"text/plain": {"schema": {}}}}})},
        "/http_api/send_sms": eagle_ops,
        "/index.php/http_api/send_sms": {m: {**o, "operationId": o["operationId"] + "Old"} for m, o in eagle_ops.items()},
        "/jsonrpc/sms": rpc_op,
        "/index.php/jsonrpc/sms": {"post": {**rpc_op["post"], "operationId": "smseagleJsonRpcOld"}},
    }


def ops_paths() -> dict[str, Any]:
    def op(op_id: str, summary: str, ok: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"get": {"operationId": op_id, "tags": ["ops"], "summary": summary, "security": [],
                        "responses": {"200": ok, **(extra or {})}}}

    ready = {"description": "Readiness and each check", "content": {JSON_CT: {"schema": _ref("Ready")}}}
    return {
        "/healthz": op("healthz", "Liveness", {"description": "Alive", "content": {JSON_CT: {"schema": {
            "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}}),
        "/readyz": op("readyz", "Readiness: database writable, outbox backlog, upstreams probed (degraded: "
                      "still accepting while upstreams fail)", ready,
                      {"503": {**ready, "description": "Not ready"}}),
        "/metrics": op("metrics", "Prometheus metrics", {"description": "Prometheus text format", "content": {
            "text/plain": {"schema": {"type": "string"}}}}, {"404": _error("Metrics are switched off")}),
        "/openapi.json": op("openapi", "This description", {"description": "OpenAPI 3.1", "content": {
            JSON_CT: {"schema": {"type": "object"}}}}),
        "/": op("front", "The front door: what runs here, links to the console, this description and health",
                {"description": "An HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}),
        "/favicon.ico": op("favicon", "The icon", {"description": "An ICO image", "content": {
            "image/vnd.microsoft.icon": {"schema": {"type": "string", "format": "binary"}}}}),
    }


def ui_paths() -> dict[str, Any]:
    html = {"description": "An HTML page", "content": {HTML_CT: {"schema": {"type": "string"}}}}
    redirect = {"description": "To the login page (or the next page after logging in)"}
    api_ok = {"description": "Result", "content": {JSON_CT: {"schema": {"type": "object"}}}}
    body = {"required": True, "content": {JSON_CT: {"schema": {"type": "object"}}}}
    csrf = {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}}
    page_errors = _errors(400, 401, 403)

    def page(op_id: str, summary: str) -> dict[str, Any]:
        return {"get": {"operationId": op_id, "tags": ["ui"], "summary": summary, "security": [],
                        "responses": {"200": html, "302": redirect}}}

    def api(op_id: str, summary: str) -> dict[str, Any]:
        return {"post": {"operationId": op_id, "tags": ["ui"], "summary": summary, "security": [],
                         "parameters": [csrf], "requestBody": body,
                         "responses": {"200": api_ok, "302": redirect, **page_errors}}}

    form = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                                         "csrf_token": {"type": "string"}}}}}}
    return {
        "/ui/": page("uiIndex", "The admin UI: its dashboard"),
        "/ui/login": {**page("uiLoginPage", "Admin login page"), "post": {
            "operationId": "uiLogin", "tags": ["ui"], "summary": "Log in", "security": [], "requestBody": form,
            "responses": {"302": redirect, "401": html, **_errors(400)}}},
        "/ui/logout": {"post": {"operationId": "uiLogout", "tags": ["ui"], "summary": "Log out", "security": [],
                                "requestBody": form, "responses": {"302": redirect, **_errors(400)}}},
        "/ui/builder": page("uiBuilder", "URL builder"),
        "/ui/try": page("uiTry", "Try it: send with real values, live preview"),
        "/ui/config": page("uiConfig", "The running configuration, read-only, secrets masked"),
        "/ui/api/default": api("uiDefault", "The starting form for a target, style and preset"),
        "/ui/api/build": api("uiBuild", "Form state to URL and curl command"),
        "/ui/api/parse": api("uiParse", "A pasted URL to form state"),
        "/ui/api/preview": api("uiPreview", "Live preview of a text or a template's rendered text"),
        **log_paths(),
        "/ui/static/{filename}": {"get": {
            "operationId": "uiStatic", "tags": ["ui"], "summary": "The UI's JavaScript and CSS", "security": [],
            "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "A static file"}, **_errors(404)}}},
    }


def log_paths() -> dict[str, Any]:
    """The admin UI's message log (gateway/logview.py)."""
    def q(name: str, description: str, **schema: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description, "schema": {"type": "string", **schema}}

    params = [q("view", "messages, attempts, outbox, dead or inbound",
                enum=["messages", "attempts", "outbox", "dead", "inbound"]),
              q("number", "a destination, sender or inbound number"), q("bulkId", "a bulkId"),
              q("messageId", "a messageId (outbox jobs: their ref)"),
              q("status", "status group or name, message state, outbox job state, or an HTTP code (attempts)"),
              q("caller", "a caller"), q("template", "a template"), q("entrance", "an entrance (query, template…)"),
              q("text", "a substring of the text (only where texts are not masked)"),
              q("since", "created at or after (UTC: 2026-11-30 or 2026-11-30T08:15)"),
              q("until", "created before (UTC; a date alone: to the end of that day)"),
              {"name": "page", "in": "query", "description": "1-based page",
               "schema": {"type": "integer", "minimum": 1, "maximum": 100000}}]
    csv_params = [p for p in params if p["name"] not in ("view", "page")]
    dash = [{"name": "range", "in": "query", "schema": {"type": "string", "enum": ["hour", "day", "week"]}},
            q("caller", "a caller"), q("template", "a template")]
    html = {"description": "An HTML page", "content": {HTML_CT: {"schema": {"type": "string"}}}}
    redirect = {"description": "To the login page"}
    return {
        "/ui/log": {"get": {"operationId": "uiLog", "tags": ["ui"], "summary": "The message log (paged, filtered)",
                            "security": [], "parameters": params,
                            "responses": {"200": html, "302": redirect, **_errors(400)}}},
        "/ui/api/log": {"get": {"operationId": "uiLogData", "tags": ["ui"], "security": [], "parameters": params,
                                "summary": "One page of the message log as JSON (polled by the page)",
                                "responses": {"200": {"description": "Rows of display cells", "content": {
                                    JSON_CT: {"schema": _ref("LogPage")}}}, **_errors(400, 401)}}},
        "/ui/log.csv": {"get": {"operationId": "uiLogCsv", "tags": ["ui"], "security": [], "parameters": csv_params,
                                "summary": "Every message the filter matches, as CSV (streamed)",
                                "responses": {"200": {"description": "CSV", "content": {"text/csv": {
                                    "schema": {"type": "string"}}}}, "302": redirect, **_errors(400)}}},
        "/ui/dashboard": {"get": {"operationId": "uiDashboard", "tags": ["ui"], "security": [], "parameters": dash,
                                  "summary": "The dashboard", "responses": {"200": html, "302": redirect,
                                                                            **_errors(400)}}},
        "/ui/api/dashboard": {"get": {"operationId": "uiDashboardData", "tags": ["ui"], "security": [],
                                      "parameters": dash, "summary": "The dashboard's figures as JSON (polled)",
                                      "responses": {"200": {"description": "Figures", "content": {JSON_CT: {
                                          "schema": {"type": "object"}}}}, **_errors(400, 401)}}},
        "/ui/dashboard/chart.svg": {"get": {"operationId": "uiDashboardChart", "tags": ["ui"], "security": [],
                                            "parameters": dash, "summary": "Messages over the period (SVG)",
                                            "responses": {"200": {"description": "SVG", "content": {
                                                "image/svg+xml": {"schema": {"type": "string"}}}}, "302": redirect,
                                                **_errors(400)}}},
        "/ui/log/redrive/{job_id}": {"post": {
            "operationId": "uiRedrive", "tags": ["ui"], "security": [],
            "summary": "Re-drive a dead letter (form with csrf_token)",
            "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "properties": {"csrf_token": {"type": "string"}}}}}},
            "responses": {"302": {"description": "Back to the dead letters"}, **_errors(400, 401, 404)}}},
    }


STATUS = {"type": "object", "properties": {
    "groupId": {"type": "integer"}, "groupName": {"type": "string"}, "id": {"type": "integer"},
    "name": {"type": "string"}, "description": {"type": "string"}}}
SCHEMAS: dict[str, Any] = {
    "SendResponse": {"type": "object", "required": ["messages"], "properties": {
        "bulkId": {"type": "string"},
        "messages": {"type": "array", "items": {"type": "object", "required": ["to", "status"], "properties": {
            "to": {"type": "string"}, "status": STATUS, "smsCount": {"type": "integer"},
            "messageId": {"type": "string"}}}}}},
    "RequestError": {"type": "object", "required": ["requestError"], "properties": {"requestError": {
        "type": "object", "required": ["serviceException"], "properties": {"serviceException": {
            "type": "object", "required": ["messageId", "text"], "properties": {
                "messageId": {"type": "string"}, "text": {"type": "string"},
                "validationErrors": {"type": "object",
                                     "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}}}}},
    "AdvancedRequest": {"type": "object", "required": ["messages"], "properties": {
        "bulkId": {"type": "string"},
        "messages": {"type": "array", "items": {"type": "object", "required": ["destinations", "text"],
                                                "properties": {
            "from": {"type": "string"}, "text": {"type": "string"},
            "destinations": {"type": "array", "items": {"type": "object", "required": ["to"], "properties": {
                "to": {"type": "string"}, "messageId": {"type": "string"}}}}}}}}},
    "PreviewRequest": {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string"}, "languageCode": {"type": "string"}, "transliteration": {"type": "string"}}},
    "PreviewResponse": {"type": "object", "required": ["originalText", "previews"], "properties": {
        "originalText": {"type": "string"},
        "previews": {"type": "array", "items": {"type": "object", "properties": {
            "textPreview": {"type": "string"}, "messageCount": {"type": "integer"},
            "charactersRemaining": {"type": "integer"}, "configuration": {"type": "object"}}}}}},
    "SendResponseV3": {"type": "object", "required": ["messages"], "properties": {
        "bulkId": {"type": "string"},
        "messages": {"type": "array", "items": {"type": "object", "required": ["status"], "properties": {
            "messageId": {"type": "string"}, "destination": {"type": "string"}, "status": STATUS,
            "details": {"type": "object"}}}}}},
    "ApiErrorV3": {"type": "object", "required": ["errorCode", "description", "action", "violations", "resources"],
                   "properties": {
        "errorCode": {"type": "string"}, "description": {"type": "string"}, "action": {"type": "string"},
        "violations": {"type": "array", "items": {"type": "object", "properties": {
            "property": {"type": "string"}, "violation": {"type": "string"}}}},
        "resources": {"type": "array", "items": {"type": "object"}}}},
    "Results": {"type": "object", "required": ["results"], "properties": {
        "results": {"type": "array", "items": {"type": "object"}}}},
    "InboundResult": {"type": "object", "properties": {
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "messageId": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
            "text": {"type": "string"}, "cleanText": {"type": "string"}, "keyword": {"type": "string"},
            "receivedAt": {"type": "string"}, "smsCount": {"type": "integer"}}}},
        "messageCount": {"type": "integer"}, "pendingMessageCount": {"type": "integer"}}},
    "Conversion": {"type": "object", "required": ["processKey"], "properties": {"processKey": {"type": "string"}}},
    "LogPage": {"type": "object", "required": ["view", "page", "hasNext", "rows", "columns"], "properties": {
        "view": {"type": "string"}, "page": {"type": "integer"}, "hasNext": {"type": "boolean"},
        "columns": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "label": {"type": "string"}}}},
        "rows": {"type": "array", "items": {"type": "object", "required": ["key", "cells"], "properties": {
            "key": {"type": "string"},
            "cells": {"type": "object", "additionalProperties": {"type": "string"}}}}}}},
    "Ready": {"type": "object", "required": ["status", "checks"], "properties": {
        "status": {"enum": ["ready", "degraded", "not ready"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object", "additionalProperties": {"type": "object", "required": ["ok"]}}}},
}


def spec_for(app: Flask) -> dict[str, Any]:
    """The description of ``app``'s endpoints (the UI's only when the UI is enabled)."""
    config = app.extensions["smsbridge"].config
    paths = {**send_paths(), **report_paths(), **inbound_paths(), **conversion_paths(), **ops_paths(),
             **v3_pull_paths(), **dialect_paths(), **kannel_paths()}
    if config.ui.enabled:
        paths.update(ui_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "smsbridge", "version": "0.1",
                 "description": "Legacy HTTP GET callers to the Infobip SMS API. Errors use Infobip's envelope; "
                                "a path ending in .xml answers in XML."},
        "servers": [{"url": "/"}],
        "security": [{"basic": []}, {"appKey": []}, {}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "appKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                       "description": "App <key> (the caller's own API key)"}}},
    }


_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([A-Za-z_]+)>")


def openapi_path(rule: str) -> str:
    """A werkzeug rule as an OpenAPI path: ``/t/<name>.<any(json,xml):ext>`` → ``/t/{name}.{ext}``."""
    return _RULE_ARG.sub(r"{\1}", rule)
