"""The bridge's pulls and scheduled bulks with Infobip's official Python client v6: delivery reports
(``GET /sms/3/reports``), logs with each filter and cursor paging (``GET /sms/3/logs``), inbound
(``GET /sms/1/inbox/reports``), scheduled bulk get/reschedule/status; the caller's own data only;
reports pushed in the shape of the caller's entrance (v3 for ``/sms/3/messages``, v2 otherwise)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from infobip_api_client.exceptions import BadRequestException, NotFoundException, UnauthorizedException
from infobip_api_client.models import ApiError as ApiErrorModel
from infobip_api_client.models import (
    MessageGeneralStatus,
    Platform,
    SmsBulkRequest,
    SmsBulkStatus,
    SmsMessageDeliveryReporting,
    SmsMessageOptions,
    SmsMessageRequestOptions,
    SmsRequest,
    SmsRequestSchedulingSettings,
    SmsUpdateStatusRequest,
    SmsWebhooks,
)

from tests.conftest import DEMO, Sandbox, running_sandbox
from tests.helpers import free_port, wait_for
from tests.official_client import in_days, message, sms_api
from tests.test_inbound import mo, push, with_inbound

KEY = "demo-key"
OTHER_KEY = "other-key-4d1e"


@pytest.fixture(scope="module")
def dlr_sandbox() -> Iterator[Sandbox]:
    """A sandbox that reports DELIVERED 20 ms after a send."""
    with running_sandbox(dlr_delay=0.02, time_scale=0.001) as sandbox:
        yield sandbox


def _setup(api: str = "advanced", inbound: bool = False):
    def mutate(raw):
        raw["callers"]["demo"]["upstream_api"] = api
        raw["callers"]["other"] = {"password": "other-pw", "api_key": OTHER_KEY, "upstream_api": api,
                                   "scopes": ["messages", "reports", "logs", "bulks"]}
        if inbound:
            with_inbound(default={"caller": "demo", "pull": True})(raw)

    return mutate


def _send_bulk(api, bulk_id: str, sender: str = "Shop", **opts) -> list[str]:
    req = SmsRequest(messages=[message(["41793026727", "385991112222"], ids=[f"{bulk_id}-a", f"{bulk_id}-b"],
                                       sender=sender, **opts)],
                     options=SmsMessageRequestOptions(schedule=SmsRequestSchedulingSettings(bulk_id=bulk_id)))
    return [m.message_id for m in api.send_sms_messages(req).messages]


def _delivered(api, n: int) -> None:
    wait_for(lambda: len(api.get_outbound_sms_message_logs(general_status=MessageGeneralStatus.DELIVERED).results)
             >= n, what=f"{n} delivered messages")


def test_delivery_reports_once_with_values(make_bridge, dlr_sandbox):
    dlr_sandbox.reset()
    bridge = make_bridge(_setup(), upstream_url=dlr_sandbox.url)
    opts = SmsMessageOptions(platform=Platform(entity_id="e1", application_id="a1"), campaign_reference_id="c1")
    with sms_api(bridge.url, KEY) as api, sms_api(bridge.url, OTHER_KEY) as other:
        ids = _send_bulk(api, "rep-1", options=opts)
        _send_bulk(api, "rep-2")
        _send_bulk(api, "rep-3")
        _send_bulk(other, "rep-x")
        _delivered(api, 6)
        assert api.get_outbound_sms_message_delivery_reports(campaign_reference_id="nope").results == []
        result = api.get_outbound_sms_message_delivery_reports(bulk_id="rep-1", limit=10)
        assert sorted(r.message_id for r in result.results) == sorted(ids)
        for r in result.results:
            assert r.bulk_id == "rep-1" and r.sender == "Shop" and r.message_count == 1
            assert r.status.group_name == MessageGeneralStatus.DELIVERED and r.error.group_name.value == "OK"
            assert r.platform.entity_id == "e1" and r.platform.application_id == "a1"
            assert r.campaign_reference_id == "c1" and r.sent_at.tzinfo is not None and r.done_at >= r.sent_at
        assert api.get_outbound_sms_message_delivery_reports(bulk_id="rep-1").results == []  # each report once
        one = api.get_outbound_sms_message_delivery_reports(message_id="rep-2-b")
        assert [r.message_id for r in one.results] == ["rep-2-b"] and one.results[0].to == "385991112222"
        assert len(api.get_outbound_sms_message_delivery_reports(limit=1).results) == 1  # rep-2-a
        # one "fetched" flag per report, shared with the v1 pull: v1 gets only what v3 has not taken
        v1 = bridge.get("/sms/1/reports", params=DEMO).json()["results"]
        assert sorted(r["messageId"] for r in v1) == ["rep-3-a", "rep-3-b"]
        assert api.get_outbound_sms_message_delivery_reports().results == []
        theirs = other.get_outbound_sms_message_delivery_reports().results  # the other caller's own only
        assert sorted(r.message_id for r in theirs) == ["rep-x-a", "rep-x-b"]
    bad = bridge.get("/sms/3/reports", params={"limit": 5000}, headers={"Authorization": f"App {KEY}"})
    assert bad.status_code == 400 and bad.json()["errorCode"] == "E400"  # the client refuses to send it
    assert [v["property"] for v in bad.json()["violations"]] == ["limit"]


def test_logs_each_filter(make_bridge, dlr_sandbox):
    dlr_sandbox.reset()
    bridge = make_bridge(_setup("messages"), upstream_url=dlr_sandbox.url)
    opts = SmsMessageOptions(platform=Platform(entity_id="e9", application_id="a9"), campaign_reference_id="c9")
    with sms_api(bridge.url, KEY) as api, sms_api(bridge.url, OTHER_KEY) as other:
        _send_bulk(api, "log-1", options=opts)
        _send_bulk(api, "log-2")
        _send_bulk(other, "log-x")
        _delivered(api, 4)

        def ids(**kw) -> list[str]:
            return sorted(r.message_id for r in api.get_outbound_sms_message_logs(**kw).results)

        assert ids() == ["log-1-a", "log-1-b", "log-2-a", "log-2-b"]  # not the other caller's
        assert ids(bulk_id=["log-1", "log-2"]) == ids()
        assert ids(bulk_id=["log-x"]) == []
        assert ids(message_id=["log-2-a", "log-1-b"]) == ["log-1-b", "log-2-a"]
        assert ids(destination="385991112222") == ["log-1-b", "log-2-b"]
        assert ids(sender="Shop", bulk_id=["log-1"]) == ["log-1-a", "log-1-b"]
        assert ids(sender="Nobody") == []
        assert ids(mcc="228", mnc="01") == ["log-1-a", "log-2-a"]
        assert ids(mcc="219") == ["log-1-b", "log-2-b"]
        assert ids(entity_id="e9") == ids(application_id="a9") == ids(campaign_reference_id=["c9"]) == [
            "log-1-a", "log-1-b"]
        assert len(ids(general_status=MessageGeneralStatus.DELIVERED)) == 4
        assert ids(general_status=MessageGeneralStatus.PENDING) == []
        now = datetime.now(UTC)
        assert len(ids(sent_since=now - timedelta(minutes=5), sent_until=now + timedelta(minutes=5))) == 4
        assert ids(sent_since=now + timedelta(minutes=5)) == [] and ids(sent_until=now - timedelta(minutes=5)) == []
        log = api.get_outbound_sms_message_logs(message_id=["log-1-a"]).results[0]
        assert log.content.actual_instance.text == "Hello from the official client"
        assert log.destination == "41793026727" and log.sender == "Shop" and log.mcc_mnc == "22801"
        assert log.platform.entity_id == "e9" and log.campaign_reference_id == "c9" and log.message_count == 1
        assert log.status.group_name == MessageGeneralStatus.DELIVERED and log.done_at >= log.sent_at
        assert ids(bulk_id=["log-1"]) == ids(bulk_id=["log-1"])  # logs are not consumed
        with pytest.raises(BadRequestException) as exc:
            api.get_outbound_sms_message_logs(mnc="01")
        assert exc.value.data is None  # the client declares no 400 body for logs: the raw v3 envelope
        assert [v["property"] for v in json.loads(exc.value.body)["violations"]] == ["mnc"]


def test_logs_cursor_paging(make_bridge, sandbox):
    bridge = make_bridge(_setup())
    with sms_api(bridge.url, KEY) as api:
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
            _send_bulk(api, "page-3")  # newer messages do not shift the pages already handed out
        assert seen == ["page-2-b", "page-2-a", "page-1-b", "page-1-a"] and cursor is None
        assert api.get_outbound_sms_message_logs(limit=2).cursor is None  # only when asked
        with pytest.raises(BadRequestException) as exc:
            api.get_outbound_sms_message_logs(cursor="not-ours")
        assert [v["property"] for v in json.loads(exc.value.body)["violations"]] == ["cursor"]


def test_inbound_pull(make_bridge, sandbox):
    bridge = make_bridge(_setup(inbound=True))
    push(bridge, mo("QUIZ Paris 0", frm="385916242493", to="385921004026", keyword="QUIZ", cleanText="Paris 0",
                    callbackData="cb0"), mo("QUIZ Paris 1", keyword="QUIZ"))
    with sms_api(bridge.url, KEY) as api:
        first = api.get_inbound_sms_messages(limit=1)
        assert first.message_count == 1 and first.pending_message_count == 1
        m = first.results[0]
        assert (m.var_from, m.to, m.text, m.clean_text, m.keyword) == ("385916242493", "385921004026",
                                                                        "QUIZ Paris 0", "Paris 0", "QUIZ")
        assert m.sms_count == 1 and m.callback_data == "cb0" and m.received_at.tzinfo is not None
        rest = api.get_inbound_sms_messages()
        assert [x.text for x in rest.results] == ["QUIZ Paris 1"] and rest.pending_message_count == 0
        assert api.get_inbound_sms_messages().results == []  # consumed


def test_scheduled_bulk_lifecycle(make_bridge, sandbox):
    bridge = make_bridge(_setup("messages"))
    send_at = in_days(1)
    req = SmsRequest(messages=[message(["41793026727", "41793026834"], ids=["s-a", "s-b"])],
                     options=SmsMessageRequestOptions(schedule=SmsRequestSchedulingSettings(bulk_id="sched-7",
                                                                                             send_at=send_at)))
    with sms_api(bridge.url, KEY) as api, sms_api(bridge.url, OTHER_KEY) as other:
        assert api.send_sms_messages(req).bulk_id == "sched-7"
        assert {m["sendAt"] for m in sandbox.messages()} == {send_at.strftime("%Y-%m-%dT%H:%M:%S.123+0000")}
        bulk = api.get_scheduled_sms_messages(bulk_id="sched-7")
        assert bulk.bulk_id == "sched-7" and bulk.send_at == send_at
        later = in_days(3)
        moved = api.reschedule_sms_messages(bulk_id="sched-7", sms_bulk_request=SmsBulkRequest(send_at=later))
        assert moved.bulk_id == "sched-7" and moved.send_at == later
        assert api.get_scheduled_sms_messages(bulk_id="sched-7").send_at == later
        assert api.get_scheduled_sms_messages_status(bulk_id="sched-7").status == SmsBulkStatus.PENDING
        logs = api.get_outbound_sms_message_logs(bulk_id=["sched-7"]).results
        assert {x.status.group_name for x in logs} == {MessageGeneralStatus.PENDING}
        assert all(x.sent_at == later for x in logs)  # the record follows the reschedule
        with pytest.raises(NotFoundException):  # another caller's bulk: 404, the upstream is not asked
            other.get_scheduled_sms_messages(bulk_id="sched-7")
        with pytest.raises(NotFoundException):
            other.update_scheduled_sms_messages_status(
                bulk_id="sched-7", sms_update_status_request=SmsUpdateStatusRequest(status=SmsBulkStatus.CANCELED))
        for status in (SmsBulkStatus.PAUSED, SmsBulkStatus.PENDING, SmsBulkStatus.CANCELED):
            upd = api.update_scheduled_sms_messages_status(
                bulk_id="sched-7", sms_update_status_request=SmsUpdateStatusRequest(status=status))
            assert upd.bulk_id == "sched-7" and upd.status == status
            assert api.get_scheduled_sms_messages_status(bulk_id="sched-7").status == status
        with pytest.raises(BadRequestException) as exc:  # the upstream's refusal, passed on with its reasons
            api.update_scheduled_sms_messages_status(
                bulk_id="sched-7", sms_update_status_request=SmsUpdateStatusRequest(status=SmsBulkStatus.PENDING))
        assert "status" in exc.value.data.request_error.service_exception.validation_errors
        with pytest.raises(BadRequestException):
            api.reschedule_sms_messages(bulk_id="sched-7", sms_bulk_request=SmsBulkRequest(send_at=in_days(2)))
    bulk_calls = [r for r in sandbox.requests() if r["path"].startswith("/sms/1/bulks")]
    assert bulk_calls and all(r["auth"] == "App" for r in bulk_calls)  # with the bridge's own key


def test_unknown_or_unscheduled_bulk_is_404(make_bridge, sandbox):
    bridge = make_bridge(_setup())
    with sms_api(bridge.url, KEY) as api:
        _send_bulk(api, "not-scheduled")
        for bulk_id in ("no-such-bulk", "not-scheduled"):
            with pytest.raises(NotFoundException) as exc:
                api.get_scheduled_sms_messages(bulk_id=bulk_id)
            assert exc.value.data.request_error.service_exception.message_id == "NOT_FOUND"
    assert not [r for r in sandbox.requests() if r["path"].startswith("/sms/1/bulks")]


def test_bad_key_typed_errors(make_bridge, sandbox):
    bridge = make_bridge(_setup())
    with sms_api(bridge.url, "wrong-key") as bad:
        for call in (bad.get_outbound_sms_message_delivery_reports, bad.get_outbound_sms_message_logs):
            with pytest.raises(UnauthorizedException) as exc:
                call()
            assert isinstance(exc.value.data, ApiErrorModel) and exc.value.data.error_code == "E401"
        for call in (bad.get_inbound_sms_messages, lambda: bad.get_scheduled_sms_messages(bulk_id="b")):
            with pytest.raises(UnauthorizedException) as exc:  # v1 paths: the legacy envelope
                call()
            assert exc.value.data.request_error.service_exception.message_id == "UNAUTHORIZED"


# -- reports pushed in the shape of the caller's entrance ------------------------------------------------
def _v3_send(bridge, receiver, sender: str = "Shop") -> str:
    hook = SmsWebhooks(delivery=SmsMessageDeliveryReporting(url=receiver.url("/v3")), callback_data="cb-v3")
    opts = SmsMessageOptions(platform=Platform(entity_id="e5", application_id="a5"), campaign_reference_id="c5")
    with sms_api(bridge.url, KEY) as api:
        resp = api.send_sms_messages(SmsRequest(messages=[message(sender=sender, webhooks=hook, options=opts)]))
    return resp.messages[0].message_id


@pytest.mark.parametrize("upstream", ["advanced", "messages"])
def test_v3_entrance_gets_v3_report(make_bridge, dlr_sandbox, receiver, upstream):
    dlr_sandbox.reset()
    bridge = make_bridge(_setup(upstream), upstream_url=dlr_sandbox.url)
    mid = _v3_send(bridge, receiver)
    wait_for(lambda: receiver.count() == 1, what="the v3 report")
    got = receiver.snapshot()[0]
    assert got.path == "/v3" and got.headers["Content-Type"] == "application/json"
    report = json.loads(got.body)["results"][0]
    assert report["messageId"] == mid and report["sender"] == "Shop" and report["messageCount"] == 1
    assert report["platform"] == {"entityId": "e5", "applicationId": "a5"} and report["campaignReferenceId"] == "c5"
    assert report["callbackData"] == "cb-v3" and report["status"]["groupName"] == "DELIVERED"
    assert "from" not in report and "smsCount" not in report


@pytest.mark.parametrize("upstream", ["query", "messages"])
def test_v1_entrance_gets_v2_report_whatever_the_upstream(make_bridge, dlr_sandbox, receiver, upstream):
    dlr_sandbox.reset()
    bridge = make_bridge(_setup(upstream), upstream_url=dlr_sandbox.url)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "from": "InfoSMS", "to": "41793026727", "text": "Hi",
                                                "notifyUrl": receiver.url("/v2"), "callbackData": "cb-v2"})
    assert r.status_code == 200, r.text
    wait_for(lambda: receiver.count() == 1, what="the v2 report")
    report = json.loads(receiver.snapshot()[0].body)["results"][0]
    assert report["messageId"] == r.json()["messages"][0]["messageId"] and report["from"] == "InfoSMS"
    assert report["smsCount"] == 1 and report["callbackData"] == "cb-v2"
    assert "sender" not in report and "messageCount" not in report and "platform" not in report


def _queued(raw):
    _setup("advanced")(raw)
    raw["callers"]["demo"]["mode"] = "queued"
    raw["templates"]["alarm"]["mode"] = "sync"  # the alarm template uses the query API


def _scheduled_request(bulk_id: str) -> SmsRequest:
    return SmsRequest(messages=[message(["41793026727"], ids=[f"{bulk_id}-a"])],
                      options=SmsMessageRequestOptions(schedule=SmsRequestSchedulingSettings(bulk_id=bulk_id,
                                                                                              send_at=in_days(1))))


def test_queued_scheduled_bulk_is_forwarded_then_proxied(make_bridge, sandbox):
    bridge = make_bridge(_queued)
    with sms_api(bridge.url, KEY) as api:
        assert api.send_sms_messages(_scheduled_request("q-sched")).bulk_id == "q-sched"
        wait_for(lambda: len(sandbox.messages()) == 1, what="the queue worker's forward")
        assert sandbox.messages()[0]["bulkId"] == "q-sched" and sandbox.messages()[0]["sendAt"]
        upd = api.update_scheduled_sms_messages_status(
            bulk_id="q-sched", sms_update_status_request=SmsUpdateStatusRequest(status=SmsBulkStatus.CANCELED))
        assert upd.status == SmsBulkStatus.CANCELED
        assert api.get_scheduled_sms_messages_status(bulk_id="q-sched").status == SmsBulkStatus.CANCELED


def test_queued_bulk_not_yet_upstream_is_read_from_the_record(make_bridge, sandbox):
    bridge = make_bridge(_queued, upstream_url=f"http://127.0.0.1:{free_port()}")  # nobody listens
    req = _scheduled_request("q-held")
    with sms_api(bridge.url, KEY) as api:
        api.send_sms_messages(req)
        assert api.get_scheduled_sms_messages(bulk_id="q-held").send_at == req.options.schedule.send_at
        assert api.get_scheduled_sms_messages_status(bulk_id="q-held").status == SmsBulkStatus.PENDING
    put = requests.put(bridge.url + "/sms/1/bulks/status", params={"bulkId": "q-held"}, json={"status": "PAUSED"},
                       headers={"Authorization": f"App {KEY}"}, timeout=10)
    assert put.status_code == 503
    assert put.json()["requestError"]["serviceException"]["messageId"] == "SERVICE_UNAVAILABLE"
