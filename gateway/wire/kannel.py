"""Kannel's dialect (legacy-gateways.md §1.2-1.4, Kannel's ``gw/smsbox.c`` and ``gw/urltrans.c``), without HTTP:
``sendsms`` parameters read into a :class:`SendSms`, smsbox's answers and error texts, and the ``%``-escapes
of a ``dlr-url`` filled as Kannel fills them.

Texts are Kannel's, byte for byte, where Kannel has one (``0: Accepted for delivery``, ``Authorization failed
for sendsms``, ``<Field> field misformed, rejected``); a refusal Kannel does not know (a rule of the bridge or
of the upstream) keeps Kannel's form and adds the reason after a colon: ``Text field misformed, rejected: must
not be empty: there is nothing to send``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

from ..model import Destination, Message, Report
from ..validate import format_datetime
from .smpp import STATES, receipt_date

# -- answers (smsbox.c: delivery_report / smsbox_req_handle / sendsms_thread) ------------------------------------
ACCEPTED = (202, "0: Accepted for delivery")
QUEUED = (202, "3: Queued for later delivery")
AUTH_FAILED = (403, "Authorization failed for sendsms")
MISSING_TO = (400, "Missing receiver number, rejected")
EMPTY_TO = (400, "Empty receiver number not allowed, rejected")
DENIED = (400, "Number(s) has/have been denied by white- and/or black-lists.")
NOT_ROUTABLE = (403, "Not routable. Do not try again.")
TEMPORAL = (503, "Temporal failure, try again later.")
SENDING_FAILED = (500, "Sending failed.")
INVALID_CONTENT_TYPE = (400, "Invalid content-type")
#: smsbox's reply headers (``sendsms_reply_hdrs``): Kannel really says text/html
HEADERS = (("Content-Type", "text/html"), ("Pragma", "no-cache"), ("Cache-Control", "no-cache"))

#: how Kannel names each parameter in ``<Field> field misformed, rejected``
FIELD_NAMES = {
    "udh": "UDH", "account": "Account", "dlr-url": "DLR-URL", "dlr-mask": "DLR-Mask", "mclass": "MClass",
    "pid": "PID", "rpi": "RPI", "alt-dcs": "Alt-DCS", "mwi": "MWI", "coding": "Coding", "compress": "Compress",
    "validity": "Validity", "deferred": "Deferred", "priority": "Priority", "charset": "Charset", "text": "Text",
    "to": "To", "from": "From", "smsc": "SMSC", "binfo": "Binfo", "meta-data": "Meta-Data", "flash": "Flash",
    "username": "Username", "password": "Password", "idempotencyKey": "IdempotencyKey",
}
#: the bridge's field names (gateway/validate.py) back to Kannel's parameters
FROM_BRIDGE = {"validityPeriod": "validity", "sendAt": "deferred", "notifyUrl": "dlr-url", "flash": "mclass"}

#: parameters read as integers, with their accepted ranges (smsbox_req_handle's; dlr-mask: the bits honoured)
INT_RANGES: dict[str, tuple[int, int]] = {
    "dlr-mask": (0, 63), "mclass": (0, 3), "pid": (0, 255), "rpi": (0, 2), "alt-dcs": (0, 1), "mwi": (0, 7),
    "coding": (0, 2), "compress": (0, 1), "validity": (0, 2**31 - 1), "deferred": (0, 2**31 - 1),
    "priority": (0, 3),
}
#: accepted, checked like Kannel checks them, and ignored: they have no Infobip meaning (docs/migrating-from-kannel.md)
IGNORED = ("smsc", "account", "binfo", "priority", "meta-data", "alt-dcs", "rpi", "compress", "pid")
KNOWN = frozenset({"username", "user", "password", "pass", "from", "to", "text", "charset", "coding", "udh",
                   "mclass", "flash", "mwi", "validity", "deferred", "dlr-mask", "dlrmask", "dlr-url", "dlrurl",
                   "idempotencyKey", *IGNORED})  # idempotencyKey: the bridge's own (docs/delivery.md)
ACCOUNT_MAX = 64  # Kannel's ACCOUNT_MAX_LEN
CHANNEL = "kannel:"  # a message's report channel (its callback) when its notify URL is a Kannel dlr-url


class KannelAnswer(Exception):  # noqa: N818 - an answer in Kannel's words, not a bug
    """A refusal in Kannel's words: HTTP status and the one-line body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text

    @classmethod
    def of(cls, answer: tuple[int, str]) -> KannelAnswer:
        return cls(*answer)


def misformed(name: str, reason: str | None = None) -> KannelAnswer:
    """``<Field> field misformed, rejected`` (Kannel's own text), with the bridge's reason when Kannel has none."""
    text = f"{FIELD_NAMES.get(name, name)} field misformed, rejected"
    if name == "account":
        text = "Account field misformed or too long, rejected"
    elif name == "charset":
        text = "Charset or body misformed, rejected"
    return KannelAnswer(400, f"{text}: {reason}" if reason else text)


def refusal(errors: Mapping[str, Sequence[str]]) -> str:
    """One line for the bridge's validation errors, each in Kannel's form, the parameter named as the app names it."""
    parts = []
    for name, reasons in errors.items():
        kname = FROM_BRIDGE.get(name, name)
        parts.append(misformed(kname, "; ".join(reasons)).text)
    return " | ".join(parts)


@dataclass
class SendSms:
    """One ``sendsms`` request as read (values decoded; ``text`` in its declared charset)."""

    username: str | None
    password: str | None
    receivers: list[str]
    text: str
    sender: str | None = None
    coding: int = 0
    mclass: int | None = None
    validity: int | None = None
    deferred: int | None = None
    dlr_mask: int = 0
    dlr_url: str | None = None
    charset: str | None = None
    ignored: dict[str, str] = field(default_factory=dict)


def _charset(name: str) -> str:
    """A charset name as Kannel's iconv would take it, as a Python text codec; KannelAnswer if unknown."""
    wanted = {"ucs-2": "utf-16-be", "ucs2": "utf-16-be", "ucs-2be": "utf-16-be", "utf-16": "utf-16-be"}.get(
        name.strip().lower(), name.strip())
    try:
        info = codecs.lookup(wanted)
    except LookupError:
        raise misformed("charset", f"unknown charset {name!r}; e.g. UTF-8, ISO-8859-1, windows-1252, UTF-16BE") from None
    if not getattr(info, "_is_text_encoding", True):  # base64, rot13 ...: not a charset
        raise misformed("charset", f"{name!r} is not a character set")
    return info.name


def _int(name: str, value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    lo, hi = INT_RANGES[name]
    try:
        n = int(value.strip())
    except ValueError:
        raise misformed(name) from None
    if not lo <= n <= hi:
        raise misformed(name)
    return n


def read_sendsms(pairs: Sequence[tuple[str, bytes]]) -> SendSms:
    """The request's parameters (query, form or ``X-Kannel-*`` headers; each once) as a :class:`SendSms`;
    raise :class:`KannelAnswer` in the order smsbox checks them (authentication is the entrance's, first).

    Every value but ``text`` is UTF-8; ``text`` is decoded with ``charset`` (default UTF-8; with ``coding=2``
    and no charset, UTF-16BE as Kannel documents, refused when the bytes are not UTF-16BE)."""
    raw: dict[str, bytes] = {}
    for name, value in pairs:
        if name in raw:  # Kannel takes the first and drops the rest silently; a guess either way
            raise misformed(name, "is given more than once; give it once (several receivers go in one to, "
                            "separated by spaces)")
        raw[name] = value
    values: dict[str, str] = {}
    for name, value in raw.items():
        if name in ("text", "udh"):  # bytes: the text is decoded with its charset, a UDH is binary
            continue
        try:
            values[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise misformed(name, "is not valid UTF-8") from None
    unknown = [n for n in raw if n not in KNOWN]
    if unknown:
        raise misformed(unknown[0], f"is not a parameter of Kannel's sendsms; known: {', '.join(sorted(KNOWN))}")
    to = values.get("to")
    if to is None:
        raise KannelAnswer.of(MISSING_TO)
    if to == "":
        raise KannelAnswer.of(EMPTY_TO)
    receivers = to.split()  # octstr_split_words: an unencoded "+" arrived as a space and separates
    if not receivers:
        raise KannelAnswer.of(EMPTY_TO)
    if raw.get("udh"):
        raise misformed("udh", "a user data header (binary or concatenated SMS built by the application) cannot be "
                        "carried by the upstream; send the whole text: the bridge splits it")
    account = values.get("account")
    if account and (len(account) > ACCOUNT_MAX or any(c in account for c in "[]\n\r")):
        raise misformed("account")
    dlr_url = values.get("dlr-url", values.get("dlrurl")) or None
    if dlr_url and not dlr_url.lower().startswith(("http://", "https://")):
        raise misformed("dlr-url")
    mask_name = "dlr-mask" if "dlr-mask" in values else "dlrmask"
    dlr_mask = _int("dlr-mask", values.get(mask_name)) or 0
    mclass = _int("mclass", values.get("mclass"))
    if values.get("flash") not in (None, "", "0", "1"):
        raise misformed("flash")
    if mclass is None and values.get("flash") == "1":  # the deprecated alias of mclass=0
        mclass = 0
    for name in ("pid", "rpi", "alt-dcs"):
        _int(name, values.get(name))
    if _int("mwi", values.get("mwi")) is not None:
        raise misformed("mwi", "message waiting indication cannot be carried by the upstream")
    coding = _int("coding", values.get("coding")) or 0
    _int("compress", values.get("compress"))
    validity = _int("validity", values.get("validity"))
    deferred = _int("deferred", values.get("deferred"))
    _int("priority", values.get("priority"))
    if coding == 1:
        raise misformed("coding", "coding=1 (8-bit binary data) cannot be carried by the upstream; send text "
                        "with coding=0 or coding=2")
    if mclass in (2, 3):
        raise misformed("mclass", f"message class {mclass} (SIM/terminal specific) cannot be carried by the "
                        "upstream; use mclass=0 (flash) or 1 (normal)")
    declared = values.get("charset") or None
    text = _text(raw.get("text"), declared, coding)
    return SendSms(
        username=values.get("username", values.get("user")), password=values.get("password", values.get("pass")),
        receivers=receivers, text=text, sender=values.get("from") or None, coding=coding, mclass=mclass,
        validity=validity, deferred=deferred, dlr_mask=dlr_mask, dlr_url=dlr_url, charset=declared,
        ignored={n: values[n] for n in IGNORED if values.get(n)},
    )


def _text(raw: bytes | None, declared: str | None, coding: int) -> str:
    if raw is None:
        return ""
    if declared is None and coding == 2:  # Kannel's documented default for UCS-2
        try:
            return raw.decode("utf-16-be")
        except UnicodeDecodeError:
            raise misformed("charset", "with coding=2 and no charset the text must be UTF-16BE bytes; declare "
                            "the charset the application uses, e.g. charset=UTF-8") from None
    codec = _charset(declared) if declared else "utf-8"
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + 1].hex().upper()
        raise misformed("charset", f"text byte 0x{bad} at position {exc.start} is not valid {declared or 'UTF-8'}; "
                        "declare the charset the application uses, e.g. charset=windows-1252") from None


def to_message(req: SendSms, caller: str, has_callback: bool, now: float) -> tuple[Message, str | None]:
    """The canonical message of a request, and its report channel when its dlr-url takes the reports (a
    ``dlr-mask`` with no ``dlr-url`` is left to the caller's callback, refused when it has none)."""
    msg = Message(
        destinations=[Destination(r.replace("-", "")) for r in req.receivers],  # "-" is in Kannel's sendsms-chars
        text=req.text, sender=req.sender, flash=req.mclass == 0, validity_period=req.validity,
    )
    if req.deferred:
        msg.send_at = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(minutes=req.deferred))
    if req.dlr_url and req.dlr_mask:
        meta = req.ignored.get("meta-data", "")
        msg.notify_url = fill(req.dlr_url, request_escapes(req, caller), only=STATIC, meta=meta)
        msg.intermediate_report = bool(req.dlr_mask & (4 | 32))
        return msg, channel(req.dlr_mask)
    if req.dlr_mask and not has_callback:
        raise misformed("dlr-url", f"dlr-mask={req.dlr_mask} asks for delivery reports, but there is no dlr-url "
                        f"and caller {caller!r} has no callback configured")
    return msg, None


def headers_pairs(headers: Mapping[str, str], body: bytes) -> list[tuple[str, bytes]]:
    """A ``text/plain`` POST (Kannel's ``get_x_kannel_from_headers``): the body is the text, options in
    ``X-Kannel-<Name>`` headers (``X-Kannel-DLR-Mask``, ``X-Kannel-Username`` ...)."""
    pairs: list[tuple[str, bytes]] = []
    for name, value in headers.items():
        low = name.lower()
        if low.startswith("x-kannel-"):
            pairs.append((low[len("x-kannel-"):], value.encode("latin-1", "replace")))
    pairs.append(("text", body))
    return pairs


#: Kannel's POST text/xml (``get_x_kannel_from_xml``): element path under <submit> -> sendsms parameter
_XML = {"oa/number": "from", "ud": "text", "udh": "udh", "meta-data": "meta-data", "dcs/mclass": "mclass",
        "dcs/coding": "coding", "dcs/mwi": "mwi", "dcs/compress": "compress", "dcs/alt-dcs": "alt-dcs", "pid": "pid",
        "rpi": "rpi", "vp/delay": "validity", "timing/delay": "deferred", "statusrequest/dlr-mask": "dlr-mask",
        "statusrequest/dlr-url": "dlr-url", "from/user": "user", "from/username": "username", "from/pass": "pass",
        "from/password": "password", "from/account": "account", "to": "smsc", "priority": "priority",
        "binfo": "binfo"}


def xml_pairs(body: bytes) -> list[tuple[str, bytes]]:
    """Kannel's XML sendsms (``<message><submit><da><number>…</number></da>…<ud>…</ud>…</submit></message>``),
    ``<da>`` repeated for several receivers, as sendsms parameters; the text is UTF-8 (the document's own
    encoding is read by the XML parser)."""
    from .xmlbody import parse  # defusedxml: no DTDs, no entities

    root = parse(body, "body")
    submit = root.find("submit") if root.tag == "message" else None
    if submit is None:
        raise KannelAnswer(400, "Invalid XML: expected <message><submit>…</submit></message>")
    pairs: list[tuple[str, bytes]] = []
    receivers = [(e.text or "").strip() for e in submit.findall("da/number")]
    if receivers:
        pairs.append(("to", " ".join(receivers).encode("utf-8")))
    for path, name in _XML.items():
        node = submit.find(path)
        if node is not None and node.text is not None:
            pairs.append((name, node.text.encode("utf-8")))
    if not any(n == "charset" for n, _ in pairs) and any(n == "text" for n, _ in pairs):
        pairs.append(("charset", b"UTF-8"))
    return pairs


# -- DLR: events and %-escapes (urltrans_fill_escape_codes) -------------------------------------------------------
_SAFE = "!*'()"  # with quote_plus's own "_.-~" and alphanumerics: octstr_url_encode's safe set; space -> "+"
_STAT = {**STATES, "PENDING": "ENROUTE"}  # Kannel's SMSCs say a pending message is en route
_NO_DATE = "0000000000"  # a receipt date Kannel's text gives when there is none
_NOT_ENCODED = frozenset("tTI%")
_ESCAPE = re.compile(r"%(#[^#]*#[^#]*#|.)", re.DOTALL)
#: escapes filled when the message is accepted (the request's values); the rest when the report comes
STATIC = frozenset("cCmMnoBDRuOvVf")


def encode(value: str) -> str:
    """Kannel's ``octstr_url_encode``: UTF-8 bytes, space as ``+``, ``-_.!~*'()`` and alphanumerics kept."""
    return quote_plus(value, safe=_SAFE)


def channel(mask: int) -> str:
    """A message's report channel (``Submission.callback``) when its notify URL is a Kannel dlr-url."""
    return f"{CHANNEL}{mask}"


def mask_of(callback: str | None) -> int | None:
    """The dlr-mask of a message whose notify URL is a Kannel dlr-url; None for any other message."""
    if not callback or not callback.startswith(CHANNEL):
        return None
    mask = callback[len(CHANNEL):]
    return int(mask) if mask.isdigit() else 0


def event_of(report: Report, mask: int) -> int | None:
    """The Kannel DLR type a report is (1 delivered, 2 failed, 4 or 32 intermediate, 16 rejected), if ``mask``
    asks for it."""
    group = report.status.group_name if report.status else ""
    if report.intermediate or group in ("PENDING", "ACCEPTED"):
        kind = 4 if mask & 4 else 32
    else:
        kind = {"DELIVERED": 1, "UNDELIVERABLE": 2, "EXPIRED": 2, "REJECTED": 16}.get(group, 2)
    return kind if mask & kind else None


def dlr_text(report: Report) -> str:
    """``%A`` of a report: the SMPP receipt text an SMSC gives Kannel (``id:… sub:001 dlvrd:… stat:DELIVRD …``)."""
    group = report.status.group_name if report.status else ""
    err = report.error.id if report.error else 0
    return (f"id:{report.upstream_message_id or report.message_id} sub:001 "
            f"dlvrd:{'001' if group == 'DELIVERED' else '000'} submit date:{receipt_date(report.sent_at, _NO_DATE)} "
            f"done date:{receipt_date(report.done_at, _NO_DATE)} stat:{_STAT.get(group, 'UNKNOWN')} err:{err:03d} text:")


def dcs(coding: int, mclass: int | None) -> int:
    """The data coding scheme Kannel's ``%O`` gives (``fields_to_dcs`` for the common cases)."""
    if mclass is None:
        return 8 if coding == 2 else 0
    return 0x10 | (coding << 2) | mclass


def meta_value(meta: str, group: str, name: str) -> str:
    """One value of Kannel's meta-data (``?smpp?key=value&key2=value2?group2?…``)."""
    parts = meta.split("?")
    for i in range(1, len(parts) - 1, 2):
        if parts[i] == group:
            for pair in parts[i + 1].split("&"):
                key, _, value = pair.partition("=")
                if key == name:
                    return value
    return ""


KNOWN_ESCAPES = frozenset("aAbBcCdDefFiIkmMnoOpPqQrRsStTuvV")


def fill(pattern: str, values: Mapping[str, str], *, only: frozenset[str] | None = None, meta: str = "") -> str:
    """Kannel's escapes in ``pattern`` filled from ``values`` (escape letter -> raw value), encoded as Kannel
    encodes each. ``%a``/``%k``/``%r``/``%s``/``%S`` take the words of ``values['b']`` (the message data: in a
    DLR, the receipt text). With ``only``, just those letters are filled (and ``%#group#name#``), every other
    escape and ``%%`` stay as they are, and a filled value's ``%`` is doubled: the result is a pattern again."""
    words = (values.get("b") or "").split()
    nextarg = 1
    out: list[str] = []
    pos = 0
    for m in _ESCAPE.finditer(pattern):
        out.append(pattern[pos:m.start()])
        pos = m.end()
        code = m.group(1)
        if code.startswith("#") and len(code) > 1:  # %#group#name#: one meta-data value
            _, group, name, _ = code.split("#")
            text = encode(meta_value(meta, group, name))
            out.append(text.replace("%", "%%") if only is not None else text)
            continue
        if only is not None and code not in only:
            out.append(m.group(0))
            continue
        if code == "%":
            out.append("%")
            continue
        if code not in KNOWN_ESCAPES:
            out.append(m.group(0))
            continue
        if code == "a":
            text = "+".join(encode(w) for w in words)
        elif code == "k":
            text = encode(words[0]) if words else ""
        elif code == "r":
            text = "+".join(encode(w) for w in words[nextarg:])
        elif code in "sS":
            if nextarg < len(words):
                text = encode(words[nextarg]) if code == "s" else words[nextarg].replace("*", "~")
                nextarg += 1
            else:
                text = ""
        elif code == "e":
            text = (values.get("b") or "").encode("utf-8").hex()
        elif code in "qQ":
            number = values.get("p" if code == "q" else "P", "")
            text = ("%2B" + encode(number.lstrip("+"))) if number.isdigit() or number.startswith("+") else encode(number)
        else:
            value = values.get("b" if code == "A" and "A" not in values else code, "")
            text = value if code in _NOT_ENCODED else encode(value)
        out.append(text.replace("%", "%%") if only is not None else text)
    out.append(pattern[pos:])
    return "".join(out)


def request_escapes(req: SendSms, caller: str) -> dict[str, str]:
    """The escapes a dlr-url can take from the request itself (filled at acceptance: see :data:`STATIC`)."""
    return {
        "c": str(req.coding), "C": req.charset or ("UTF-16BE" if req.coding == 2 else "UTF-8"),
        "m": str(req.mclass if req.mclass is not None else -1), "M": "-1", "n": caller,
        "o": req.ignored.get("account", ""), "B": req.ignored.get("binfo", ""),
        "D": req.ignored.get("meta-data", ""), "R": req.dlr_url or "", "u": "",
        "O": f"{dcs(req.coding, req.mclass):02d}", "v": str(req.validity) if req.validity is not None else "",
        "V": str(req.deferred) if req.deferred is not None else "", "f": "",
    }


def report_escapes(kind: int, report: Report, text: str, at: float) -> dict[str, str]:
    """The escapes a DLR fills when it fires: its type, the handsets, its text and time, the ids."""
    return {
        "d": str(kind), "A": text, "b": text, "p": report.to or "", "P": report.sender or "",
        "t": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d+%H:%M:%S"), "T": str(int(at)),
        "I": report.message_id or "", "F": report.upstream_message_id or "", "i": "infobip",
    }
