"""``GET|POST /ct/1/log/end/<messageId>[.json|.xml]``: conversion tracking by a plain GET.

The caller (query username/password, a form body on POST, or an Authorization header; scope
``conversions``) names a message by the id it was given; gateway/conversion.py forwards Infobip's end
tag upstream with the bridge's own key and answers Infobip's ``{"processKey": …}``.
"""

from __future__ import annotations

from flask import Blueprint, Response

from ..send.tracking import Conversions
from ..services import bridge
from ..wire.formats import render
from .common import authenticate, begin, request_params

bp = Blueprint("conversion", __name__)


@bp.route("/ct/1/log/end/<messageId>", defaults={"ext": None}, methods=["GET", "POST"])
@bp.route("/ct/1/log/end/<messageId>.<any(json,xml):ext>", methods=["GET", "POST"])
def log_end(messageId: str, ext: str | None) -> Response:  # noqa: N803 (the path names it as Infobip does)
    fmt = begin(ext)
    ctx = bridge()
    params = request_params()
    caller = authenticate(params, "conversions")
    carriers = {r.name: r.client for r in ctx.sender.upstreams.routes}
    key = Conversions(ctx.db, ctx.clock, ctx.sender.upstream, carriers).log_end(caller.name, messageId)
    return render({"processKey": key}, fmt, "generic")
