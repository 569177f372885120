-- Each claim carries a token. An attempt's result moves its delivery on only while the delivery is
-- still held by the same claim: a worker whose lease ran out (the delivery was claimed again
-- meanwhile) logs its attempt and leaves the delivery to the new holder.
ALTER TABLE deliveries ADD COLUMN claim_token uuid;
