"""What each entrance accepts, by parameter name, and the check of one template value: one table shared by
the entrances (which refuse anything else) and the URL builder (which offers exactly these and checks fixed
values the same way), so that the two cannot drift (tests/test_urlbuilder.py asserts they agree)."""

from __future__ import annotations

from .config import Param, TemplateSpec
from .validate import Errors, Limits, control_reason, normalise_destination, parse_bool, parse_int
from .wire import jasmin, kannel, smseagle
from .wire.legacy import QUERY_PARAMS, split_destinations

CREDENTIAL_PARAMS = frozenset({"username", "password", "charset"})
IDEMPOTENCY_PARAM = "idempotencyKey"  # the Idempotency-Key header as a parameter (gateway/entrances/replay.py)

# GET /sms/1/text/query: Infobip's parameters, plus the bridge's own: messageId (one destination's custom id;
# such a send goes upstream through the advanced API, gateway/send/apis.py) and idempotencyKey (issue 13).
QUERY = QUERY_PARAMS | {"messageId", IDEMPOTENCY_PARAM}
JASMIN_SEND = jasmin.SEND_PARAMS  # GET|POST /send
SMSEAGLE_SEND = smseagle.SEND_PARAMS  # /http_api/send_sms
KANNEL_SEND = kannel.KNOWN  # /cgi-bin/sendsms (user, pass, dlrurl, dlrmask: other names of the same)


def template(spec: TemplateSpec) -> frozenset[str]:
    """``/t/<name>``: the template's declared parameters, the credentials and the idempotency key."""
    return frozenset(spec.params) | CREDENTIAL_PARAMS | {IDEMPOTENCY_PARAM}


def destination_reason(number: str, limits: Limits, country: str | None = None) -> str | None:
    """Why ``number`` is not a destination (national numbers read with ``country``, the caller policy's
    default_country, where the store of rules knows one), or None."""
    return (normalise_destination(number, limits, country) if country else normalise_destination(number, limits))[1]


def check_template_value(name: str, p: Param, value: str, limits: Limits, errs: Errors,
                         country: str | None = None) -> None:
    """A non-empty value of template parameter ``p`` by its declared type, choices and pattern."""
    if p.type == "phone":  # refused only when no number is valid: one bad one never cancels the rest
        reason = control_reason(value)  # named as the caller knows it, not as the rendered "to"
        if reason:
            errs.add(name, reason)
        reasons = [destination_reason(part, limits, country) for part in split_destinations([value])]
        if reasons and all(reasons):
            for reason in reasons:
                errs.add(name, reason)  # type: ignore[arg-type]
    elif p.type == "int":
        parse_int(name, value, -(2**63), 2**63, errs)
    elif p.type == "bool":
        parse_bool(name, value, errs)
    if p.choices and value not in p.choices:
        errs.add(name, f"must be one of {', '.join(p.choices)}, got {value!r}")
    if p.regex and not p.regex.fullmatch(value):
        errs.add(name, f"{value!r} does not match the pattern {p.regex.pattern!r}")
