-- The claim path's queue shape: a claim reads only deliveries it could take, so its cost does not
-- grow with the backlog it must skip (issue 14).
--   parked:   an open delivery of a disabled subscription; unparked when it is enabled again.
--   waiting:  an ordered subscription's open delivery behind an earlier open one about the same
--             object; only each object's first open delivery (its head) is a candidate, and the
--             next one becomes the head when the head finishes (delivered or failed for good).
--   replayed: queued by `deliveries replay`, not from consumption (not a first delivery, for the
--             end-to-end latency).
-- Columns with constant defaults are added without rewriting the table; the two updates touch only
-- open deliveries (what is queued, not the log).
ALTER TABLE deliveries
    ADD COLUMN parked   boolean NOT NULL DEFAULT false,
    ADD COLUMN waiting  boolean NOT NULL DEFAULT false,
    ADD COLUMN replayed boolean NOT NULL DEFAULT false;

UPDATE deliveries d SET parked = true
FROM subscriptions s
WHERE s.id = d.subscription_id AND NOT s.enabled AND d.status IN ('pending', 'retrying');

-- Numbered per (subscription, object) in one sort: a correlated "is an earlier one open?" would
-- become a semi-join comparing every pair of one object's deliveries.
UPDATE deliveries d SET waiting = true
FROM (
    SELECT o.id, row_number() OVER (PARTITION BY o.subscription_id, o.object_key ORDER BY o.seq) AS n
    FROM deliveries o JOIN subscriptions s ON s.id = o.subscription_id
    WHERE s.ordered AND o.status IN ('pending', 'retrying')
) w
WHERE d.id = w.id AND w.n > 1;

-- What a claim may take, oldest due first (the unlimited subscriptions' claim) ...
CREATE INDEX deliveries_claimable ON deliveries (next_attempt_at, seq)
    WHERE status IN ('pending', 'retrying') AND NOT parked AND NOT waiting;
-- ... and per subscription (a rate-limited subscription's claim, and whether it has any due).
CREATE INDEX deliveries_claimable_by_subscription
    ON deliveries (subscription_id, next_attempt_at, seq)
    WHERE status IN ('pending', 'retrying') AND NOT parked AND NOT waiting;
-- Each ordered object's head (at most one open delivery per subscription and object is not
-- waiting): found without reading the deliveries waiting behind it.
CREATE INDEX deliveries_heads ON deliveries (subscription_id, object_key, seq)
    WHERE status IN ('pending', 'retrying') AND NOT waiting;
-- What waits behind each head, in order: the next head when one finishes.
CREATE INDEX deliveries_waiting ON deliveries (subscription_id, object_key, seq)
    WHERE status IN ('pending', 'retrying') AND waiting;
-- A queue table: vacuumed after a fixed amount of churn (delivered and claimed rows leave dead
-- entries at the front of the claims' index), not after a fifth of the table changed, which would
-- let a large backlog put off the clean-up and slow the claims it does not concern.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);
