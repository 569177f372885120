-- Subscriptions, events (stored once), deliveries (one per event and subscription) and attempts.

CREATE TABLE subscriptions (
    id              uuid PRIMARY KEY,
    url             text NOT NULL,
    secrets         text[] NOT NULL CHECK (cardinality(secrets) >= 1),
    event_types     text[] NOT NULL DEFAULT '{}',
    clusters        text[] NOT NULL DEFAULT '{}',
    namespaces      text[] NOT NULL DEFAULT '{}',
    names           text[] NOT NULL DEFAULT '{}',
    ordered         boolean NOT NULL DEFAULT true,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    source      text NOT NULL,
    object_key  text NOT NULL,
    time        timestamptz NOT NULL,
    payload     jsonb NOT NULL,   -- the CloudEvent, for queries
    body        text NOT NULL,    -- the CloudEvent exactly as read from the topic: what is sent
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    seq             bigserial NOT NULL,
    event_id        text NOT NULL REFERENCES events (id),
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    object_key      text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'retrying', 'delivered', 'failed')),
    attempt_count   integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, subscription_id)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, created_at);
-- Ordered delivery: is an earlier delivery about the same object still open for this subscription?
CREATE INDEX deliveries_open_by_object ON deliveries (subscription_id, object_key, seq)
    WHERE status IN ('pending', 'retrying');

CREATE TABLE attempts (
    id               bigserial PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES deliveries (id),
    attempt_number   integer NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    status_code      integer,
    response_headers jsonb,
    response_body    text,
    error            text,
    UNIQUE (delivery_id, attempt_number)
);
