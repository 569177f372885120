-- Filters on the CloudEvents `source` and `subject` (globs, like the others; empty: any), for any
-- producer's events. `event_types` keeps its rows: a pattern matches the full type, and for
-- Herald's events also the catalogue name, so `rollout.*` still means `dev.herald.rollout.*`.
ALTER TABLE subscriptions
    ADD COLUMN sources  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN subjects text[] NOT NULL DEFAULT '{}';
