"""The canonical data model: every entrance converts to it, every exit converts from it.

Field names are Python's; the Infobip wire names (``from``, ``notifyUrl`` ...) live only in the
entrances and formatters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ValidationFailed


@dataclass(slots=True)
class Destination:
    """One recipient of a message; ``message_id`` is the caller's or the upstream's id."""

    to: str
    message_id: str | None = None


@dataclass(slots=True)
class Message:
    """One text to one or more destinations, with its per-message options."""

    destinations: list[Destination]
    text: str = ""
    sender: str | None = None
    flash: bool = False
    transliteration: str | None = None
    language_code: str | None = None
    validity_period: int | None = None  # minutes
    send_at: str | None = None  # normalised ISO 8601 with offset
    notify_url: str | None = None
    notify_content_type: str | None = None
    callback_data: str | None = None
    intermediate_report: bool = False
    delivery_time_window: dict[str, Any] | None = None
    regional: dict[str, Any] | None = None
    entity_id: str | None = None
    application_id: str | None = None
    campaign_reference_id: str | None = None  # v3 only
    notify: bool | None = None  # v3 webhooks.delivery.notify; None = the account's default


@dataclass(slots=True)
class Tracking:
    """Conversion tracking as the query/advanced APIs carry it."""

    track: str | None = None  # SMS | URL
    type: str | None = None
    process_key: str | None = None
    base_url: str | None = None


@dataclass(slots=True)
class Submission:
    """A send request as the core sees it, whatever entrance it came through."""

    messages: list[Message]
    bulk_id: str | None = None
    tracking: Tracking | None = None
    url_options: dict[str, Any] | None = None
    sending_speed_limit: dict[str, Any] | None = None
    include_sms_count: bool = False
    caller: str | None = None
    entrance: str = "query"  # query | template:<name> | advanced | messages | jasmin | smseagle | kannel
    # a dialect's own report channel (``jasmin:<level>:<method>``, ``kannel:<dlr-mask>``): overrides the config's
    callback: str | None = None

    @property
    def destination_count(self) -> int:
        return sum(len(m.destinations) for m in self.messages)


@dataclass(frozen=True, slots=True)
class Status:
    """Infobip status object: group + status."""

    group_id: int
    group_name: str
    id: int
    name: str
    description: str
    action: str | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "groupId": self.group_id,
            "groupName": self.group_name,
            "id": self.id,
            "name": self.name,
            "description": self.description,
        }
        if self.action:
            out["action"] = self.action
        return out

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Status:
        return cls(
            int(d.get("groupId", 0)),
            str(d.get("groupName", "")),
            int(d.get("id", 0)),
            str(d.get("name", "")),
            str(d.get("description", "")),
            d.get("action"),
        )


@dataclass(slots=True)
class SentMessage:
    """The answer for one destination."""

    to: str
    status: Status
    message_id: str | None = None
    sms_count: int | None = None
    upstream_message_id: str | None = None  # when the upstream's id differs from the caller's


@dataclass(slots=True)
class QueuedMessage:
    """One destination the queue worker claimed (leased) to forward."""

    row_id: int
    spec: str  # the pre-encoded forwarding spec: opaque to everything but the code that wrote it
    to: str
    upstream_message_id: str | None
    bulk_id: str | None
    tries: int
    upstream: str | None = None  # the upstream it is pinned to (it may hold it), as claimed; None: free to go
    state: str = "queued"  # as claimed: queued, or sending/unknown (a reconciliation: it may be upstream)
    caller: str | None = None
    entrance: str = ""
    expires_at: float | None = None  # still waiting then: EXPIRED, not sent
    callback: str | None = None  # its report channel (a legacy callback, a Kannel or Jasmin dlr-url), if any


@dataclass(slots=True)
class SubmissionResult:
    """The answer for a whole submission."""

    bulk_id: str | None
    messages: list[SentMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReportError:
    """Infobip's error object of a report: group + error, and whether retrying is pointless."""

    group_id: int
    group_name: str
    id: int
    name: str
    description: str
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class Price:
    price_per_message: float | None = None
    currency: str | None = None


@dataclass(slots=True)
class Report:
    """A delivery report as the core sees it: the caller's ids, the upstream's status.

    Times are epoch seconds. Parsed from a push, ``message_id`` is the id the upstream named (its
    own, or the bridge's); matched to the stored message it becomes the caller's."""

    message_id: str
    status: Status | None = None
    error: ReportError | None = None
    bulk_id: str | None = None
    to: str | None = None
    sender: str | None = None
    price: Price | None = None
    sent_at: float | None = None
    done_at: float | None = None
    sms_count: int | None = None
    mcc_mnc: str | None = None
    callback_data: str | None = None
    intermediate: bool = False
    upstream_message_id: str | None = None
    caller: str | None = None
    entity_id: str | None = None  # the v3 shapes' platform
    application_id: str | None = None
    campaign_reference_id: str | None = None


@dataclass(slots=True)
class InboundMessage:
    """One inbound (MO) SMS. ``received_at`` is kept as the upstream wrote it (templates see it so);
    ``extra`` holds fields the upstream added that the bridge passes through (``applicationId`` ...)."""

    message_id: str
    sender: str
    to: str
    text: str = ""
    clean_text: str | None = None
    keyword: str = ""
    received_at: str = ""
    sms_count: int = 1
    price: Price | None = None
    callback_data: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiError(Exception):
    """A request-level failure in HTTP terms, rendered in Infobip's error envelope by the formatters.

    For refusals that are HTTP-level by nature (entrances, the sandbox, the wire parsers they share); the
    core raises the typed errors of gateway/errors.py, which gateway/entrances/errors.py maps to one."""

    http_status: int
    message_id: str
    text: str
    validation_errors: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:  # never includes secrets: texts are written by us
        return f"{self.http_status} {self.message_id}: {self.text}"

    @classmethod
    def bad_request(cls, field_name: str, reason: str) -> ApiError:
        return cls.invalid({field_name: [reason]})

    @classmethod
    def invalid(cls, errors: dict[str, list[str]]) -> ApiError:
        """400 naming every failing parameter; the text leads with the first one (as ValidationFailed's)."""
        return cls(400, "BAD_REQUEST", ValidationFailed(errors).text, errors)


def as_dict(obj: Any) -> dict[str, Any]:
    """Plain dict of a model object (for storage and debugging)."""
    return asdict(obj)
