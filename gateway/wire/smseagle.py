"""SMSEagle's API v1 shapes (smseagle.eu/apiv1, the devices' manuals) ⇄ the model: ``send_sms`` parameters (HTTP
GET and the JSON-RPC ``sms.send_sms`` method) to a Submission, and its answers: text ``OK; ID=[…]``, XML
``<xml><item><message_id>…</message_id><status>ok</status></item></xml>``, JSON-RPC ``simple``
(``{"result": "OK; ID=[…]"}``) and ``extended`` (``{"result": {"message_id": "…", "status": "ok"}}``, a list
for several recipients). Errors are the device's texts (``Invalid login or password``, ``Invalid access
token``, ``Wrong or missing >>to<< parameter``), with the bridge's reason appended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from ..entrances.querystring import QueryParams
from ..model import Destination, Message, Submission

#: ``send_sms``'s parameters (API v1), plus the bridge's idempotencyKey.
SEND_PARAMS = frozenset({"access_token", "login", "pass", "to", "message", "date", "highpriority", "unicode",
                         "flash", "modem_no", "responsetype", "validity", "send_after", "send_before",
                         "message_type", "test", "attachments", "idempotencyKey"})
#: validity values and their minutes (``max``: the network's maximum, i.e. the upstream's default)
VALIDITY = {"5m": 5, "10m": 10, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "12h": 720, "1d": 1440, "2d": 2880,
            "5d": 7200, "1w": 10080, "2w": 20160, "4w": 40320, "max": None}
WRONG_LOGIN = "Invalid login or password"
WRONG_TOKEN = "Invalid access token"


class EagleError(Exception):
    """A refusal in SMSEagle's words; ``status`` is the bridge's HTTP status for it."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


#: the model's (Infobip's) field names as send_sms calls them
PARAMETER_NAMES = {"text": "message", "validityPeriod": "validity", "sendAt": "date", "from": "to"}


def wrong(name: str, reason: str = "") -> EagleError:
    name = PARAMETER_NAMES.get(name, name)
    return EagleError(400, f"Wrong or missing >>{name}<< parameter" + (f" ({reason})" if reason else ""))


@dataclass(slots=True)
class EagleSend:
    submission: Submission
    test: bool  # test=1: validated, never sent, answered ID=0


def _flag(params: QueryParams, name: str) -> bool:
    value = params.get(name)
    if value in (None, "", "0"):
        return False
    if value == "1":
        return True
    raise wrong(name, "must be 0 or 1")


def parse_date(value: str) -> datetime:
    """``date`` as the device reads it: ``YYYYmmDDHHMM`` in the bridge's local time."""
    if len(value) != 12 or not value.isdigit():
        raise ValueError
    return datetime.strptime(value, "%Y%m%d%H%M").astimezone()


def send_from_params(params: QueryParams) -> EagleSend:
    """``send_sms``'s parameters as a Submission; EagleError naming the parameter for anything invalid or that
    the bridge cannot carry. ``highpriority`` and ``modem_no`` have no Infobip meaning: accepted, ignored
    (docs/migrating-from-smseagle.md)."""
    to = [t.strip() for t in (params.get("to") or "").split(",") if t.strip()]
    if not to:
        raise wrong("to", "give one or more numbers, comma-separated")
    text = params.get("message")
    if not text:
        raise wrong("message", "the text to send")
    if (params.get("message_type") or "sms") != "sms":
        raise wrong("message_type", "only sms: the bridge sends no MMS")
    if params.get("attachments"):
        raise wrong("attachments", "MMS attachments cannot be sent")
    for name in ("send_after", "send_before"):
        if params.get(name):
            raise wrong(name, "quiet hours are not supported: schedule with date instead")
    _flag(params, "unicode")  # the bridge picks GSM-7 or UCS-2 for the text either way
    _flag(params, "highpriority")
    flash, test = _flag(params, "flash"), _flag(params, "test")
    validity = params.get("validity")
    if validity is not None and validity not in VALIDITY:
        raise wrong("validity", f"one of {', '.join(VALIDITY)}")
    modem = params.get("modem_no")
    if modem and not modem.isdigit():
        raise wrong("modem_no", "a modem number")
    send_at = None
    if params.get("date"):
        try:
            send_at = parse_date(params.get("date") or "").isoformat(timespec="milliseconds")
        except ValueError:
            raise wrong("date", "YYYYmmDDHHMM") from None
    msg = Message(destinations=[Destination(t) for t in to], text=text, flash=flash,
                  validity_period=VALIDITY.get(validity or "max"), send_at=send_at)
    return EagleSend(Submission(messages=[msg], entrance="smseagle"), test)


def rpc_params(body: Any) -> tuple[str, QueryParams]:
    """A JSON-RPC body ``{"method": "sms.send_sms", "params": {…}}``: its method and its params as text."""
    if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
        raise EagleError(400, "Wrong parameters (give a JSON object with method and params)")
    method = body.get("method")
    items = []
    for k, v in body["params"].items():
        if isinstance(v, (dict, list)):
            items.append((str(k), json.dumps(v)))
        elif v is not None:
            items.append((str(k), str(int(v)) if isinstance(v, bool) else str(v)))
    return str(method), QueryParams(items)


# -- answers --------------------------------------------------------------------------------------------------

Outcome = tuple[str | None, str | None]  # (message id, error text): one per recipient


def text_answer(outcomes: list[Outcome]) -> str:
    return "\n".join(f"OK; ID=[{mid}]" if err is None else err for mid, err in outcomes)


def xml_answer(outcomes: list[Outcome]) -> str:
    items = "".join(
        f"<item><message_id>{escape(mid or '')}</message_id><status>ok</status></item>" if err is None
        else f"<item><error_text>{escape(err)}</error_text><status>error</status></item>" for mid, err in outcomes)
    return f"<xml>{items}</xml>"


def xml_error(text: str) -> str:
    return f"<xml><error_text>{escape(text)}</error_text><status>error</status></xml>"


def rpc_answer(outcomes: list[Outcome], extended: bool) -> dict[str, Any]:
    if not extended:
        return {"result": text_answer(outcomes)}
    items: list[dict[str, str]] = [{"message_id": mid or "", "status": "ok"} if err is None
                                   else {"error_text": err, "status": "error"} for mid, err in outcomes]
    return {"result": items[0] if len(items) == 1 else items}


def rpc_error(text: str, extended: bool) -> dict[str, Any]:
    return {"result": {"error_text": text, "status": "error"}} if extended else {"result": text}
