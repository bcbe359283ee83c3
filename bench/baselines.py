"""Baseline apps for the HTTP benchmark, served with the same waitress settings as the bridge.

- ``create_floor_app``: a bare Flask endpoint answering a fixed Infobip-shaped JSON: the most any
  Flask+waitress app can do on this machine (scenario a).
- ``create_proxy_app``: a bare Flask proxy that forwards ``/sms/1/text/query`` with one
  ``requests.Session`` and returns the upstream's answer unchanged: no validation, templating or
  storing (the baseline of scenario c).
"""

from __future__ import annotations

import json

import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter

FLOOR_BODY = json.dumps(
    {
        "bulkId": "2034072219640523072",
        "messages": [
            {"to": "41793026727", "status": {"groupId": 1, "groupName": "PENDING", "id": 26,
                                             "name": "PENDING_ACCEPTED", "description": "Message sent to next instance"},
             "smsCount": 1, "messageId": "2250be2d4219-3af1-78856-aabe-1362af1edfd2"},
            {"to": "41793026834", "status": {"groupId": 1, "groupName": "PENDING", "id": 26,
                                             "name": "PENDING_ACCEPTED", "description": "Message sent to next instance"},
             "smsCount": 1, "messageId": "2250be2d4219-3af1-78856-aabe-1362af1edfd3"},
        ],
    }
).encode()


def create_floor_app() -> Flask:
    app = Flask("bench-floor")

    @app.get("/sms/1/text/query")
    def query() -> Response:
        return Response(FLOOR_BODY, mimetype="application/json")

    return app


def create_proxy_app(upstream_url: str, api_key: str, pool_size: int = 32) -> Flask:
    """Forward the raw query string upstream with the key in ``Authorization: App``; pass the answer back."""
    app = Flask("bench-proxy")
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.headers["Authorization"] = f"App {api_key}"
    target = upstream_url.rstrip("/") + "/sms/1/text/query?"
    app.extensions["bench.session"] = session

    @app.get("/sms/1/text/query")
    def query() -> Response:
        up = session.get(target + request.query_string.decode("latin-1"), timeout=(3, 15))
        return Response(up.content, status=up.status_code, mimetype="application/json")

    return app
