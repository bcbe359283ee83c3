"""Migration 3: the inbound tables (kept free of imports so gateway/db.py can import it)."""

INBOUND_V3 = """
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
"""
