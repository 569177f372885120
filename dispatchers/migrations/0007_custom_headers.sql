-- Headers a subscription adds to its webhooks: name -> value, the values sealed like secrets.
ALTER TABLE subscriptions ADD COLUMN headers jsonb NOT NULL DEFAULT '{}'::jsonb;
