-- `deliveries list --object CLUSTER/NAMESPACE/KIND/NAME`: what was sent about one object.
-- (`--event ID` uses the (event_id, subscription_id) unique index.)
CREATE INDEX deliveries_by_object ON deliveries (object_key, seq);
