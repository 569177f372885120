-- Every domain event read is kept (not only those a subscription wanted at the time), for the
-- delivered-retention period, so `deliveries replay` can send a subscription the events it missed
-- (created later, disabled meanwhile, or its filters since widened).
CREATE INDEX events_by_time ON events (time, id);
CREATE INDEX events_by_arrival ON events (received_at);
