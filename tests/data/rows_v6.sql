-- A few rows as smsbridge at schema version 6 wrote them (caller demo): one sync submission with two
-- messages, a final delivery report not pulled yet, a dead outbox job, an inbound message waiting in the inbox.
INSERT INTO submissions (id, caller, entrance, mode, api, bulk_id, dlr_token, destinations, error, created_at, updated_at)
VALUES (1, 'demo', 'query', 'sync', 'advanced', 'b-old', 'tok-old', 2, NULL, 1700000000.0, 1700000000.0);
INSERT INTO messages (id, submission_id, caller, entrance, mode, state, message_id, bulk_id, upstream_message_id,
    to_addr, sender, text, spec, intermediate, sms_count, status_group_id, status_group_name, status_id, status_name,
    status_description, sent_at, created_at, updated_at)
VALUES (1, 1, 'demo', 'query', 'sync', 'sent', 'm-old-1', 'b-old', 'm-old-1', '41793026727', 'OldSender',
        'written before alembic', '{"from":"OldSender"}', 0, 1, 3, 'DELIVERED', 5, 'DELIVERED_TO_HANDSET',
        'Message delivered to handset', 1700000000.0, 1700000000.0, 1700000000.0),
       (2, 1, 'demo', 'query', 'sync', 'sent', 'm-old-2', 'b-old', 'm-old-2', '41793026834', 'OldSender',
        'written before alembic', '{"from":"OldSender"}', 0, 1, 1, 'PENDING', 26, 'PENDING_ACCEPTED',
        'Message sent to next instance', 1700000000.0, 1700000000.0, 1700000000.0);
INSERT INTO status_changes (message_row, at, source, status_name, group_name, detail)
VALUES (1, 1700000000.0, 'answer', 'PENDING_ACCEPTED', 'PENDING', 'sent');
INSERT INTO reports (id, message_row, caller, dedupe, intermediate, body, received_at, pulled_at)
VALUES (1, 1, 'demo', 'm-old-1|5|2023-11-14T22:13:20.000+0000|0', 0,
        '{"bulkId":"b-old","messageId":"m-old-1","to":"41793026727","status":{"groupId":3,"groupName":"DELIVERED","id":5,"name":"DELIVERED_TO_HANDSET","description":"Message delivered to handset"}}',
        1700000000.0, NULL);
INSERT INTO outbox_jobs (id, kind, caller, ref, method, url, headers, body, content_type, attempts, next_at, state,
    last_error, last_status, created_at, updated_at)
VALUES (1, 'dlr', 'demo', 'm-old-1', 'POST', 'http://127.0.0.1:9/old', '{}', X'7B7D', 'application/json', 21,
        1700000000.0, 'dead', 'refused', NULL, 1700000000.0, 1700000000.0);
INSERT INTO inbound_messages (id, message_id, sender, receiver, text, clean_text, keyword, received_at, sms_count,
    created_at)
VALUES (1, 'in-old-1', '41793026727', '41793026000', 'HELLO from the past', 'from the past', 'HELLO',
        '2023-11-14T22:13:20.000+0000', 1, 1700000000.0);
INSERT INTO inbound_pull (caller, inbound_id, fetched_at) VALUES ('demo', 1, NULL);
