"""Jasmin's HTTP API shapes (jookies/jasmin ``protocols/http/endpoints/*.py``, ``routing/throwers.py``) ⇄ the
model: ``/send`` parameters to a Submission, its ``Success "<id>"`` / ``Error "<reason>"`` answers, the DLR
thrower's fields and the deliverSm thrower's (MO) fields.

Answers are byte for byte Jasmin's: ``text/plain`` ``Success "id"``; ``Error "…"`` with Jasmin's statuses
(400 arguments, 403 authentication / authorization / throughput / charging, 412 no route, 500 server);
``/balance`` and ``/rate`` answer JSON (an error there is a JSON string, as Jasmin writes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..entrances.querystring import QueryParams
from ..model import Destination, InboundMessage, Message, Report, Submission
from .smpp import STATES, receipt_date

#: ``/send``'s arguments (send.py ``fields``), plus the bridge's idempotencyKey.
SEND_PARAMS = frozenset({"username", "password", "to", "from", "coding", "priority", "sdt", "validity-period",
                         "dlr", "dlr-url", "dlr-level", "dlr-method", "tags", "content", "hex-content",
                         "custom_tlvs", "idempotencyKey"})
#: ``/rate``'s arguments (rate.py ``fields``).
RATE_PARAMS = frozenset({"username", "password", "to", "from", "coding", "priority", "validity-period", "tags",
                         "content", "hex-content"})
BALANCE_PARAMS = frozenset({"username", "password"})

_TO = re.compile(r"^\+?\d+$")
_CODINGS = {str(c) for c in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14)}
#: codings whose content is text the bridge can send as it is (Infobip picks GSM-7 or UCS-2 for the text)
TEXT_CODINGS = frozenset({"0", "1", "3", "8"})
_SDT = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d)(\d{2})([+\-R])$")
_TAGS = re.compile(r"^[-a-zA-Z0-9,]*$")
#: Infobip's group → the SMPP receipt state Jasmin's level-2 DLR carries (``stat:`` of the receipt)
_STATES = {**STATES, "PENDING": "ACCEPTD"}  # Jasmin says a pending message is accepted
CONNECTOR = "infobip"  # the ``connector`` / ``origin-connector`` every DLR and MO names


@dataclass(frozen=True, slots=True)
class DlrRequest:
    """What ``dlr``/``dlr-url``/``dlr-level``/``dlr-method`` asked for; stored as the message's report channel
    (``jasmin:<level>:<method>``, the URL in the message's notifyUrl)."""

    url: str
    level: int  # 1 SMSC (the upstream's first report), 2 terminal (the final one), 3 both
    method: str  # GET | POST

    @property
    def channel(self) -> str:
        return f"jasmin:{self.level}:{self.method}"

    @classmethod
    def from_channel(cls, channel: str | None, url: str | None) -> DlrRequest | None:
        parts = (channel or "").split(":")
        if len(parts) != 3 or parts[0] != "jasmin" or not url:
            return None
        return cls(url, int(parts[1]), parts[2])


class JasminError(Exception):
    """A refusal in Jasmin's words: HTTP status and the text inside ``Error "…"``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def answer_success(message_id: str) -> bytes:
    return f'Success "{message_id}"'.encode()


def answer_error(text: str) -> bytes:
    return f'Error "{text}"'.encode()


#: the model's (Infobip's) field names as Jasmin's arguments call them
ARGUMENT_NAMES = {"text": "content", "notifyUrl": "dlr-url", "validityPeriod": "validity-period", "sendAt": "sdt"}


def argument_errors(errors: dict[str, list[str]]) -> str:
    """Validation errors as Jasmin words them: ``Argument [to] …`` (all of them, ``;``-separated)."""
    return "; ".join(f"Argument [{ARGUMENT_NAMES.get(name, name)}] {reason}" for name, reasons in errors.items()
                     for reason in reasons)


def check_arguments(params: QueryParams, known: frozenset[str], mandatory: tuple[str, ...]) -> None:
    """Jasmin's UrlArgsValidator: no arguments at all, an unknown one, a missing mandatory one (400)."""
    if not params.names():
        raise JasminError(400, "Mandatory arguments not found, please refer to the HTTPAPI specifications.")
    for name in params.names():
        if name not in known:
            raise JasminError(400, f"Argument [{name}] is unknown.")
    for name in mandatory:
        if params.get(name) is None:
            raise JasminError(400, f"Mandatory argument [{name}] is not found.")


def _invalid(name: str, value: str, why: str = "") -> JasminError:
    return JasminError(400, f"Argument [{name}] has an invalid value: [{value}].{' ' + why if why else ''}")


def parse_sdt(value: str, now: datetime) -> datetime:
    """SMPP v3.4 time ``YYMMDDhhmmsstnnp``: absolute with an offset in quarter hours (``+``/``-``) or relative
    (``R``); ValueError when impossible."""
    m = _SDT.match(value)
    if not m:
        raise ValueError("not YYMMDDhhmmsstnnp")
    yy, mo, dd, hh, mi, ss, _tenths, nn, p = m.groups()
    if p == "R":
        days = int(yy) * 365 + int(mo) * 30 + int(dd)  # SMPP's relative years and months are nominal
        return now + timedelta(days=days, hours=int(hh), minutes=int(mi), seconds=int(ss))
    offset = timedelta(minutes=15 * int(nn)) * (1 if p == "+" else -1)
    local = datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss))
    return (local - offset).replace(tzinfo=UTC)


def _dlr(params: QueryParams) -> DlrRequest | None:
    """Jasmin's defaults: ``dlr-url`` or ``dlr-level`` force ``dlr=yes``; then level 1 and POST by default."""
    dlr = params.get("dlr")
    if dlr is not None and dlr not in ("yes", "no"):
        raise _invalid("dlr", dlr)
    url, level, method = params.get("dlr-url"), params.get("dlr-level"), params.get("dlr-method")
    if url is not None and not re.match(r"^(http|https)://", url):
        raise _invalid("dlr-url", url)
    if level is not None and level not in ("1", "2", "3"):
        raise _invalid("dlr-level", level)
    if method is not None and method.upper() not in ("GET", "POST"):
        raise _invalid("dlr-method", method)
    wanted = dlr == "yes" or url is not None or level is not None
    if not wanted:
        return None
    if not url:  # Jasmin would track a DLR it can never deliver: refused, never silently dropped
        raise JasminError(400, "Argument [dlr-url] is required when a DLR is requested (dlr=yes or dlr-level).")
    return DlrRequest(url, int(level or 1), (method or "POST").upper())


def send_from_params(params: QueryParams, now: datetime) -> tuple[Submission, DlrRequest | None]:
    """``/send``'s arguments as a Submission (one destination) and the DLR it asks for; JasminError (400)
    naming the argument for anything invalid or that the bridge cannot carry."""
    to = params.get("to") or ""
    if to[:1] == " " and to[1:].isdigit():  # an unencoded "+" became a space
        to = "+" + to[1:]
    if not _TO.match(to):
        raise _invalid("to", to, "Give one destination, digits with an optional leading + (Jasmin sends one "
                                 "destination per request).")
    if params.get("hex-content") is not None:
        raise JasminError(400, "Argument [hex-content] is not supported: the bridge sends text; give the text in "
                               "content (UTF-8) and it is sent as GSM-7 or UCS-2, whichever carries it.")
    if params.get("custom_tlvs") is not None:
        raise JasminError(400, "Argument [custom_tlvs] is not supported: Infobip's API has no SMPP TLVs.")
    content = params.get("content")
    if content is None:
        raise JasminError(400, "content or hex-content not present.")
    coding = params.get("coding") or "0"
    if coding not in _CODINGS:
        raise _invalid("coding", coding)
    if coding == "8":
        content = ucs2_content(content)
    if coding not in TEXT_CODINGS:
        raise _invalid("coding", coding, "The bridge sends text: use coding 0 (GSM-7) or 8 (UCS-2); binary and "
                                         "national codings cannot go through Infobip's text API.")
    priority = params.get("priority")
    if priority is not None and priority not in ("0", "1", "2", "3"):
        raise _invalid("priority", priority)
    tags = params.get("tags")
    if tags is not None and not _TAGS.match(tags):
        raise _invalid("tags", tags)
    validity = params.get("validity-period")
    if validity is not None and not validity.isdigit():
        raise _invalid("validity-period", validity)
    send_at = None
    sdt = params.get("sdt")
    if sdt is not None:
        try:
            send_at = parse_sdt(sdt, now)
        except ValueError:
            raise _invalid("sdt", sdt, "Use SMPP time YYMMDDhhmmsstnnp, e.g. 000000000100000R.") from None
    dlr = _dlr(params)
    msg = Message(destinations=[Destination(to)], text=content, sender=params.get("from") or None,
                  validity_period=int(validity) if validity is not None else None,
                  send_at=send_at.isoformat(timespec="milliseconds") if send_at else None,
                  notify_url=dlr.url if dlr else None,
                  intermediate_report=bool(dlr and dlr.level in (1, 3)))
    return Submission(messages=[msg], entrance="jasmin"), dlr


def ucs2_content(raw: str) -> str:
    """``content`` sent with ``coding=8``: its bytes (one Latin-1 character each) are UTF-16BE, as Jasmin
    passes them to the SMSC; 400 naming ``content`` when they are not."""
    try:
        return raw.encode("iso-8859-1").decode("utf-16-be")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise JasminError(400, "Argument [content] is not UCS-2: with coding=8 the content's bytes must be UTF-16BE "
                               "(e.g. %06%23 for U+0623); send UTF-8 text with coding=0 instead and the bridge "
                               "sends it as Unicode when it needs to.") from None


def rate_from_params(params: QueryParams) -> tuple[str, str]:
    """``/rate``'s destination and content (empty by default, as Jasmin's)."""
    to = params.get("to") or ""
    if not _TO.match(to):
        raise _invalid("to", to)
    coding = params.get("coding") or "0"
    if coding not in _CODINGS:
        raise _invalid("coding", coding)
    if params.get("hex-content") is not None:
        raise JasminError(400, "Argument [hex-content] is not supported: give the text in content.")
    content = params.get("content") or ""
    return to, ucs2_content(content) if coding == "8" else content


# -- delivery reports (DLRThrower.http_dlr_callback) ------------------------------------------------------------


def dlr_fields(report: Report, level: int, text: str, connector: str = CONNECTOR) -> list[tuple[str, str]]:
    """The thrower's arguments for one receipt: level 1 ``id, message_status (ESME_*), level, connector``;
    level 2 adds ``id_smsc, sub, dlvrd, subdate, donedate, err, text`` (the first 20 characters)."""
    group = report.status.group_name if report.status else ""
    if level == 1:
        status = "ESME_RSUBMITFAIL" if group == "REJECTED" else "ESME_ROK"
        return [("id", report.message_id), ("message_status", status), ("level", "1"), ("connector", connector)]
    state = _STATES.get(group, "UNKNOWN")
    err = report.error.id if report.error else 0
    return [
        ("id", report.message_id), ("message_status", state), ("level", "2"), ("connector", connector),
        ("id_smsc", report.upstream_message_id or report.message_id), ("sub", "001"),
        ("dlvrd", "001" if state == "DELIVRD" else "000"), ("subdate", receipt_date(report.sent_at, "")),
        ("donedate", receipt_date(report.done_at, "")), ("err", f"{err:03d}"), ("text", text[:20]),
    ]


CHANNEL = "jasmin:"  # a message's report channel (its callback) when its notify URL is a Jasmin dlr-url


def dlr_levels(requested: int, report: Report) -> list[int]:
    """Which receipts a delivery report makes: a final one the terminal level (2); a final REJECTED is also the
    SMSC's refusal when level 1 was asked for alone. The SMSC level (1) is the upstream's acceptance of the
    send, as Jasmin's is the SMSC's submit_sm_resp (gateway/delivery/kannel.py ``SubmitEvents``), never an
    intermediate report: one level-1 receipt per message."""
    if report.intermediate:
        return []
    if requested == 1:
        return [1] if report.status is not None and report.status.group_name == "REJECTED" else []
    return [2]


# -- MO (deliverSmThrower.http_deliver_sm_callback) ---------------------------------------------------------------


def mo_fields(msg: InboundMessage, connector: str = CONNECTOR) -> list[tuple[str, str]]:
    """An inbound message as Jasmin's HTTP client connector receives it: ``id, from, to, origin-connector,
    priority, coding, content, binary`` (the content's UTF-8 bytes in hex). ``validity`` is left out, as
    Jasmin does when the message carries none (Infobip's inbound messages never do)."""
    gsm = msg.text.isascii()
    content = msg.text
    return [("id", msg.message_id), ("from", msg.sender), ("to", msg.to), ("origin-connector", connector),
            ("priority", "0"), ("coding", "0" if gsm else "8"), ("content", content),
            ("binary", content.encode("utf-8").hex())]


def balance_body() -> dict[str, Any]:
    """``/balance``: the bridge keeps no balance or message quota per caller: ``ND`` (not defined) as Jasmin."""
    return {"balance": "ND", "sms_count": "ND"}


def rate_body(parts: int) -> dict[str, Any]:
    """``/rate``: the parts the text takes (the preview engine's count); no rate is configured: 0.0."""
    return {"submit_sm_count": parts, "unit_rate": 0.0}
