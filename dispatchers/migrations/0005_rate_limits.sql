-- Rate limits per subscription (messages per second, across every dispatcher replica): a token
-- bucket kept on the subscription row (`dispatchers.throttling`).
ALTER TABLE subscriptions
    ADD COLUMN rate_limit_per_s double precision CHECK (rate_limit_per_s > 0),
    ADD COLUMN rate_tokens      double precision,
    ADD COLUMN rate_refilled_at timestamptz;
