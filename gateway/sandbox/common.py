"""What the sandbox's blueprints share: its services, Infobip-like auth and message acceptance."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from flask import current_app, request

from ..auth import AuthorizationError, parse_authorization
from ..ids import new_id
from ..model import ApiError, SentMessage, Submission, SubmissionResult
from ..sms import analyse
from ..validate import normalise_destination, validate_submission
from ..wire.statuses import PENDING_ACCEPTED, STATUS_BY_NAME, rejected_status

if TYPE_CHECKING:
    from .services import Sandbox

KEY = "sandbox"  # the app.extensions key of the Sandbox services


def sandbox() -> Sandbox:
    return current_app.extensions[KEY]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authenticate(query_user: str | None = None, query_password: str | None = None) -> str:
    """Infobip-like auth: ``App <key>``, ``Basic``, or (query API only, without a header) username/password."""
    s = sandbox().settings
    header = request.headers.get("Authorization", "")
    if header:
        try:
            parsed = parse_authorization(header)
        except AuthorizationError:
            raise ApiError(401, "UNAUTHORIZED", "Invalid login details") from None
        if parsed.scheme == "app" and _same(parsed.key, s.api_key):
            return "api_key"
        if parsed.scheme == "basic" and parsed.username == s.username and _same(parsed.password, s.password):
            return "basic"
    elif query_user is not None and query_user == s.username and _same(query_password or "", s.password):
        return "query"
    raise ApiError(401, "UNAUTHORIZED", "Invalid login details")


def accept(sub: Submission) -> SubmissionResult:
    """Validate like Infobip: request-level problems are a 400; a bad number is a per-destination
    REJECTED status inside a 200. Accepted messages are remembered and their reports planned."""
    sb = sandbox()
    limits = sb.limits
    bad: dict[tuple[int, int], str] = {}
    for mi, m in enumerate(sub.messages):
        for di, d in enumerate(m.destinations):
            norm, reason = normalise_destination(d.to, limits, hint="")  # international only, like Infobip
            if reason:
                bad[(mi, di)] = reason
            else:
                d.to = norm  # type: ignore[assignment]
    good = Submission(messages=[], bulk_id=sub.bulk_id)
    for mi, m in enumerate(sub.messages):
        keep = [d for di, d in enumerate(m.destinations) if (mi, di) not in bad]
        if keep:
            good.messages.append(replace(m, destinations=keep))
    if good.messages:
        validate_submission(good, limits, flat=sub.entrance == "query")
    state = sb.state
    bulk_id = sub.bulk_id or (new_id() if sub.destination_count > 1 or any(m.send_at for m in sub.messages) else None)
    result = SubmissionResult(bulk_id=bulk_id)
    for mi, m in enumerate(sub.messages):
        shown = analyse(m.text, m.language_code, m.transliteration)  # what the handset gets
        count = shown.message_count
        for di, d in enumerate(m.destinations):
            if (mi, di) in bad:
                result.messages.append(SentMessage(d.to, rejected_status(bad[(mi, di)])))
                continue
            mid = d.message_id or str(uuid.uuid4())
            with state.lock:
                if mid in state.messages:  # like Infobip: a repeated messageId is not sent twice
                    result.messages.append(SentMessage(d.to, STATUS_BY_NAME["REJECTED_DUPLICATE_MESSAGE_ID"], mid))
                    continue
                result.messages.append(SentMessage(d.to, PENDING_ACCEPTED, mid, count))
                state.messages[mid] = {
                    "messageId": mid, "bulkId": bulk_id, "to": d.to, "from": m.sender, "text": m.text,
                    "textPreview": shown.text, "flash": m.flash, "validityPeriod": m.validity_period,
                    "smsCount": count, "notifyUrl": m.notify_url, "notifyContentType": m.notify_content_type,
                    "callbackData": m.callback_data, "sentAt": time.time(),
                    "intermediateReport": m.intermediate_report, "status": PENDING_ACCEPTED.to_wire(),
                    "sendAt": m.send_at, "entityId": m.entity_id, "applicationId": m.application_id,
                }
                sb.dlr.accepted(dict(state.messages[mid]))
    return result
