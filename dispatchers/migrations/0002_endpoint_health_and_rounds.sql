-- Secret rotation with a grace period, endpoint health, and rounds of tries (redeliver, recover).

ALTER TABLE subscriptions
    ADD COLUMN retired_secrets text[] NOT NULL DEFAULT '{}',  -- still signing until retired_until
    ADD COLUMN retired_until   timestamptz,
    ADD COLUMN failing_since   timestamptz,                    -- first failure since the last success
    ADD COLUMN disabled_at     timestamptz;

-- A redelivery or a recovery starts a new round of tries: the schedule counts from round_start.
ALTER TABLE deliveries
    ADD COLUMN round_start integer NOT NULL DEFAULT 0,
    ADD COLUMN last_status_code integer,
    ADD COLUMN last_error text,
    ADD COLUMN delivered_at timestamptz;

CREATE INDEX deliveries_finished ON deliveries (status, updated_at)
    WHERE status IN ('delivered', 'failed');
CREATE INDEX attempts_by_delivery ON attempts (delivery_id);
