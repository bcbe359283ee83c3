"""No reply loops over real HTTP (issue 16 item 6): inbound messages are injected through the sandbox's inbound
injection and pushed to the bridge's webhook; auto-replies go to the upstream sandbox. An automaton that answers
every SMS is answered at most ``count`` times per window (the bridge's clock is a manual one: the window is
stepped, not waited for); the bridge's own numbers are never answered; each suppression is kept on its reply row
and counted in /metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from gateway.clock import ManualClock
from gateway.config import ConfigError, build_config
from tests.conftest import default_raw_config
from tests.helpers import wait_for
from tests.storehelp import db_rows
from tests.test_inbound import HOOK, with_inbound

BOT, BOT2, OURS = "41793026700", "41793026701", "41793026834"


def _inject(sandbox_url: str, frm: str, text: str = "INFO please", to: str = OURS) -> None:
    r = requests.post(sandbox_url + "/sandbox/inbound", json={"from": frm, "to": to, "text": text}, timeout=5)
    assert r.status_code == 200, r.text


def _replies(bridge) -> list[tuple[str, str]]:
    db = bridge.app.extensions["smsbridge"].store.db
    return [(r.to_number, r.state) for r in db_rows(db, "inbound_replies", "to_number", "state")]


def _settled(bridge, n: int) -> list[tuple[str, str]]:
    """The first ``n`` reply rows once none of them is pending any more."""
    return wait_for(lambda: (rs := _replies(bridge)) and len(rs) >= n and all(s != "pending" for _, s in rs) and rs,
                    what=f"{n} settled auto-replies")


def _suppressed(bridge, reason: str) -> float:
    text = bridge.get("/metrics").text
    m = re.search(r'smsbridge_inbound_replies_suppressed_total\{reason="' + reason + r'"\} ([0-9.]+)', text)
    assert m, text
    return float(m.group(1))


def _sent_to(sandbox, number: str) -> int:
    return sum(1 for m in sandbox.messages() if m["to"] == number)


RULES = [{"name": "info", "caller": "demo", "match": {"keyword": "INFO"},
          "reply": {"from": "InfoSMS", "text": "Thanks, we got: %r"}}]


def _bridge(make_bridge, pushing: Callable[[str], str], clock: Any = None, **inbound: Any) -> tuple[Any, str]:
    bridge = make_bridge(with_inbound(RULES, **inbound), clock=clock)
    return bridge, pushing(bridge.url + HOOK)


def test_an_automaton_answering_every_sms_is_answered_count_times_per_window(make_bridge, sandbox, pushing_sandbox):
    clock = ManualClock()
    bridge, sb = _bridge(make_bridge, pushing_sandbox, clock, reply_limit={"count": 3, "window": 600})
    # the ping-pong: each reply the bot gets, it answers; the bridge stops answering after three
    for rnd in range(1, 6):
        _inject(sb, BOT, f"INFO auto-answer {rnd}")
        rows = _settled(bridge, rnd)
        if rnd <= 3:
            wait_for(lambda n=rnd: _sent_to(sandbox, BOT) == n, what=f"reply {rnd} at the upstream")
        clock.advance(10)
    assert [s for _, s in rows] == ["sent"] * 3 + ["suppressed"] * 2
    assert _sent_to(sandbox, BOT) == 3
    assert _suppressed(bridge, "limit") == 2 and _suppressed(bridge, "own_number") == 0
    db = bridge.app.extensions["smsbridge"].store.db
    error = db_rows(db, "inbound_replies", "error", state="suppressed")[0].error
    assert error == f"reply limit reached: 3 per 600 s to {BOT} (a loop with another automaton?)"
    # another sender is not held back by the bot's count
    _inject(sb, BOT2)
    assert _settled(bridge, 6)[-1] == (BOT2, "sent")
    # once the window has passed, the bot is answered again
    clock.advance(600)
    _inject(sb, BOT, "INFO hello again")
    assert _settled(bridge, 7)[-1] == (BOT, "sent")
    wait_for(lambda: _sent_to(sandbox, BOT) == 4, what="the reply after the window")


def test_a_rules_own_limit_overrides_the_global_one(make_bridge, sandbox, pushing_sandbox):
    rules = [{**RULES[0], "reply": {**RULES[0]["reply"], "limit": {"count": 1, "window": 3600}}},
             {"name": "help", "caller": "demo", "match": {"keyword": "HELP"}, "reply": "Call us"}]
    bridge = make_bridge(with_inbound(rules, reply_limit={"count": 0}), clock=ManualClock())  # 0: no global limit
    sb = pushing_sandbox(bridge.url + HOOK)
    for i in range(2):
        _inject(sb, BOT, f"INFO {i}")
        _settled(bridge, i + 1)
    for i in range(3):
        _inject(sb, BOT, f"HELP {i}")
        _settled(bridge, i + 3)
    assert [s for _, s in _replies(bridge)] == ["sent", "suppressed", "sent", "sent", "sent"]


def test_the_bridges_own_numbers_are_never_answered(make_bridge, sandbox, pushing_sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        with_inbound([{**RULES[0], "match": {"keyword": "INFO", "to": [OURS, "41793026835"]}},
                      {"name": "echo", "caller": "demo", "match": {"keyword": "ECHO"},
                       "reply": {"from": "%p", "text": "echo"}},
                      {"name": "numeric", "caller": "demo", "match": {"keyword": "NUM"},
                       "reply": {"from": "+41 79 302 68 99", "text": "n"}}],
                     own_numbers=["+41 79 302 68 40"])(raw)
        raw["callers"]["demo"]["senders"] = ["InfoSMS", "41793026841", "Alarm*"]
        raw["templates"]["otp"]["fields"]["from"] = "0041793026842"

    bridge = make_bridge(mutate, clock=ManualClock())
    sb = pushing_sandbox(bridge.url + HOOK)
    loops = bridge.app.extensions["smsbridge"].config.inbound.own_numbers
    assert set(loops) == {OURS, "41793026835", "41793026840", "41793026841", "41793026842", "41793026899"}
    senders = ["41793026840", "41793026841", "41793026842", "41793026835", "+41 79 302 68 99"]
    for i, frm in enumerate(senders):
        _inject(sb, frm, "INFO x")
        _settled(bridge, i + 1)
    _inject(sb, "41793026850", "ECHO x", to="41793026850")  # to itself: the number it was sent to
    _inject(sb, "41793026851", "ECHO x", to="41793026852")  # the reply's rendered sender is the message's sender
    _settled(bridge, 7)
    _inject(sb, BOT, "INFO x")  # a stranger is answered
    rows = _settled(bridge, 8)
    assert [s for _, s in rows] == ["suppressed"] * 7 + ["sent"]
    assert _suppressed(bridge, "own_number") == 7
    assert _sent_to(sandbox, BOT) == 1 and _sent_to(sandbox, "41793026840") == 0


def test_an_auto_reply_keeps_to_its_callers_policy(make_bridge, sandbox, pushing_sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        with_inbound(RULES)(raw)
        raw["callers"]["demo"]["destinations"] = ["44"]

    bridge = make_bridge(mutate, clock=ManualClock())
    sb = pushing_sandbox(bridge.url + HOOK)
    _inject(sb, BOT)
    rows = _settled(bridge, 1)
    assert rows == [(BOT, "failed")]
    db = bridge.app.extensions["smsbridge"].store.db
    assert "is not among caller demo's destinations (44)" in db_rows(db, "inbound_replies", "error")[0].error
    assert _sent_to(sandbox, BOT) == 0


def test_reply_limit_settings_are_checked_naming_the_key():
    raw = default_raw_config()
    raw["inbound"]["reply_limit"] = {"count": -1, "window": 0, "every": 3}
    raw["inbound"]["own_numbers"] = ["InfoSMS"]
    raw["inbound"]["rules"][0]["reply"]["limit"] = "often"
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    assert {p for p, _ in exc.value.problems} == {
        "inbound.reply_limit.count", "inbound.reply_limit.window", "inbound.reply_limit.every",
        "inbound.own_numbers[0]", "inbound.rules[0].reply.limit"}
    ok = default_raw_config()
    ok["inbound"]["reply_limit"] = {"count": 2, "window": 60}
    settings = build_config(ok, env={}).inbound
    assert (settings.reply_limit.count, settings.reply_limit.window) == (2, 60.0)
