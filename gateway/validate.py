"""Validation rules shared by every entrance and by the sandbox (infobip-sms-api.md §13).

Parsers turn wire strings into typed values and collect errors per field; ``validate_submission``
checks a canonical Submission (normalising destinations in place). Each error names the field.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from . import numbers, sms
from .model import ApiError, Submission
from .sms import sms_count

LANGUAGE_CODES = tuple(sorted(sms.LANGUAGE_CODES))
TRANSLITERATIONS = tuple(sorted(sms.TRANSLITERATIONS))
CONTENT_TYPES = ("application/json", "application/xml")
TRACK_VALUES = ("SMS", "URL")


@dataclass(frozen=True)
class Limits:
    """Configurable limits; defaults follow Infobip's documented ones."""

    max_destinations: int = 10000
    destination_min_digits: int = 5
    destination_max_digits: int = 15
    sender_alpha_max: int = 11
    sender_numeric_max: int = 16
    sender_min: int = 3
    text_max_chars: int = 4096
    max_parts: int = 10
    callback_data_max: int = 4000
    bulk_id_max: int = 100
    message_id_max: int = 200
    validity_max_minutes: int = 2880
    send_at_max_days: int = 180


class Errors:
    """Collects field → reasons, then raises one ApiError(400) naming them all."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, reason: str) -> None:
        self.by_field.setdefault(field, []).append(reason)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ApiError.invalid(self.by_field)


_TRUE = {"true"}
_FALSE = {"false"}


def parse_bool(field: str, value: Any, errs: Errors) -> bool | None:
    """true/false in any case (one client sends ``True``); anything else is an error, not false."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    errs.add(field, f"must be true or false, got {str(value)!r}")
    return None


def parse_int(field: str, value: Any, lo: int, hi: int, errs: Errors, unit: str = "") -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errs.add(field, f"must be a whole number, got {value!r}")
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        errs.add(field, f"must be a whole number, got {str(value)!r}")
        return None
    if not lo <= n <= hi:
        errs.add(field, f"must be between {lo} and {hi}{unit}, got {n}")
        return None
    return n


def parse_enum(field: str, value: Any, allowed: tuple[str, ...], errs: Errors) -> str | None:
    if value is None or value == "":
        return None
    v = str(value).strip()
    for a in allowed:
        if v.upper() == a.upper():
            return a
    errs.add(field, f"must be one of {', '.join(allowed)}, got {v!r}")
    return None


_DT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(field: str, value: Any, errs: Errors) -> datetime | None:
    """Infobip's ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` and its relatives: 0–9 fraction digits, ``+0000``,
    ``+00:00`` or ``Z``; a missing offset means UTC."""
    if value is None or value == "":
        return None
    m = _DT.match(str(value).strip())
    if not m:
        errs.add(field, f"must be a date-time like 2030-01-02T03:04:05.000+0000, got {str(value)!r}")
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = UTC
        if off and off != "Z":
            sign = 1 if off[0] == "+" else -1
            digits = off[1:].replace(":", "")
            from datetime import timezone

            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micro, tzinfo=tz)
    except ValueError as exc:
        errs.add(field, f"is not a valid date-time: {exc}")
        return None


def format_datetime(dt: datetime) -> str:
    """Infobip's canonical form: ``2019-11-09T16:00:00.000+0000``."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


NATIONAL_HINT = ", or set a default_country (e.g. CH) for the caller or template"


def normalise_destination(raw: str, limits: Limits, country: str | None = None,
                          hint: str = NATIONAL_HINT) -> tuple[str | None, str | None]:
    """(international digits, None) or (None, reason). ``+`` or ``00`` prefix, spaces, dashes, dots and
    brackets are accepted and stripped; a national number (``079 302 67 27``) is converted with ``country``
    (an ISO code) or refused; what remains must be digits in the configured range, beginning with a country
    code, of a length possible there (gateway/numbers.py)."""
    if not raw.strip():
        return None, "is empty"
    digits, reason = numbers.digits_of(raw, country, hint)
    if digits is None:
        return None, reason
    if not limits.destination_min_digits <= len(digits) <= limits.destination_max_digits:
        return None, (
            f"{raw!r} has {len(digits)} digits; an international number has "
            f"{limits.destination_min_digits} to {limits.destination_max_digits}"
        )
    reason = numbers.reason(raw, digits)
    return (None, reason) if reason else (digits, None)


_ALNUM_SENDER = re.compile(r"^[A-Za-z0-9 .\-_&!#']+$")


def check_sender(value: str, limits: Limits) -> str | None:
    """The reason a sender is invalid, or None."""
    v = value.strip()
    numeric = v[1:] if v.startswith("+") else v
    if numeric.isdigit() and numeric.isascii():
        if not limits.sender_min <= len(numeric) <= limits.sender_numeric_max:
            return (
                f"numeric sender {value!r} must have {limits.sender_min} to {limits.sender_numeric_max} digits"
            )
        return None
    if not _ALNUM_SENDER.match(v):
        return f"alphanumeric sender {value!r} may hold only letters, digits, spaces and . - _ & ! # '"
    if not limits.sender_min <= len(v) <= limits.sender_alpha_max:
        return (
            f"alphanumeric sender {value!r} must be {limits.sender_min} to "
            f"{limits.sender_alpha_max} characters, it has {len(v)}"
        )
    return None


def check_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return f"{value!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{value!r} must be an absolute http:// or https:// URL"
    return None


def control_reason(value: str | None) -> str | None:
    """Why ``value`` cannot be an id, a sender or a number: a control character (CR, LF, NUL, tab, DEL,
    C1…), a line separator or a lone surrogate would split a header, a log line or a CSV row, or
    break the encoder; None when it has none."""
    if not value or value.isprintable():  # C-speed: true for nearly every value
        return None
    for i, ch in enumerate(value):
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Zl", "Zp"):
            what = "a lone surrogate" if cat == "Cs" else "a control character"
            return f"contains {what} (U+{ord(ch):04X} at position {i + 1}), which is refused here"
    return None  # other non-printables (format characters, spaces) are left to the field's own rules


def check_controls(sub: Submission, flat: bool, errs: Errors) -> None:
    """Control characters in the submission's ids, senders, numbers and addresses, named, into ``errs``
    (texts may hold line breaks: they are not checked here). Called first by :func:`validate_submission`."""
    def add(name: str, value: str | None) -> None:
        reason = control_reason(value)
        if reason:
            errs.add(name, reason)

    add("bulkId", sub.bulk_id)
    for mi, msg in enumerate(sub.messages):
        def path(name: str, mi: int = mi) -> str:
            return name if flat else f"messages[{mi}].{name}"
        for di, dest in enumerate(msg.destinations):
            add("to" if flat else f"messages[{mi}].destinations[{di}].to", dest.to)
            add("messageId" if flat else f"messages[{mi}].destinations[{di}].messageId", dest.message_id)
        for name, value in (("from", msg.sender), ("callbackData", msg.callback_data), ("notifyUrl", msg.notify_url),
                            ("entityId", msg.entity_id), ("applicationId", msg.application_id),
                            ("campaignReferenceId", msg.campaign_reference_id)):
            add(path(name), value)


def validate_submission(
    sub: Submission, limits: Limits, flat: bool = False, now: datetime | None = None, errs: Errors | None = None,
    country: str | None = None,
) -> None:
    """Check a Submission before anything is sent; destinations are normalised in place.

    ``flat`` names fields as the query API does (``to``, ``from``); otherwise as JSON paths
    (``messages[0].destinations[1].to``). ``errs`` may already hold the parser's errors. ``country``: the
    ISO code national numbers are read with (None: they are refused).
    """
    errs = Errors() if errs is None else errs
    now = now or datetime.now(UTC)
    check_controls(sub, flat, errs)

    def path(mi: int, name: str) -> str:
        return name if flat else f"messages[{mi}].{name}"

    if not sub.messages:
        errs.add("messages", "must not be empty")
    total = sub.destination_count
    if total > limits.max_destinations:
        errs.add(
            "to" if flat else "messages",
            f"{total} destinations is more than this caller's maximum of {limits.max_destinations}",
        )
    if sub.bulk_id is not None and not 1 <= len(sub.bulk_id) <= limits.bulk_id_max:
        errs.add("bulkId", f"must be 1 to {limits.bulk_id_max} characters")
    for mi, msg in enumerate(sub.messages):
        if not msg.destinations:
            errs.add(path(mi, "to" if flat else "destinations"), "must not be empty: give at least one destination")
        for di, dest in enumerate(msg.destinations):
            field = "to" if flat else f"messages[{mi}].destinations[{di}].to"
            norm, reason = normalise_destination(dest.to, limits, country)
            if reason:
                where = f"destination {di + 1} " if flat and len(msg.destinations) > 1 else ""
                errs.add(field, where + reason)
            else:
                dest.to = norm  # type: ignore[assignment]
            if dest.message_id is not None and not 1 <= len(dest.message_id) <= limits.message_id_max:
                errs.add(
                    "messageId" if flat else f"messages[{mi}].destinations[{di}].messageId",
                    f"must be 1 to {limits.message_id_max} characters",
                )
        if msg.sender is not None:
            reason = check_sender(msg.sender, limits)
            if reason:
                errs.add(path(mi, "from"), reason)
        if not msg.text or not msg.text.strip():
            errs.add(path(mi, "text"), "must not be empty: there is nothing to send")
        elif len(msg.text) > limits.text_max_chars:
            errs.add(path(mi, "text"), f"is {len(msg.text)} characters; the maximum is {limits.text_max_chars}")
        else:
            parts = sms_count(msg.text, msg.language_code, msg.transliteration)
            if parts > limits.max_parts:
                errs.add(path(mi, "text"), f"needs {parts} SMS parts; the maximum for this caller is {limits.max_parts}")
        if msg.callback_data is not None and len(msg.callback_data) > limits.callback_data_max:
            errs.add(path(mi, "callbackData"), f"must be at most {limits.callback_data_max} characters")
        if msg.notify_url:
            reason = check_url(msg.notify_url)
            if reason:
                errs.add(path(mi, "notifyUrl"), reason)
        if msg.validity_period is not None and not 1 <= msg.validity_period <= limits.validity_max_minutes:
            errs.add(
                path(mi, "validityPeriod"),
                f"must be between 1 and {limits.validity_max_minutes} minutes, got {msg.validity_period}",
            )
        if msg.send_at is not None:
            when = parse_datetime(path(mi, "sendAt"), msg.send_at, errs)
            if when is not None:
                if when > now + timedelta(days=limits.send_at_max_days):
                    errs.add(path(mi, "sendAt"), f"must be at most {limits.send_at_max_days} days ahead")
                else:
                    msg.send_at = format_datetime(when)
    errs.raise_if_any()
