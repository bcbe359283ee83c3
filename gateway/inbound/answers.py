"""Kannel's ``sms-service`` reply semantics for an inbound rule's forward (``forward.answer``): the text body
of the application's answer becomes the reply SMS, as smsbox's ``url_result_thread`` and ``send_message`` make
it (Kannel's ``gw/smsbox.c``):

* ``text/plain``: the body as it is; ``text/html`` (and WML): tags stripped, entities decoded, blanks at both ends
  removed; another content type: no reply (Kannel would send "Result could not be represented as an SMS
  message."; the bridge records the reason on the reply row and logs it instead of texting it to a customer);
* the charset of the answer's ``Content-Type`` (default UTF-8); bytes invalid in it: no reply, recorded;
* ``max_messages`` (Kannel's ``max-messages``, default 1): the reply is cut to fit that many SMS parts;
  0 never replies;
* an empty reply: none with ``omit_empty``, else Kannel's ``reply-emptymessage`` text;
* the reply's sender is ``from`` (Kannel's ``faked-sender``), else the number the message was sent to;
* ``accept_x_kannel_headers``: the answer's ``X-Kannel-From``, ``-To``, ``-DLR-Mask``, ``-DLR-URL``, ``-MClass``,
  ``-Validity``, ``-Deferred``… change the reply as ``sendsms`` reads them (a refused one fails the reply,
  recorded); the ``dlr-url`` gets Kannel's DLR events (gateway/delivery/kannel.py).

The reply is a send on the rule's caller's behalf (recorded, reported and logged like any send; the inbound
message's reply row tells its outcome). It is made once the forward's delivery is recorded: a crash in between
loses that one reply (Kannel holds it in memory only).
"""

from __future__ import annotations

import html
import logging
import re
from typing import TYPE_CHECKING

from ..delivery.outbox import Answer
from ..model import ApiError, Destination, Message, Submission
from ..send.policy import SendPolicy, check_reply
from ..sms import sms_count
from ..store import inbound as store
from ..store.outbox import Job
from ..validate import validate_submission
from ..wire import kannel
from .settings import Answer as AnswerSettings
from .settings import Rule

if TYPE_CHECKING:
    from ..services import Bridge

log = logging.getLogger(__name__)
EMPTY_REPLY = "<Empty reply from service provider>"  # Kannel's reply-emptymessage
_TAG = re.compile(r"<[^>]*>")


class NoReply(Exception):  # noqa: N818 - an outcome, with its reason
    """The answer makes no reply SMS; ``args[0]`` says why (None: by configuration, nothing to record)."""


def fit(text: str, max_messages: int) -> str:
    """The longest start of ``text`` that fits ``max_messages`` SMS parts."""
    if sms_count(text) <= max_messages:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sms_count(text[:mid]) <= max_messages:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def reply_text(answer: Answer, settings: AnswerSettings) -> str:
    """The reply SMS an answer makes (see the module docstring); :class:`NoReply` when there is none."""
    if settings.max_messages == 0:
        raise NoReply(None)
    ctype = (answer.content_type or "").split(";")
    mime = ctype[0].strip().lower()
    charset = next((p.split("=", 1)[1].strip().strip('"') for p in ctype[1:] if p.strip().lower().startswith(
        "charset=")), "utf-8")
    if mime not in ("text/plain", "text/html", "text/vnd.wap.wml"):
        raise NoReply(f"the answer's content type {mime or 'none'!r} cannot be represented as an SMS message "
                      "(give text/plain or text/html)")
    try:
        text = answer.body.decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise NoReply(f"the answer is not valid {charset}") from None
    if mime != "text/plain":
        text = html.unescape(_TAG.sub("", text)).strip()
    if not text:
        if settings.omit_empty:
            raise NoReply(None)
        text = EMPTY_REPLY
    return fit(text, settings.max_messages)


class AnswerReplies:
    """The outbox's answer handler for ``inbound-answer`` jobs (registered by ``build_services``)."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.rules: dict[str, Rule] = {r.name: r for r in bridge.config.inbound.all_rules}

    def __call__(self, job: Job, answer: Answer) -> None:
        ctx = self.bridge
        stored = store.message(ctx.db, job.ref or "")
        rule = self.rules.get(stored.rule or "") if stored else None
        settings = rule.forward.answer if rule and rule.forward else None
        if stored is None or rule is None or settings is None:
            log.warning("outbox job %s: the answer's inbound message or rule is gone: no reply", job.id)
            return
        msg = stored.message
        try:
            text = reply_text(answer, settings)
        except NoReply as exc:
            if exc.args[0]:
                self._record(rule, msg.message_id, msg.sender, error=exc.args[0])
            return
        caller = ctx.config.callers[rule.caller]
        sub = Submission(messages=[Message(destinations=[Destination(msg.sender)], text=text,
                                           sender=settings.sender or msg.to or None)],
                         caller=rule.caller, entrance=f"inbound:{rule.name}")
        guard = ctx.router.loops  # the same loop guards as any auto-reply (gateway/inbound/loops.py)
        refusal = guard.refusal(ctx.db.connection(), rule.name, msg.sender, msg.to, ctx.clock.now())
        if refusal:
            self._record(rule, msg.message_id, msg.sender, error=refusal[1], state="suppressed")
            return
        try:
            if settings.accept_x_kannel_headers:
                sub = self._x_kannel(sub, answer, text, msg.sender, caller.callback is not None)
            validate_submission(sub, caller.limits, flat=True)
            check_reply(SendPolicy.of(caller), sub)  # the rule's caller's senders and destinations hold too
            result, _ = ctx.dispatch.send(sub, caller.upstream_api, caller)
        except Exception as exc:  # noqa: BLE001 - ApiError, BridgeError or a bug: recorded, never raised
            self._record(rule, msg.message_id, msg.sender, error=str(exc) or type(exc).__name__)
            return
        sent = result.messages[0] if result.messages else None
        self._record(rule, msg.message_id, msg.sender, sent.message_id if sent else None,
                     sent.status.name if sent else None)

    def _x_kannel(self, sub: Submission, answer: Answer, text: str, to: str, has_callback: bool) -> Submission:
        """The reply as the answer's ``X-Kannel-*`` headers change it (From, To, DLR-Mask, DLR-URL, MClass,
        Validity, Deferred… as sendsms reads them); a header sendsms would refuse fails the reply."""
        pairs = [(n, v) for n, v in kannel.headers_pairs(answer.headers, b"")
                 if n in kannel.KNOWN and n not in ("text", "username", "user", "password", "pass")]
        if not pairs:
            return sub
        names = {n for n, _ in pairs}
        pairs += [("text", text.encode("utf-8"))] + ([] if "to" in names else [("to", to.encode())])
        try:
            req = kannel.read_sendsms(pairs)
            message, channel = kannel.to_message(req, sub.caller or "", has_callback, self.bridge.clock.now())
        except kannel.KannelAnswer as exc:
            raise ApiError(400, "BAD_REQUEST", f"the answer's X-Kannel headers: {exc.text}") from None
        if message.sender is None:
            message.sender = sub.messages[0].sender
        return Submission(messages=[message], caller=sub.caller, entrance=sub.entrance, callback=channel)

    def _record(self, rule: Rule, message_id: str, to: str, sent_id: str | None = None, status: str | None = None,
                error: str | None = None, state: str | None = None) -> None:
        ctx = self.bridge
        reply_id = store.reply_for(ctx.db, message_id, rule.name, rule.caller, to, ctx.clock.now())
        if reply_id is not None:
            store.finish_reply(ctx.db, reply_id, ctx.clock.now(), sent_id, status, error, state)
        if error:
            log.warning("inbound %s: rule %s: no reply from the forward's answer: %s", message_id, rule.name, error)
