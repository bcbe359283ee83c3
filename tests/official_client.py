"""Infobip's official Python client (v6) pointed at a local server, and the send cases both the
sandbox and the bridge conformance tests run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from infobip_api_client import ApiClient, Configuration
from infobip_api_client.api.sms_api import SmsApi
from infobip_api_client.models import (
    Platform,
    SmsDestination,
    SmsLanguage,
    SmsLanguageCode,
    SmsMessage,
    SmsMessageContent,
    SmsMessageDeliveryReporting,
    SmsMessageOptions,
    SmsMessageRequestOptions,
    SmsRequest,
    SmsRequestSchedulingSettings,
    SmsTextContent,
    SmsTransliterationCode,
    SmsWebhooks,
    ValidityPeriod,
    ValidityPeriodTimeUnit,
)


@contextmanager
def sms_api(url: str, key: str) -> Iterator[SmsApi]:
    """``SmsApi`` on ``url`` (http:// is allowed by the client only for 127.0.0.1/localhost)."""
    with ApiClient(Configuration(host=url, api_key=key)) as client:
        yield SmsApi(client)


def message(to: list[str] | str = "41793026727", text: str = "Hello from the official client",
            sender: str | None = "InfoSMS", ids: list[str] | None = None, **kw: Any) -> SmsMessage:
    """One SmsMessage; ``kw`` may hold ``options``, ``webhooks``, ``content`` (an SmsTextContent)."""
    tos = [to] if isinstance(to, str) else to
    dests = [SmsDestination(to=t, message_id=(ids[i] if ids else None)) for i, t in enumerate(tos)]
    content = kw.pop("content", None) or SmsTextContent(text=text)
    return SmsMessage(sender=sender, destinations=dests, content=SmsMessageContent(content), **kw)


def in_days(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=123000)


@dataclass
class Case:
    """A send request and what every accepted destination must carry afterwards."""

    name: str
    request: SmsRequest
    destinations: list[str]
    ids: list[str | None] = field(default_factory=list)
    bulk_id: str | None = None
    stored: dict[str, Any] = field(default_factory=dict)  # expected in the sandbox's message records
    message_count: int = 1


def cases() -> list[Case]:
    """Every send variant the acceptance list names."""
    hook = SmsWebhooks(delivery=SmsMessageDeliveryReporting(url="http://127.0.0.1:9/dlr", intermediate_report=True),
                       content_type="application/json", callback_data="order=42;Ω")
    send_at = in_days(2)
    out = [
        Case("text", SmsRequest(messages=[message()]), ["41793026727"],
             stored={"text": "Hello from the official client", "from": "InfoSMS"}),
        Case("destinations_and_ids", SmsRequest(
            messages=[message(["41793026727", "41793026834", "385991112222"], ids=["m-1", "m-2", "m-3"])],
            options=SmsMessageRequestOptions(schedule=SmsRequestSchedulingSettings(bulk_id="bulk-oc-1"),
                                             include_sms_count_in_response=True)),
             ["41793026727", "41793026834", "385991112222"], ["m-1", "m-2", "m-3"], "bulk-oc-1"),
        Case("webhooks", SmsRequest(messages=[message(webhooks=hook)]), ["41793026727"],
             stored={"callbackData": "order=42;Ω", "notifyUrl": "http://127.0.0.1:9/dlr",
                     "notifyContentType": "application/json"}),
        Case("scheduled", SmsRequest(
            messages=[message(ids=["sched-1"])],
            options=SmsMessageRequestOptions(schedule=SmsRequestSchedulingSettings(bulk_id="bulk-sched",
                                                                                   send_at=send_at))),
             ["41793026727"], ["sched-1"], "bulk-sched",
             stored={"sendAt": send_at.strftime("%Y-%m-%dT%H:%M:%S.123+0000")}),
        Case("language_transliteration", SmsRequest(messages=[message(content=SmsTextContent(
            text="Çok güzel bir gün, şişli", transliteration=SmsTransliterationCode.TURKISH,
            language=SmsLanguage(language_code=SmsLanguageCode.TR)))]), ["41793026727"],
             stored={"text": "Çok güzel bir gün, şişli"}),
        Case("platform_campaign_flash", SmsRequest(messages=[message(options=SmsMessageOptions(
            platform=Platform(entity_id="ent-1", application_id="app-1"), campaign_reference_id="camp-7",
            flash=True))]), ["41793026727"], stored={"entityId": "ent-1", "applicationId": "app-1", "flash": True}),
    ]
    for unit, amount, minutes in (("SECONDS", 120, 2), ("MINUTES", 45, 45), ("HOURS", 3, 180)):
        opts = SmsMessageOptions(validity_period=ValidityPeriod(amount=amount, time_unit=ValidityPeriodTimeUnit(unit)))
        out.append(Case(f"validity_{unit.lower()}", SmsRequest(messages=[message(options=opts)]), ["41793026727"],
                        stored={"validityPeriod": minutes}))
    return out


CASES = cases()
CASE_IDS = [c.name for c in CASES]


def check_response(case: Case, resp: Any) -> None:
    """The typed SmsResponse carries what was sent."""
    assert [m.destination for m in resp.messages] == case.destinations
    for m, own in zip(resp.messages, case.ids or [None] * len(resp.messages), strict=True):
        assert m.status.group_name.value == "PENDING" and m.status.name == "PENDING_ACCEPTED"
        assert m.message_id and (own is None or m.message_id == own)
    assert resp.bulk_id and (case.bulk_id is None or resp.bulk_id == case.bulk_id)


def check_stored(case: Case, records: list[dict[str, Any]]) -> None:
    """What the sandbox holds per destination matches the request (whatever API carried it)."""
    assert sorted(r["to"] for r in records) == sorted(case.destinations)
    for r in records:
        for key, value in case.stored.items():
            assert r.get(key) == value, (key, r.get(key), value)
