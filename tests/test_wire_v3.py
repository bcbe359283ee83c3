"""v3 wire conversions: parse → canonical → write keeps every field the bridge carries."""

from __future__ import annotations

import pytest

from gateway.model import ApiError
from gateway.wire.v3 import error_body_v3, minutes_of, submission_from_v3, submission_to_v3, v3_path

FULL = {
    "messages": [{
        "sender": "InfoSMS",
        "destinations": [{"to": "41793026727", "messageId": "m1"}, {"to": "41793026834"}],
        "content": {"text": "Şişli", "transliteration": "TURKISH", "language": {"languageCode": "TR"}},
        "options": {"flash": True, "validityPeriod": {"amount": 2, "timeUnit": "HOURS"},
                    "platform": {"entityId": "e", "applicationId": "a"}, "campaignReferenceId": "c",
                    "deliveryTimeWindow": {"days": ["MONDAY"], "from": {"hour": 8, "minute": 0},
                                           "to": {"hour": 18, "minute": 0}},
                    "regional": {"indiaDlt": {"principalEntityId": "p"}}},
        "webhooks": {"delivery": {"url": "https://example.com/dlr", "intermediateReport": True, "notify": False},
                     "contentType": "application/xml", "callbackData": "cb"},
    }],
    "options": {"schedule": {"bulkId": "b1", "sendAt": "2030-01-02T03:04:05.000+0000",
                             "sendingSpeedLimit": {"amount": 10, "timeUnit": "MINUTE"}},
                "tracking": {"shortenUrl": True}, "includeSmsCountInResponse": True,
                "conversionTracking": {"useConversionTracking": True, "conversionTrackingName": "OTP"}},
}


def test_round_trip_keeps_fields():
    sub = submission_from_v3(FULL)
    m = sub.messages[0]
    assert (m.validity_period, m.notify, m.campaign_reference_id, m.entity_id) == (120, False, "c", "e")
    assert sub.entrance == "messages" and sub.tracking.type == "OTP"
    out = submission_to_v3(sub)
    expected = dict(FULL["messages"][0])
    expected["options"] = {**expected["options"], "validityPeriod": {"amount": 120, "timeUnit": "MINUTES"}}
    assert out["messages"] == [expected]
    assert out["options"]["schedule"] == FULL["options"]["schedule"]
    assert out["options"]["conversionTracking"] == FULL["options"]["conversionTracking"]
    assert out["options"]["tracking"] == {"shortenUrl": True}


@pytest.mark.parametrize(("amount", "unit", "minutes"), [(59, "SECONDS", 1), (60, "SECONDS", 1), (61, "SECONDS", 2),
                                                          (7, "MINUTES", 7), (48, "HOURS", 2880)])
def test_validity_units(amount, unit, minutes):
    assert minutes_of(amount, unit) == minutes


def test_parse_errors_use_v3_paths():
    body = {"messages": [{"destinations": [{"to": True}], "content": {"hex": "54 65"},
                          "options": {"validityPeriod": {"timeUnit": "DAYS"}, "campaignReferenceId": "x" * 256},
                          "webhooks": {"contentType": "text/plain"}}]}
    with pytest.raises(ApiError) as exc:
        submission_from_v3(body)
    assert set(exc.value.validation_errors) == {
        "messages[0].destinations[0].to", "messages[0].content", "messages[0].options.validityPeriod.timeUnit",
        "messages[0].options.validityPeriod.amount", "messages[0].options.campaignReferenceId",
        "messages[0].webhooks.contentType"}


def test_v2_paths_renamed_and_envelope_complete():
    assert [v3_path(p) for p in ("messages[1].from", "messages[0].sendAt", "bulkId", "messages[0].notifyUrl",
                                 "messages[0].destinations[2].to")] == [
        "messages[1].sender", "options.schedule.sendAt", "options.schedule.bulkId",
        "messages[0].webhooks.delivery.url", "messages[0].destinations[2].to"]
    body = error_body_v3(ApiError(503, "SERVICE_UNAVAILABLE", "down"))
    assert body["errorCode"] == "E503" and body["violations"] == [] and body["resources"] and body["action"]
