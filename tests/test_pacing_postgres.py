"""Traffic control on PostgreSQL (issue 16): the pacing, pause and expiry tests again, every bridge on a fresh
PostgreSQL database (two bridges of one test share one: the buckets are locked ``FOR UPDATE``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.test_expiry import test_a_message_past_max_age_expires_with_a_report_and_is_never_sent  # noqa: F401
from tests.test_pacing import (  # noqa: F401
    test_a_queued_burst_leaves_at_the_callers_rate,
    test_a_sync_send_over_its_rate_is_queued_not_refused,
    test_an_upstream_429_pauses_every_worker_of_both_bridges_for_its_retry_after,
    test_max_waiting_answers_429_with_retry_after_in_each_dialect,
    test_two_bridges_on_one_database_keep_one_pace,
)
from tests.test_windows import test_a_window_the_upstream_cannot_carry_is_held_in_the_queue  # noqa: F401


@pytest.fixture
def bridge_store(pg_database: Callable[[], str]) -> Callable[[int], dict[str, Any]]:
    """``bridge_store(n)``: the n-th database of this test (the same URL for the same n)."""
    urls: dict[int, str] = {}
    return lambda n: {"url": urls.setdefault(n, pg_database()) if n not in urls else urls[n]}
