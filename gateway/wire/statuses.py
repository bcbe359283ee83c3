"""Infobip's status and error tables, as data (infobip-sms-api.md §11)."""

from __future__ import annotations

import dataclasses

from ..model import Status

GROUPS: dict[int, str] = {
    0: "ACCEPTED",
    1: "PENDING",
    2: "UNDELIVERABLE",
    3: "DELIVERED",
    4: "EXPIRED",
    5: "REJECTED",
}

# id: (groupId, name, description, action)
_STATUS_ROWS: dict[int, tuple[int, str, str, str | None]] = {
    0: (0, "MESSAGE_ACCEPTED", "Message accepted", None),
    2: (3, "DELIVERED_TO_OPERATOR", "Message delivered to operator", None),
    3: (1, "PENDING_WAITING_DELIVERY", "Message sent, waiting for delivery report", None),
    4: (2, "UNDELIVERABLE_REJECTED_OPERATOR", "Message rejected by operator", None),
    5: (3, "DELIVERED_TO_HANDSET", "Message delivered to handset", None),
    6: (5, "REJECTED_NETWORK", "Network is forbidden", "Contact account manager"),
    7: (1, "PENDING_ENROUTE", "Message sent to next instance", None),
    8: (5, "REJECTED_PREFIX_MISSING", "Number prefix missing", None),
    9: (2, "UNDELIVERABLE_NOT_DELIVERED", "Message sent not delivered", None),
    10: (5, "REJECTED_DND", "Destination on DND list", None),
    11: (5, "REJECTED_SOURCE", "Invalid Source address", None),
    12: (5, "REJECTED_NOT_ENOUGH_CREDITS", "Not enough credits", None),
    13: (5, "REJECTED_SENDER", "By Sender", "Remove sender from blacklist"),
    14: (5, "REJECTED_DESTINATION", "By Destination", "Remove destination from blacklist"),
    15: (4, "EXPIRED_EXPIRED", "Message expired", None),
    16: (5, "REJECTED_NOT_REACHABLE", "Network not reachable", None),
    17: (5, "REJECTED_PREPAID_PACKAGE_EXPIRED", "Prepaid package expired",
         "Top-Up your account to extend the validity period"),
    18: (5, "REJECTED_DESTINATION_NOT_REGISTERED", "Destination not registered", None),
    19: (5, "REJECTED_ROUTE_NOT_AVAILABLE", "Route not available", "Contact account manager"),
    20: (5, "REJECTED_FLOODING_FILTER", "Rejected flooding", None),
    21: (5, "REJECTED_SYSTEM_ERROR", "System error", None),
    23: (5, "REJECTED_DUPLICATE_MESSAGE_ID", "Rejected duplicate message ID", None),
    24: (5, "REJECTED_INVALID_UDH", "Rejected invalid UDH", None),
    25: (5, "REJECTED_MESSAGE_TOO_LONG", "Rejected message too long", None),
    26: (1, "PENDING_ACCEPTED", "Message sent to next instance", None),
    29: (4, "EXPIRED_DLR_UNKNOWN", "Delivery report unknown", None),
    51: (5, "MISSING_TO", "Destination address missing", "Check to parameter."),
    52: (5, "REJECTED_INVALID_DESTINATION", "Invalid destination address.", "Check to parameter."),
}

STATUSES: dict[int, Status] = {
    sid: Status(gid, GROUPS[gid], sid, name, desc, action)
    for sid, (gid, name, desc, action) in _STATUS_ROWS.items()
}
STATUS_BY_NAME: dict[str, Status] = {s.name: s for s in STATUSES.values()}

PENDING_ACCEPTED = STATUSES[26]
PENDING_ENROUTE = STATUSES[7]
DELIVERED_TO_HANDSET = STATUSES[5]
REJECTED_INVALID_DESTINATION = STATUSES[52]

ERROR_GROUPS: dict[int, str] = {0: "OK", 1: "HANDSET_ERRORS", 2: "USER_ERRORS", 3: "OPERATOR_ERRORS"}

# id: (groupId, name, description, permanent)
ERRORS: dict[int, tuple[int, str, str, bool]] = {
    0: (0, "NO_ERROR", "No Error", False),
    1: (1, "EC_UNKNOWN_SUBSCRIBER", "Unknown subscriber", True),
    6: (1, "EC_ABSENT_SUBSCRIBER_SM", "Absent subscriber", False),
    9: (1, "EC_ILLEGAL_SUBSCRIBER", "Illegal subscriber", True),
    13: (1, "EC_CALL_BARRED", "Call barred", False),
    27: (1, "EC_ABSENT_SUBSCRIBER", "Absent subscriber", False),
    31: (1, "EC_SUBSCRIBER_BUSY_FOR_MT_SMS", "Subscriber busy", False),
    34: (1, "EC_SYSTEM_FAILURE", "System failure", False),
    2048: (3, "EC_TIME_OUT", "Time out", False),
    4100: (2, "EC_MESSAGE_CANCELED", "Message canceled", True),
    4101: (2, "EC_VALIDITYEXPIRED", "Validity expired", True),
}
ERROR_BY_NAME: dict[str, int] = {row[1]: eid for eid, row in ERRORS.items()}


def error_object(error_id: int) -> dict[str, object]:
    """The wire ``error`` object for an error id (unknown ids become EC_UNKNOWN_ERROR)."""
    gid, name, desc, permanent = ERRORS.get(error_id, (1, "EC_UNKNOWN_ERROR", "Unknown error", False))
    return {
        "groupId": gid,
        "groupName": ERROR_GROUPS[gid],
        "id": error_id,
        "name": name,
        "description": desc,
        "permanent": permanent,
    }


def rejected_status(reason: str, name: str | None = None) -> Status:
    """``REJECTED_INVALID_DESTINATION`` (or the status ``name``: ``REJECTED_DESTINATION`` for a destination the
    caller's policy forbids) with the reason in its description, as the answer to one bad destination among
    good ones (gateway/send/rejects.py; the sandbox does the same)."""
    base = STATUS_BY_NAME[name] if name else REJECTED_INVALID_DESTINATION
    return dataclasses.replace(base, description=f"{base.description.rstrip('.')}: {reason}")
