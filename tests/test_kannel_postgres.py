"""Kannel's dialect on PostgreSQL: sends, DLR events (the queue worker's accept events included) and the inbound
answer as the reply, each bridge on a fresh database (tests/pghelp.py; skipped without a server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.test_kannel import (  # noqa: F401
    app,
    dlr_sandbox,
    test_a_retry_with_an_idempotency_key_is_replayed_not_resent,
    test_dlr_mask_31_fires_accepted_then_delivered_with_kannels_escapes,
    test_queued_send_fires_8_from_the_worker,
    test_sms_service_get_url_and_the_answer_is_the_reply,
    test_user_guide_example_is_accepted_byte_for_byte,
)


@pytest.fixture
def bridge_store(pg_database: Callable[[], str]) -> Callable[[int], dict[str, Any]]:
    return lambda n: {"url": pg_database()}
