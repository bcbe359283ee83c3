"""Which upstream API a submission goes through: the configured one, unless it cannot carry the request in
full. Nothing is dropped silently (issue 13 item 7): the query API carries no custom ids, sending speed
limit, delivery time window, URL options, tracking base URL, platform (entityId/applicationId) or regional
options other than India DLT, so such a send goes through the advanced API; a v3-only option
(campaignReferenceId) takes the advanced API to v3 (``messages``)."""

from __future__ import annotations

from ..model import Submission


def query_cannot_carry(sub: Submission) -> list[str]:
    """The fields of ``sub`` that ``GET /sms/1/text/query`` has no parameter for."""
    out: set[str] = set()
    if sub.sending_speed_limit:
        out.add("sendingSpeedLimit")
    if sub.url_options:
        out.add("urlOptions")
    if sub.tracking and sub.tracking.base_url:
        out.add("tracking.baseUrl")
    for m in sub.messages:
        if any(d.message_id for d in m.destinations):
            out.add("messageId")
        if m.delivery_time_window:
            out.add("deliveryTimeWindow")
        if m.entity_id or m.application_id:
            out.add("platform")
        if m.regional and set(m.regional) - {"indiaDlt"}:
            out.add("regional")
        if m.campaign_reference_id:
            out.add("campaignReferenceId")
    return sorted(out)


def advanced_cannot_carry(sub: Submission) -> list[str]:
    """The fields of ``sub`` that ``POST /sms/2/text/advanced`` has no place for (v3-only options)."""
    return ["campaignReferenceId"] if any(m.campaign_reference_id for m in sub.messages) else []


def carrying_api(sub: Submission, api: str) -> str:
    """``api``, or the first API after it (query → advanced → messages) that carries ``sub`` in full."""
    if api == "query" and query_cannot_carry(sub):
        api = "advanced"
    if api == "advanced" and advanced_cannot_carry(sub):
        api = "messages"
    return api
