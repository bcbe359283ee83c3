"""Schema migration 2: the durable record of sends and delivery reports (gateway/store.py).

Kept in its own module (plain SQL, no imports) so gateway/db.py can list it without importing the
store. Types and statements stay within what PostgreSQL also accepts (``INTEGER PRIMARY KEY`` ->
``BIGINT GENERATED ALWAYS AS IDENTITY``, ``REAL`` -> ``DOUBLE PRECISION``); times are epoch seconds.
"""

STORE_V2 = """
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
"""

# Migration 6: the two message indexes whose keys are random ids (upstream_message_id) or merely a prefix
# of a better one (submission_id) become one composite index. Its keys grow with submission_id, so a
# queued acceptance appends to the index's last pages instead of touching one random page per message
# (fewer WAL pages per commit); the report lookup (submission_id, then its upstream id) uses it as before.
# The caller-facing id keeps an index of its own, random keys or not: conversion tracking, the message log's
# messageId filter and the UI look messages up by it, and a full scan per lookup grows with retention.
STORE_INDEXES_V6 = """
CREATE INDEX messages_report ON messages (submission_id, upstream_message_id);
CREATE INDEX messages_message_id ON messages (message_id);
DROP INDEX messages_upstream;
DROP INDEX messages_submission;
"""
