"""Schema migration 5: what the v3 pulls filter on (``GET /sms/3/reports``, ``GET /sms/3/logs``).

A message row keeps the v3 ``options.platform`` (entityId, applicationId), the campaignReferenceId and
the scheduled sendAt (epoch seconds), so the caller's own pulls and scheduled-bulk calls can be
answered and filtered from the record. Plain SQL that PostgreSQL also runs.
"""

V3_PULLS = """
ALTER TABLE messages ADD COLUMN entity_id TEXT;
ALTER TABLE messages ADD COLUMN application_id TEXT;
ALTER TABLE messages ADD COLUMN campaign_reference_id TEXT;
ALTER TABLE messages ADD COLUMN send_at REAL;
CREATE INDEX messages_bulk ON messages (caller, bulk_id);
"""
