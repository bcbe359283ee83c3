"""Conformance of the sandbox with Infobip's official Python client v6: every SmsApi method
deserialises without error and carries the values sent; errors raise the typed exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from infobip_api_client.exceptions import (
    BadRequestException,
    NotFoundException,
    UnauthorizedException,
)
from infobip_api_client.models import ApiError as ApiErrorModel
from infobip_api_client.models import ApiException as LegacyErrorModel
from infobip_api_client.models import (
    MessageGeneralStatus,
    Platform,
    SmsBulkRequest,
    SmsBulkStatus,
    SmsMessageOptions,
    SmsMessageRequestOptions,
    SmsPreviewRequest,
    SmsRequest,
    SmsRequestSchedulingSettings,
    SmsUpdateStatusRequest,
)

from tests.official_client import CASE_IDS, CASES, check_response, check_stored, in_days, message, sms_api

KEY = "sandbox-key"


@pytest.fixture
def api(sandbox):
    with sms_api(sandbox.url, KEY) as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_send_variants(api, sandbox, case):
    resp = api.send_sms_messages(case.request)
    check_response(case, resp)
    check_stored(case, sandbox.messages())
    sent = sandbox.sends()[-1]
    assert sent["path"] == "/sms/3/messages" and sent["auth"] == "App"
    assert sent["userAgent"].startswith("infobip-api-client-python/6")


def test_message_count_only_when_asked(api):
    plain = api.send_sms_messages(SmsRequest(messages=[message(text="x" * 200)]))
    assert plain.messages[0].details is None
    counted = api.send_sms_messages(SmsRequest(messages=[message(text="x" * 200)],
                                               options=SmsMessageRequestOptions(include_sms_count_in_response=True)))
    assert counted.messages[0].details.message_count == 2


def test_preview(api):
    pv = api.preview_sms_message(SmsPreviewRequest(text="Çok güzel", language_code="TR", transliteration="TURKISH"))
    assert pv.original_text == "Çok güzel"
    assert pv.previews and all(p.message_count == 1 for p in pv.previews)
    assert pv.previews[-1].configuration.transliteration == "TURKISH"


def _send_bulk(api, bulk_id: str, **opts) -> list[str]:
    req = SmsRequest(messages=[message(["41793026727", "385991112222"], ids=[f"{bulk_id}-a", f"{bulk_id}-b"],
                                       sender="Shop", **opts)],
                     options=SmsMessageRequestOptions(schedule=SmsRequestSchedulingSettings(bulk_id=bulk_id)))
    return [m.message_id for m in api.send_sms_messages(req).messages]


def test_delivery_reports_once_with_values(api):
    opts = SmsMessageOptions(platform=Platform(entity_id="e1", application_id="a1"), campaign_reference_id="c1")
    ids = _send_bulk(api, "rep-1", options=opts)
    _send_bulk(api, "rep-2")
    result = api.get_outbound_sms_message_delivery_reports(bulk_id="rep-1", limit=10)
    assert sorted(r.message_id for r in result.results) == sorted(ids)
    for r in result.results:
        assert r.bulk_id == "rep-1" and r.sender == "Shop" and r.message_count == 1
        assert r.status.group_name == MessageGeneralStatus.DELIVERED and r.error.group_name.value == "OK"
        assert r.platform.entity_id == "e1" and r.platform.application_id == "a1"
        assert r.campaign_reference_id == "c1" and r.sent_at.tzinfo is not None and r.done_at >= r.sent_at
    assert api.get_outbound_sms_message_delivery_reports(bulk_id="rep-1").results == []  # consumed once
    one = api.get_outbound_sms_message_delivery_reports(message_id="rep-2-b")
    assert [r.message_id for r in one.results] == ["rep-2-b"] and one.results[0].to == "385991112222"
    assert len(api.get_outbound_sms_message_delivery_reports(limit=1).results) == 1
    assert api.get_outbound_sms_message_delivery_reports(campaign_reference_id="nope").results == []


def test_logs_each_filter(api):
    opts = SmsMessageOptions(platform=Platform(entity_id="e9", application_id="a9"), campaign_reference_id="c9")
    _send_bulk(api, "log-1", options=opts)
    _send_bulk(api, "log-2")

    def ids(**kw) -> list[str]:
        return sorted(r.message_id for r in api.get_outbound_sms_message_logs(**kw).results)

    assert ids(bulk_id=["log-1", "log-2"]) == ["log-1-a", "log-1-b", "log-2-a", "log-2-b"]
    assert ids(message_id=["log-2-a", "log-1-b"]) == ["log-1-b", "log-2-a"]
    assert ids(destination="385991112222") == ["log-1-b", "log-2-b"]
    assert ids(sender="Shop", bulk_id=["log-1"]) == ["log-1-a", "log-1-b"]
    assert ids(sender="Nobody") == []
    assert ids(mcc="228", mnc="01") == ["log-1-a", "log-2-a"]
    assert ids(mcc="219") == ["log-1-b", "log-2-b"]
    assert ids(entity_id="e9") == ids(application_id="a9") == ids(campaign_reference_id=["c9"]) == ["log-1-a",
                                                                                                    "log-1-b"]
    assert len(ids(general_status=MessageGeneralStatus.DELIVERED)) == 4
    assert ids(general_status=MessageGeneralStatus.PENDING) == []
    now = datetime.now(UTC)
    assert len(ids(sent_since=now - timedelta(minutes=5), sent_until=now + timedelta(minutes=5))) == 4
    assert ids(sent_since=now + timedelta(minutes=5)) == []
    log = api.get_outbound_sms_message_logs(message_id=["log-1-a"]).results[0]
    assert log.content.actual_instance.text == "Hello from the official client"
    assert log.destination == "41793026727" and log.sender == "Shop" and log.mcc_mnc == "22801"
    assert log.platform.entity_id == "e9" and log.campaign_reference_id == "c9" and log.message_count == 1
    assert log.status.group_name == MessageGeneralStatus.DELIVERED
    assert ids(bulk_id=["log-1"]) == ids(bulk_id=["log-1"])  # logs are not consumed


def test_logs_cursor_paging(api):
    _send_bulk(api, "page-1")
    _send_bulk(api, "page-2")
    seen, cursor = [], None
    for _ in range(3):
        page = api.get_outbound_sms_message_logs(limit=3, use_cursor=True, cursor=cursor)
        assert page.cursor.limit == 3
        seen += [r.message_id for r in page.results]
        cursor = page.cursor.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == ["page-1-a", "page-1-b", "page-2-a", "page-2-b"]
    assert len(seen) == 4 and cursor is None


def test_inbound_pull(api, sandbox):
    for i in range(2):
        requests.post(sandbox.url + "/sandbox/inbound", timeout=5, json={"push": False,
            "from": "385916242493", "to": "385921004026", "text": f"QUIZ Paris {i}", "keyword": "QUIZ",
            "callbackData": f"cb{i}", "applicationId": "app", "entityId": "ent"}).raise_for_status()
    first = api.get_inbound_sms_messages(limit=1)
    assert first.message_count == 1 and first.pending_message_count == 1
    m = first.results[0]
    assert (m.var_from, m.to, m.text, m.clean_text, m.keyword) == ("385916242493", "385921004026", "QUIZ Paris 0",
                                                                    "Paris 0", "QUIZ")
    assert m.sms_count == 1 and m.callback_data == "cb0" and m.received_at.tzinfo is not None
    rest = api.get_inbound_sms_messages(application_id="app", entity_id="ent")
    assert [x.text for x in rest.results] == ["QUIZ Paris 1"] and rest.pending_message_count == 0
    assert api.get_inbound_sms_messages().results == []  # consumed


def test_scheduled_bulk_lifecycle(api):
    send_at = in_days(1)
    req = SmsRequest(messages=[message(["41793026727", "41793026834"], ids=["s-a", "s-b"])],
                     options=SmsMessageRequestOptions(schedule=SmsRequestSchedulingSettings(bulk_id="sched-7",
                                                                                             send_at=send_at)))
    assert api.send_sms_messages(req).bulk_id == "sched-7"
    bulk = api.get_scheduled_sms_messages(bulk_id="sched-7")
    assert bulk.bulk_id == "sched-7" and bulk.send_at == send_at
    later = in_days(3)
    moved = api.reschedule_sms_messages(bulk_id="sched-7", sms_bulk_request=SmsBulkRequest(send_at=later))
    assert moved.send_at == later and api.get_scheduled_sms_messages(bulk_id="sched-7").send_at == later
    assert api.get_scheduled_sms_messages_status(bulk_id="sched-7").status == SmsBulkStatus.PENDING
    logs = api.get_outbound_sms_message_logs(bulk_id=["sched-7"]).results
    assert {x.status.group_name for x in logs} == {MessageGeneralStatus.PENDING} and all(x.sent_at == later
                                                                                         for x in logs)
    assert api.get_outbound_sms_message_delivery_reports(bulk_id="sched-7").results == []  # nothing final yet
    for status in (SmsBulkStatus.PAUSED, SmsBulkStatus.PENDING, SmsBulkStatus.CANCELED):
        upd = api.update_scheduled_sms_messages_status(
            bulk_id="sched-7", sms_update_status_request=SmsUpdateStatusRequest(status=status))
        assert upd.bulk_id == "sched-7" and upd.status == status
        assert api.get_scheduled_sms_messages_status(bulk_id="sched-7").status == status
    reports = api.get_outbound_sms_message_delivery_reports(bulk_id="sched-7").results
    assert sorted(r.message_id for r in reports) == ["s-a", "s-b"]
    assert all(r.error.name == "EC_MESSAGE_CANCELED" and r.status.group_name == MessageGeneralStatus.UNDELIVERABLE
               for r in reports)
    with pytest.raises(BadRequestException) as exc:  # a canceled bulk stays canceled
        api.update_scheduled_sms_messages_status(
            bulk_id="sched-7", sms_update_status_request=SmsUpdateStatusRequest(status=SmsBulkStatus.PENDING))
    assert isinstance(exc.value.data, LegacyErrorModel)
    assert "status" in exc.value.data.request_error.service_exception.validation_errors
    with pytest.raises(BadRequestException):
        api.reschedule_sms_messages(bulk_id="sched-7", sms_bulk_request=SmsBulkRequest(send_at=in_days(2)))


def test_unknown_bulk_is_404(api):
    with pytest.raises(NotFoundException) as exc:
        api.get_scheduled_sms_messages(bulk_id="no-such-bulk")
    assert exc.value.data.request_error.service_exception.message_id == "NOT_FOUND"


def test_bad_key_typed_errors(sandbox):
    with sms_api(sandbox.url, "wrong-key") as bad:
        for call in (lambda: bad.send_sms_messages(SmsRequest(messages=[message()])),
                     lambda: bad.get_outbound_sms_message_delivery_reports(),
                     lambda: bad.get_outbound_sms_message_logs()):
            with pytest.raises(UnauthorizedException) as exc:
                call()
            assert isinstance(exc.value.data, ApiErrorModel) and exc.value.data.error_code == "E401"
        with pytest.raises(UnauthorizedException) as exc:  # a v1 endpoint: the legacy envelope
            bad.get_inbound_sms_messages()
        assert exc.value.data.request_error.service_exception.message_id == "UNAUTHORIZED"
    assert sandbox.messages() == []


def test_empty_destinations_is_typed_400(api, sandbox):
    with pytest.raises(BadRequestException) as exc:
        api.send_sms_messages(SmsRequest(messages=[message([])]))
    data = exc.value.data
    assert isinstance(data, ApiErrorModel) and data.error_code == "E400" and data.description and data.action
    assert [(v.var_property, v.violation) for v in data.violations] == [("messages[0].destinations",
                                                                         "must not be empty")]
    assert data.resources and sandbox.messages() == []


def test_v3_validation_paths(api):
    with pytest.raises(BadRequestException) as exc:
        api.send_sms_messages(SmsRequest(messages=[message(text=" ", sender="ThisSenderIsTooLong")]))
    props = {v.var_property for v in exc.value.data.violations}
    assert props == {"messages[0].sender", "messages[0].content.text"}
