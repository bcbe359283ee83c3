"""The front door: ``GET /`` says what runs here and links the console, the API description and health;
``/favicon.ico``. Without it a browser pointed at the bridge met a JSON 404 (issue 18 item 1)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, render_template, send_file

from ..services import bridge

bp = Blueprint("front", __name__)
STATIC = Path(__file__).resolve().parents[2] / "static"
CSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"


@bp.get("/")
def front() -> Response:
    config = bridge().config
    page = render_template("front.html", ui=config.ui.enabled, sandbox=config.upstream.is_sandbox)
    return Response(page, content_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                             "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


@bp.get("/favicon.ico")
def favicon() -> Response:
    resp = send_file(STATIC / "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
