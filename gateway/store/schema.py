"""Every table and index, as SQLAlchemy Core ``MetaData`` (the schema of Alembic's head revision).

Identical to what the old migrations 1-6 created (gateway/store/migrations/legacy.py keeps their SQL),
plus ``ops_probe`` (revision 2). Ids are ``INTEGER PRIMARY KEY`` on SQLite (the rowid) and BIGINT on
PostgreSQL; times are epoch seconds (REAL / DOUBLE PRECISION).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid
Real = Double()
Blob = LargeBinary()
_ZERO = text("0")


def _id() -> Column:
    return Column("id", Id, primary_key=True)


outbox_jobs = Table(
    "outbox_jobs", metadata,
    _id(),
    Column("kind", Text, nullable=False),
    Column("caller", Text),
    Column("ref", Text),
    Column("method", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("headers", Text, nullable=False),  # JSON object
    Column("body", Blob),
    Column("content_type", Text),
    Column("attempts", Integer, nullable=False, server_default=_ZERO),
    Column("next_at", Real, nullable=False),
    Column("state", Text, nullable=False),  # pending | leased | done | dead
    Column("lease_until", Real),
    Column("lease_token", Text),
    Column("last_error", Text),
    Column("last_status", Integer),
    Column("created_at", Real, nullable=False),
    Column("updated_at", Real, nullable=False),
    Index("outbox_jobs_due", "state", "next_at"),
    Index("outbox_jobs_ref", "kind", "ref"),
)

outbox_attempts = Table(
    "outbox_attempts", metadata,
    _id(),
    Column("job_id", Id, ForeignKey("outbox_jobs.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", Real, nullable=False),
    Column("http_status", Integer),
    Column("error", Text),
    Column("duration_ms", Real, nullable=False),
    Index("outbox_attempts_job", "job_id"),
)

submissions = Table(
    "submissions", metadata,
    _id(),
    Column("caller", Text),
    Column("entrance", Text, nullable=False),  # query | template:<name> | advanced | ...
    Column("mode", Text, nullable=False),  # sync | queued
    Column("api", Text, nullable=False),  # upstream API: query | advanced
    Column("bulk_id", Text),
    Column("dlr_token", Text, nullable=False, unique=True),  # the path secret of the bridge's own notifyUrl
    Column("destinations", Integer, nullable=False),
    Column("error", Text),
    Column("created_at", Real, nullable=False),
    Column("updated_at", Real, nullable=False),
)

messages = Table(
    "messages", metadata,
    _id(),
    Column("submission_id", Id, ForeignKey("submissions.id"), nullable=False),
    Column("caller", Text),
    Column("entrance", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("state", Text, nullable=False),  # queued | sending | sent | rejected | failed
    Column("message_id", Text),  # the id the caller was given
    Column("bulk_id", Text),
    Column("upstream_message_id", Text),
    Column("upstream_bulk_id", Text),
    Column("to_addr", Text, nullable=False),
    Column("sender", Text),
    Column("text", Text, nullable=False),
    Column("spec", Text, nullable=False),  # the pre-encoded forwarding spec (wire's, opaque here)
    Column("notify_url", Text),
    Column("notify_content_type", Text),
    Column("callback_data", Text),
    Column("intermediate", Integer, nullable=False, server_default=_ZERO),
    Column("callback", Text),
    Column("sms_count", Integer),
    Column("status_group_id", Integer),
    Column("status_group_name", Text),
    Column("status_id", Integer),
    Column("status_name", Text),
    Column("status_description", Text),
    Column("error", Text),
    Column("price", Text),
    Column("mcc_mnc", Text),
    Column("sent_at", Real),
    Column("done_at", Real),
    Column("tries", Integer, nullable=False, server_default=_ZERO),
    Column("next_at", Real),
    Column("lease_until", Real),
    Column("last_error", Text),
    Column("created_at", Real, nullable=False),
    Column("updated_at", Real, nullable=False),
    Column("converted_at", Real),
    Column("process_key", Text),
    Column("conversion_calls", Integer, nullable=False, server_default=_ZERO),
    Column("entity_id", Text),
    Column("application_id", Text),
    Column("campaign_reference_id", Text),
    Column("send_at", Real),
    Column("upstream", Text),  # the upstream that carried it, or may hold it (failover; 0009_failover)
    Column("expires_at", Real),  # a queued message still waiting then is EXPIRED, not sent (revision 0010_pace)
    Index("messages_queue", "state", "next_at"),
    Index("messages_caller", "caller", "created_at"),
    Index("messages_created", "created_at", "status_group_name", "state"),  # the dashboard: read from the index alone
    Index("messages_updated", "updated_at"),
    Index("messages_bulk", "caller", "bulk_id"),
    Index("messages_report", "submission_id", "upstream_message_id"),
    Index("messages_message_id", "message_id"),
)

upstream_attempts = Table(
    "upstream_attempts", metadata,
    _id(),
    Column("submission_id", Id),
    Column("batch", Text),
    Column("api", Text, nullable=False),
    Column("destinations", Integer, nullable=False),
    Column("at", Real, nullable=False),
    Column("http_status", Integer),
    Column("duration_ms", Real, nullable=False),
    Column("error", Text),
    Index("upstream_attempts_at", "at"),
)

status_changes = Table(
    "status_changes", metadata,
    _id(),
    Column("message_row", Id, ForeignKey("messages.id"), nullable=False),
    Column("at", Real, nullable=False),
    Column("source", Text, nullable=False),  # answer | report | queue
    Column("status_name", Text),
    Column("group_name", Text),
    Column("detail", Text),
    Index("status_changes_message", "message_row"),
)

reports = Table(
    "reports", metadata,
    _id(),
    Column("message_row", Id, ForeignKey("messages.id"), nullable=False),
    Column("caller", Text),
    Column("dedupe", Text, nullable=False, unique=True),
    Column("intermediate", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Real, nullable=False),
    Column("pulled_at", Real),
    Index("reports_pull", "caller", "pulled_at"),
    Index("reports_message", "message_row"),
)

inbound_messages = Table(
    "inbound_messages", metadata,
    _id(),
    Column("message_id", Text, nullable=False, unique=True),
    Column("sender", Text, nullable=False),
    Column("receiver", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("clean_text", Text),
    Column("keyword", Text),
    Column("received_at", Text, nullable=False),
    Column("sms_count", Integer),
    Column("price", Text),
    Column("callback_data", Text),
    Column("extra", Text),
    Column("rule", Text),
    Column("forward_job", Id),
    Column("forward_error", Text),
    Column("created_at", Real, nullable=False),
    Index("inbound_messages_receiver", "receiver", "id"),
)

inbound_pull = Table(
    "inbound_pull", metadata,
    Column("caller", Text, nullable=False),
    Column("inbound_id", Id, ForeignKey("inbound_messages.id"), nullable=False),
    Column("fetched_at", Real),
    PrimaryKeyConstraint("caller", "inbound_id"),
    Index("inbound_pull_pending", "caller", "fetched_at", "inbound_id"),
)

inbound_replies = Table(
    "inbound_replies", metadata,
    _id(),
    Column("inbound_id", Id, ForeignKey("inbound_messages.id"), nullable=False),
    Column("rule", Text, nullable=False),
    Column("caller", Text, nullable=False),
    Column("to_number", Text, nullable=False),
    Column("state", Text, nullable=False),  # pending | sent | failed | suppressed (gateway/inbound/loops.py)
    Column("message_id", Text),
    Column("status", Text),
    Column("error", Text),
    Column("created_at", Real, nullable=False),
    Column("updated_at", Real, nullable=False),
    Index("inbound_replies_inbound", "inbound_id"),
    Index("inbound_replies_to", "to_number", "created_at"),  # the reply limit per number (inbound/loops.py)
)

ops_probe = Table(  # GET /ops/ready writes one row: the file and its folder are writable
    "ops_probe", metadata,
    _id(),
    Column("at", Real, nullable=False),
)

idempotency = Table(  # idempotency keys, duplicate fingerprints and custom messageIds, one row per (caller, key)
    "idempotency", metadata,
    _id(),
    Column("caller", Text, nullable=False),
    Column("key", Text, nullable=False),  # "key:<Idempotency-Key>" | "dedupe:<fingerprint>" | "mid:<messageId>"
    Column("fingerprint", Text, nullable=False),  # hash of the request's canonical content
    Column("state", Text, nullable=False),  # inflight | done
    Column("http_status", Integer),
    Column("content_type", Text),
    Column("body", Blob),
    Column("ref", Text),  # the first answer's bulkId, else its first messageId
    Column("message_id", Text),  # the first answer's first messageId (the log UI's badge)
    Column("replays", Integer, nullable=False, server_default=_ZERO),
    Column("lease_until", Real, nullable=False),  # an inflight row past this was left by a crashed request
    Column("expires_at", Real, nullable=False),
    Column("created_at", Real, nullable=False),
    Column("updated_at", Real, nullable=False),
    UniqueConstraint("caller", "key", name="idempotency_caller_key"),
    Index("idempotency_expires", "expires_at"),
    Index("idempotency_message", "caller", "message_id"),
)

rejected_pushes = Table(  # upstream pushes that could not be parsed: answered 2xx, kept for inspection
    "rejected_pushes", metadata,
    _id(),
    Column("kind", Text, nullable=False),  # report | inbound
    Column("ref", Text),  # the report's submission id (the inbound hook has none)
    Column("content_type", Text),
    Column("reason", Text, nullable=False),  # the error, naming the field
    Column("size", Integer, nullable=False),  # the body's length (the body kept may be cut)
    Column("body", Blob),
    Column("created_at", Real, nullable=False),
    Index("rejected_pushes_created", "created_at"),
)

ui_sessions = Table(  # the admin UI's live sessions, shared by every process of a --workers bridge (revision 5)
    "ui_sessions", metadata,
    Column("sid", Text, primary_key=True),
    Column("until", Real, nullable=False),
)

periodic_runs = Table(  # periodic work (pruning): when it last ran and how often, once per interval per cluster (0008_cluster)
    "periodic_runs", metadata,
    Column("name", Text, primary_key=True),
    Column("ran_at", Real, nullable=False),
    Column("runs", Integer, nullable=False, server_default=_ZERO),
)

pace = Table(  # token buckets of traffic control, shared by every process (revision 0010_pace; gateway/send/pacing.py)
    "pace", metadata,
    Column("key", Text, primary_key=True),  # upstream | caller:<name> | template:<name>
    Column("tokens", Real, nullable=False),
    Column("at", Real, nullable=False),  # when ``tokens`` was last worked out
    Column("horizon", Real, nullable=False, server_default=_ZERO),  # the last deferred message's projected turn
    Column("paused_until", Real, nullable=False, server_default=_ZERO),  # upstream: 429 Retry-After
    Column("taken", BigInteger, nullable=False, server_default=_ZERO),  # messages let through so far
)

login_failures = Table(  # failed logins shared by every process (revision 0011_throttle; gateway/throttle.py)
    "login_failures", metadata,
    Column("key", Text, primary_key=True),  # name:<caller name> | addr:<client address>
    Column("failures", Integer, nullable=False),  # since the count last started (forget_after)
    Column("locked_until", Real, nullable=False, server_default=_ZERO),
    Column("last", Real, nullable=False),  # the last failure
    Index("login_failures_locked", "locked_until"),  # every process's view: the locks in force
    Index("login_failures_last", "last"),  # the view's recent counts, and pruning
)
