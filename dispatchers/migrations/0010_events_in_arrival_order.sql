-- Each event's place in the order the dispatcher read it (the order the domain topic gave, per
-- partition: one object's events in the order they happened). `replay` queues a subscription's
-- events in this order: the event time has one-second resolution, so it cannot order one object's
-- events. Events stored before this migration are numbered in the order the table holds them.
ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX events_by_seq ON events (seq);
