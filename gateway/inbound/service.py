"""One inbound push: store each message once, route it, forward through the outbox, reply.

Per message, one transaction (joined into one per push) stores it (``ON CONFLICT (messageId) DO NOTHING``), records the rule,
queues it for pull, enqueues the forward job (so the job commits with the message, or neither does)
and a *pending* reply row. A re-push of a stored messageId does nothing: no second forward, reply or
pull entry. Auto-replies are sent after the commit, once the webhook has answered (the entrance runs
:func:`send_replies` when the response is closed), so a bucket of messages is acknowledged at once
and never re-pushed because replies were slow; a failed reply is recorded on its row and logged. A
process that dies between the answer and the send leaves the reply ``pending`` (not retried).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..delivery.channels import InboundForwardChannel
from ..delivery.urlpolicy import UrlNotAllowed
from ..errors import BridgeError
from ..model import ApiError, Destination, InboundMessage, Message, Submission, SubmissionResult
from ..numbers import search_form
from ..render import RenderError
from ..send.policy import SendPolicy, check_reply
from ..services import Bridge
from ..store import inbound as store
from ..validate import validate_submission
from .loops import OWN
from .routing import CompiledRule, Router
from .templating import template_values

log = logging.getLogger(__name__)
FORWARD = InboundForwardChannel()


@dataclass(frozen=True)
class PendingReply:
    reply_id: int
    rule: CompiledRule
    msg: InboundMessage
    values: dict[str, Any]


@dataclass
class Outcome:
    message_id: str
    stored: bool  # False: a re-push of a stored message
    rule: str | None = None


def send_reply(ctx: Bridge, sub: Submission, api: str) -> SubmissionResult:
    """The single place where an auto-reply enters the send path: recorded, counted and reported like
    any send, in the rule's caller's mode."""
    result, _attempts = ctx.dispatch.send(sub, api, ctx.config.callers[sub.caller or ""])
    return result


def _reply_submission(ctx: Bridge, rule: CompiledRule, msg: InboundMessage, values: dict[str, Any]) -> Submission:
    assert rule.reply is not None
    fields = rule.reply.render(values)
    sub = Submission(
        messages=[Message(destinations=[Destination(msg.sender)], text=fields["text"], sender=fields.get("from"))],
        caller=rule.rule.caller,
        entrance=f"inbound:{rule.rule.name}",
    )
    validate_submission(sub, ctx.config.callers[rule.rule.caller].limits, flat=True)
    return sub


def _store_one(ctx: Bridge, router: Router, msg: InboundMessage) -> tuple[Outcome, list[PendingReply]]:
    """Transaction for one message; returns its outcome and the replies to send after the commit."""
    now = ctx.clock.now()
    replies: list[PendingReply] = []
    with ctx.db.transaction() as conn:
        inbound_id = store.insert_message(conn, msg, now)
        if inbound_id is None:
            return Outcome(msg.message_id, stored=False), []
        rule = router.route(msg)
        if rule is None:
            return Outcome(msg.message_id, stored=True), []
        r = rule.rule
        values = template_values(msg, r.name)
        job, error = None, None
        try:
            new = FORWARD.prepare(rule, msg, values)
            if new is not None:
                job = ctx.outbox.enqueue(*new, conn=conn)
        except (RenderError, UrlNotAllowed) as exc:
            error = exc.reason if isinstance(exc, UrlNotAllowed) else str(exc)
            log.warning("inbound %s: rule %s: no forward: %s", msg.message_id, r.name, error)
        store.set_outcome(conn, inbound_id, r.name, job, error)
        store.keep_for_pull(conn, inbound_id, r.pull)
        if rule.reply is not None:  # unless it would loop (gateway/inbound/loops.py)
            refusal = router.loops.refusal(conn, r.name, msg.sender, msg.to, now)
            reply_id = store.add_reply(conn, inbound_id, r.name, r.caller, msg.sender, now,
                                       refusal[1] if refusal else None)
            if refusal:
                log.warning("inbound %s: rule %s: no auto-reply: %s", msg.message_id, r.name, refusal[1])
            else:
                replies.append(PendingReply(reply_id, rule, msg, values))
    return Outcome(msg.message_id, stored=True, rule=r.name), replies


def _reply(ctx: Bridge, p: PendingReply) -> None:
    rule, msg, reply_id, r = p.rule, p.msg, p.reply_id, p.rule.rule
    caller = ctx.config.callers[r.caller]
    try:
        sub = _reply_submission(ctx, rule, msg, p.values)
        sender = sub.messages[0].sender
        if sender and search_form(sender) == search_form(msg.sender):  # it would answer itself
            ctx.router.loops.count(OWN)
            why = f"{msg.sender} is the reply's own sender: no reply (a loop with itself)"
            store.finish_reply(ctx.db, reply_id, ctx.clock.now(), error=why, state="suppressed")
            log.warning("inbound %s: rule %s: no auto-reply: %s", msg.message_id, r.name, why)
            return
        check_reply(SendPolicy.of(caller), sub)  # its caller's senders and destinations hold for a reply too
        result = send_reply(ctx, sub, r.reply.api if r.reply and r.reply.api else caller.upstream_api)
    except Exception as exc:  # noqa: BLE001 - ApiError, BridgeError, RenderError, or a bug: record it, keep going
        known = isinstance(exc, ApiError | BridgeError | RenderError)
        reason = str(exc) if known else f"unexpected {type(exc).__name__}"
        store.finish_reply(ctx.db, reply_id, ctx.clock.now(), error=reason)
        log.warning("inbound %s: rule %s: auto-reply not sent: %s", msg.message_id, r.name, reason)
        return
    sent = result.messages[0] if result.messages else None
    store.finish_reply(ctx.db, reply_id, ctx.clock.now(), sent.message_id if sent else None,
                       sent.status.name if sent else None)
    log.info("inbound %s: rule %s: auto-reply %s to %s", msg.message_id, r.name,
             sent.message_id if sent else "?", msg.sender)


def handle_push(ctx: Bridge, router: Router, messages: list[InboundMessage]
                ) -> tuple[list[Outcome], list[PendingReply]]:
    """Store and route every message of one push; return the outcomes and the replies to send."""
    outcomes: list[Outcome] = []
    replies: list[PendingReply] = []
    with ctx.db.transaction():  # one commit (one fsync) per bucket; each message's work joins it
        for msg in messages:
            outcome, pending = _store_one(ctx, router, msg)
            outcomes.append(outcome)
            replies += pending
    return outcomes, replies


def send_replies(ctx: Bridge, replies: list[PendingReply]) -> None:
    """Send the auto-replies of one push, in order (each failure recorded, none raised)."""
    for p in replies:
        _reply(ctx, p)
