"""Schema migration 4: conversion tracking on the message record (gateway/conversion.py).

Columns on ``messages`` rather than a table of their own, so retention (Store.prune) removes them
with the message. ``ALTER TABLE … ADD COLUMN`` with a constant default runs the same on PostgreSQL.
"""

CONVERSION_V4 = """
ALTER TABLE messages ADD COLUMN converted_at REAL;            -- first conversion the upstream accepted
ALTER TABLE messages ADD COLUMN process_key TEXT;             -- the upstream's processKey for it
ALTER TABLE messages ADD COLUMN conversion_calls INTEGER NOT NULL DEFAULT 0;  -- conversion calls answered
"""
