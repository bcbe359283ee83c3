"""``POST /sms/1/preview`` (JSON, Infobip's shape) and ``GET /sms/1/preview[.json|.xml]`` for
browsers and legacy apps: parts, characters remaining and the text as the handset will show it."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..services import bridge
from ..wire.formats import render
from ..wire.preview import preview_body
from .common import authenticate, begin, json_body
from .querystring import parse_query

bp = Blueprint("preview", __name__)


@bp.post("/sms/1/preview", defaults={"ext": None})
@bp.post("/sms/1/preview.<any(json,xml):ext>")
def preview_post(ext: str | None) -> Response:
    fmt = begin(ext)
    authenticate(None, "preview")
    body = json_body()
    return render(preview_body(body), fmt, "preview")


@bp.get("/sms/1/preview", defaults={"ext": None})
@bp.get("/sms/1/preview.<any(json,xml):ext>")
def preview_get(ext: str | None) -> Response:
    fmt = begin(ext)
    params = parse_query(request.query_string, bridge().config.server.default_charset)
    authenticate(params, "preview")
    body = {k: params.get(k) for k in ("text", "languageCode", "transliteration") if params.get(k) is not None}
    return render(preview_body(body), fmt, "preview")
