-- The schema a database written by smsbridge before Alembic has (schema version 6, commit fd9face):
-- the old migrations 1-6 in order, then their schema_migrations records. Never edit: tests upgrade it.

-- migration 1: outbox
CREATE TABLE outbox_jobs (
    id INTEGER PRIMARY KEY,            -- PostgreSQL: BIGINT GENERATED ALWAYS AS IDENTITY
    kind TEXT NOT NULL,
    caller TEXT,
    ref TEXT,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,             -- JSON object
    body BLOB,                         -- PostgreSQL: BYTEA
    content_type TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,             -- epoch seconds; PostgreSQL: DOUBLE PRECISION
    state TEXT NOT NULL,               -- pending | leased | done | dead
    lease_until REAL,
    lease_token TEXT,
    last_error TEXT,
    last_status INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX outbox_jobs_due ON outbox_jobs (state, next_at);
CREATE INDEX outbox_jobs_ref ON outbox_jobs (kind, ref);
CREATE TABLE outbox_attempts (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES outbox_jobs (id),
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    http_status INTEGER,
    error TEXT,
    duration_ms REAL NOT NULL
);
CREATE INDEX outbox_attempts_job ON outbox_attempts (job_id);

-- migration 2: store
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    caller TEXT,
    entrance TEXT NOT NULL,            -- query | template:<name> | advanced (| messages later)
    mode TEXT NOT NULL,                -- sync | queued
    api TEXT NOT NULL,                 -- upstream API: query | advanced
    bulk_id TEXT,                      -- as the caller sees it
    dlr_token TEXT NOT NULL UNIQUE,    -- the path secret of the bridge's own notifyUrl
    destinations INTEGER NOT NULL,
    error TEXT,                        -- a sync send that failed upstream: why
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions (id),
    caller TEXT,
    entrance TEXT NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,               -- queued | sending | sent | rejected | failed
    message_id TEXT,                   -- the id the caller was given
    bulk_id TEXT,
    upstream_message_id TEXT,          -- the upstream's id (queued: assigned by the bridge, sent as custom id)
    upstream_bulk_id TEXT,
    to_addr TEXT NOT NULL,
    sender TEXT,
    text TEXT NOT NULL,
    spec TEXT NOT NULL,                -- JSON: the advanced-API message without destinations (queued resend)
    notify_url TEXT,                   -- the caller's own notifyUrl / notifyContentType / callbackData
    notify_content_type TEXT,
    callback_data TEXT,
    intermediate INTEGER NOT NULL DEFAULT 0,
    callback TEXT,                     -- name of the legacy callback: caller:<n> | template:<n>
    sms_count INTEGER,
    status_group_id INTEGER,
    status_group_name TEXT,
    status_id INTEGER,
    status_name TEXT,
    status_description TEXT,
    error TEXT,                        -- JSON error object of the last report
    price TEXT,                        -- JSON price object of the last report
    mcc_mnc TEXT,
    sent_at REAL,
    done_at REAL,
    tries INTEGER NOT NULL DEFAULT 0,  -- queued: upstream attempts so far
    next_at REAL,                      -- queued: when the worker may try next
    lease_until REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX messages_queue ON messages (state, next_at);
CREATE INDEX messages_upstream ON messages (upstream_message_id);
CREATE INDEX messages_submission ON messages (submission_id);
CREATE INDEX messages_caller ON messages (caller, created_at);
CREATE INDEX messages_updated ON messages (updated_at);
CREATE TABLE upstream_attempts (
    id INTEGER PRIMARY KEY,
    submission_id INTEGER,             -- sync: the submission; queued: NULL (a batch spans submissions)
    batch TEXT,                        -- queued: the batch's id (messages.last_error names failures)
    api TEXT NOT NULL,
    destinations INTEGER NOT NULL,
    at REAL NOT NULL,
    http_status INTEGER,
    duration_ms REAL NOT NULL,
    error TEXT
);
CREATE INDEX upstream_attempts_at ON upstream_attempts (at);
CREATE TABLE status_changes (
    id INTEGER PRIMARY KEY,
    message_row INTEGER NOT NULL REFERENCES messages (id),
    at REAL NOT NULL,
    source TEXT NOT NULL,              -- answer | report | queue
    status_name TEXT,
    group_name TEXT,
    detail TEXT
);
CREATE INDEX status_changes_message ON status_changes (message_row);
CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    message_row INTEGER NOT NULL REFERENCES messages (id),
    caller TEXT,
    dedupe TEXT NOT NULL UNIQUE,       -- messageId|status id|doneAt|intermediate: duplicates are ignored
    intermediate INTEGER NOT NULL,
    body TEXT NOT NULL,                -- JSON: the report as received (canonical keys)
    received_at REAL NOT NULL,
    pulled_at REAL                     -- GET /sms/1/reports returns each final report once
);
CREATE INDEX reports_pull ON reports (caller, pulled_at);
CREATE INDEX reports_message ON reports (message_row);

-- migration 3: inbound
CREATE TABLE inbound_messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,   -- Infobip's messageId: a repeated push is stored once
    sender TEXT NOT NULL,              -- wire "from": the handset
    receiver TEXT NOT NULL,            -- wire "to": the customer's number
    text TEXT NOT NULL,
    clean_text TEXT,
    keyword TEXT,
    received_at TEXT NOT NULL,         -- as Infobip wrote it (2021-08-25T16:10:00.000+0500)
    sms_count INTEGER,
    price TEXT,                        -- JSON object {pricePerMessage, currency}
    callback_data TEXT,
    extra TEXT,                        -- JSON: other wire fields (applicationId, entityId, ...)
    rule TEXT,                         -- the rule that matched, or the default's name; NULL: none
    forward_job INTEGER,               -- outbox_jobs.id of the forward, if any
    forward_error TEXT,                -- why no forward was enqueued (allow-list, render error)
    created_at REAL NOT NULL
);
CREATE INDEX inbound_messages_receiver ON inbound_messages (receiver, id);
CREATE TABLE inbound_pull (
    caller TEXT NOT NULL,
    inbound_id INTEGER NOT NULL REFERENCES inbound_messages (id),
    fetched_at REAL,                   -- NULL until the caller's pull returned it
    PRIMARY KEY (caller, inbound_id)
);
CREATE INDEX inbound_pull_pending ON inbound_pull (caller, fetched_at, inbound_id);
CREATE TABLE inbound_replies (
    id INTEGER PRIMARY KEY,
    inbound_id INTEGER NOT NULL REFERENCES inbound_messages (id),
    rule TEXT NOT NULL,
    caller TEXT NOT NULL,
    to_number TEXT NOT NULL,
    state TEXT NOT NULL,               -- pending | sent | failed
    message_id TEXT,                   -- the reply's messageId once sent
    status TEXT,                       -- its status name (PENDING_ACCEPTED ...)
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX inbound_replies_inbound ON inbound_replies (inbound_id);

-- migration 4: conversion
ALTER TABLE messages ADD COLUMN converted_at REAL;            -- first conversion the upstream accepted
ALTER TABLE messages ADD COLUMN process_key TEXT;             -- the upstream's processKey for it
ALTER TABLE messages ADD COLUMN conversion_calls INTEGER NOT NULL DEFAULT 0;  -- conversion calls answered

-- migration 5: v3 pulls
ALTER TABLE messages ADD COLUMN entity_id TEXT;
ALTER TABLE messages ADD COLUMN application_id TEXT;
ALTER TABLE messages ADD COLUMN campaign_reference_id TEXT;
ALTER TABLE messages ADD COLUMN send_at REAL;
CREATE INDEX messages_bulk ON messages (caller, bulk_id);

-- migration 6: message indexes
CREATE INDEX messages_report ON messages (submission_id, upstream_message_id);
CREATE INDEX messages_message_id ON messages (message_id);
DROP INDEX messages_upstream;
DROP INDEX messages_submission;

CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'outbox', 1700000000.0);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (2, 'store', 1700000000.0);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (3, 'inbound', 1700000000.0);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (4, 'conversion', 1700000000.0);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (5, 'v3 pulls', 1700000000.0);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (6, 'message indexes', 1700000000.0);
