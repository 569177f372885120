-- Each event's place in the order the dispatcher read it (the order the domain topic gave, per
-- partition: one object's events in the order they happened). `replay` queues a subscription's
-- events in this order: the event time has one-second resolution, so it cannot order one object's
-- events. Events stored before this migration are numbered by when they arrived, then by their
-- time, then in the order the table holds them (a batch's rows, inserted together); not in heap
-- order alone, which after a clean-up freed space puts later events first.
ALTER TABLE events ADD COLUMN seq bigint;
UPDATE events e SET seq = numbered.seq
FROM (
    SELECT ctid AS row_id, row_number() OVER (ORDER BY received_at, time, ctid) AS seq FROM events
) numbered
WHERE e.ctid = numbered.row_id;
ALTER TABLE events ALTER COLUMN seq SET NOT NULL;
ALTER TABLE events ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('events', 'seq'), (SELECT coalesce(max(seq), 0) + 1 FROM events), false);
CREATE INDEX events_by_seq ON events (seq);
