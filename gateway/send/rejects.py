"""One bad destination never cancels the rest (issue 13 item 8).

Like Infobip, a destination that is not a phone number is not a reason to refuse the request: the
entrance takes the invalid destinations out (:func:`split_invalid`) before validating and sending the
rest, then puts each back in the answer at its place as ``REJECTED_INVALID_DESTINATION`` (group
``REJECTED``) with the reason in the status description (:func:`merge_rejected`), and the store records
them (state ``rejected``, :func:`rejected_rows`) so the log and the UI show them. Only a request whose
destinations are all invalid is a 400 (the validation names each).

A destination the caller's policy forbids (gateway/send/policy.py) is treated the same way, answered
``REJECTED_DESTINATION`` naming the rule; when every destination is forbidden, the request is a 403."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PolicyRefused
from ..model import ApiError, Destination, Message, SentMessage, Status, Submission, SubmissionResult
from ..store.records import MessageRow
from ..validate import Errors, Limits, normalise_destination, validate_submission
from ..wire.statuses import rejected_status
from .policy import SendPolicy


@dataclass
class Rejected:
    """An invalid destination: its place in the request's destination order, what was given, and why."""

    position: int
    to: str
    reason: str
    message: Message
    field: str  # where a 400 would name it (JSON path, or ``to`` as the query API names it)
    where: str = ""  # "destination 2 " when the field is a comma list
    forbidden: bool = False  # valid, but outside the caller's destinations (REJECTED_DESTINATION)

    @property
    def status(self) -> Status:
        return rejected_status(self.reason, "REJECTED_DESTINATION" if self.forbidden else None)



def split_invalid(sub: Submission, limits: Limits, flat: bool = False,
                  policy: SendPolicy | None = None) -> list[Rejected]:
    """Take the invalid (and forbidden, by ``policy``) destinations out of ``sub`` (and messages left without
    one) and return them; nothing when every destination is invalid (then the request itself is bad and
    validation refuses it); Forbidden when every one is forbidden."""
    country = policy.default_country if policy else None
    bad: list[Rejected] = []
    kept: list[list[Destination]] = []
    pos = 0
    for mi, m in enumerate(sub.messages):
        keep = []
        for di, d in enumerate(m.destinations):
            norm, reason = normalise_destination(d.to, limits, country)
            forbidden = policy.destination_reason(norm) if norm and policy and policy.rules else None
            if reason or forbidden:
                where = f"destination {di + 1} " if flat and len(m.destinations) > 1 else ""
                bad.append(Rejected(pos, d.to, reason or forbidden or "", m,
                                    "to" if flat else f"messages[{mi}].destinations[{di}].to", where,
                                    forbidden=bool(forbidden)))
            else:
                keep.append(d)
            pos += 1
        kept.append(keep)
    if bad and len(bad) == pos and all(r.forbidden for r in bad):
        raise PolicyRefused(bad[0].reason)
    if not bad or len(bad) == pos:
        return []
    for m, keep in zip(sub.messages, kept, strict=True):
        m.destinations = keep
    sub.messages = [m for m in sub.messages if m.destinations]
    return bad


def validate_rest(sub: Submission, limits: Limits, rejected: list[Rejected], flat: bool, errs: Errors,
                  policy: SendPolicy | None = None) -> None:
    """``validate_submission`` on what :func:`split_invalid` left; when the request is refused anyway, its 400
    names the invalid destinations too, so that the caller fixes everything at once. Then ``policy``'s
    senders (Forbidden naming the rule)."""
    try:
        validate_submission(sub, limits, flat=flat, errs=errs, country=policy.default_country if policy else None)
    except ApiError as exc:
        if not rejected or not exc.validation_errors:
            raise
        merged = {k: list(v) for k, v in exc.validation_errors.items()}
        for r in rejected:
            merged.setdefault(r.field, []).append(r.where + r.reason)
        raise ApiError.invalid(merged) from None
    if policy is not None and policy.rules:
        policy.check_senders(sub)


def merge_rejected(result: SubmissionResult, rejected: list[Rejected]) -> SubmissionResult:
    """``result`` with each rejected destination at its place in the request's order."""
    if not rejected:
        return result
    sent = iter(result.messages)
    merged: list[SentMessage] = []
    total = len(result.messages) + len(rejected)
    by_pos = {r.position: r for r in rejected}
    for pos in range(total):
        r = by_pos.get(pos)
        if r is not None:
            merged.append(SentMessage(r.to, r.status))
        else:
            nxt = next(sent, None)
            if nxt is not None:
                merged.append(nxt)
    merged.extend(sent)
    result.messages = merged
    return result


def rejected_rows(rejected: list[Rejected]) -> list[MessageRow]:
    """The store's rows for the rejected destinations (state ``rejected``, never sent)."""
    return [MessageRow(None, None, r.to, r.message.sender, r.message.text, "", r.message.notify_url,
                       r.message.notify_content_type, r.message.callback_data, r.message.intermediate_report, None,
                       r.status, "rejected", r.message.entity_id, r.message.application_id,
                       r.message.campaign_reference_id)
            for r in rejected]
