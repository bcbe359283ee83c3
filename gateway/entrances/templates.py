"""``GET|POST /t/<name>[.json|.xml]``: a named route from config.yaml, rendered with the caller's values.

Values are checked against the template's declared parameters (required, default, type, regex,
choices) and for unsubstituted placeholders before rendering; the rendered fields are then read
exactly like query-API parameters, so both entrances share one set of rules.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from .. import accepts
from ..accepts import check_template_value
from ..config import Caller, TemplateSpec
from ..model import ApiError
from ..render import RenderError
from ..send.policy import SendPolicy
from ..send.rejects import split_invalid, validate_rest
from ..services import bridge
from ..validate import (
    Errors,
)
from ..wire.formats import render
from ..wire.legacy import result_to_wire, submission_from_query
from .common import (
    authenticate,
    begin,
    check_params,
    finish_rejected,
    request_params,
)
from .querystring import QueryParams
from .replay import send, send_entrance

bp = Blueprint("templates", __name__)


def _values(spec: TemplateSpec, caller: Caller, params: QueryParams) -> dict[str, str]:
    errs = Errors()
    accepted = accepts.template(spec)
    unknown = [n for n in params.names() if n not in accepted]
    for n in unknown:
        known = ", ".join(spec.params) or "none"
        errs.add(n, f"is not a parameter of template {spec.name!r} (its parameters: {known})")
    hygiene = spec.hygiene or caller.hygiene
    limits = spec.limits or caller.limits
    country = SendPolicy.of(caller, spec).default_country
    values: dict[str, str] = {}
    for name, p in spec.params.items():
        value = params.get(name)
        if value is None or value == "":
            if p.required:
                errs.add(name, "is required")
                continue
            value = p.default or ""
        elif p.placeholders:
            reason = hygiene.check(name, value, address=p.type == "phone")
            if reason:
                errs.add(name, reason)
                continue
        if value != "":
            check_template_value(name, p, value, limits, errs, country)
        values[name] = value
    errs.raise_if_any()
    return values


@bp.route("/t/<name>", defaults={"ext": None}, methods=["GET", "POST"])
@bp.route("/t/<name>.<any(json,xml):ext>", methods=["GET", "POST"])
@send_entrance
def send_template(name: str, ext: str | None) -> Response:
    fmt = begin(ext)
    ctx = bridge()
    params = request_params()
    caller = authenticate(params, "templates")
    spec = ctx.config.templates.get(name)
    if spec is None:
        raise ApiError(404, "NOT_FOUND", f"No template named {name!r}; configured: {', '.join(ctx.config.templates) or 'none'}")
    if not caller.may_use_template(name) or ("*" not in spec.callers and caller.name not in spec.callers):
        raise ApiError(403, "FORBIDDEN", f"caller {caller.name!r} may not use template {name!r}")
    values = _values(spec, caller, params)
    try:
        fields = ctx.templates[name].render(values)
    except RenderError as exc:
        raise ApiError(500, "GENERAL_ERROR", str(exc)) from None
    rendered = QueryParams(list(fields.items()))
    errs = Errors()
    check_params(spec.hygiene or caller.hygiene, rendered, frozenset({"to", "from"}), errs, skip=frozenset({"text"}))
    sub = submission_from_query(rendered, errs)
    sub.caller, sub.entrance = caller.name, f"template:{name}"
    limits = spec.limits or caller.limits
    policy = SendPolicy.of(caller, spec)  # the caller's and the template's senders and destinations
    rejected = split_invalid(sub, limits, flat=True, policy=policy)  # one bad destination never cancels the rest
    validate_rest(sub, limits, rejected, flat=True, errs=errs, policy=policy)
    result, g.attempts = send(sub, spec.api, caller, spec)
    result = finish_rejected(sub, spec.api, result, rejected)
    return render(result_to_wire(result, include_sms_count=True), fmt, "send")
