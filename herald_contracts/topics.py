"""Default topic names. Every service takes its topic names as settings; these are the defaults."""

RAW_TOPIC = "herald.kube-events.v1"
"""Raw core/v1 Events as collected, one record per watch event."""

DOMAIN_TOPIC = "herald.deploy-events.v1"
"""Domain events (CloudEvents 1.0, structured JSON) that subscribers consume."""

DEAD_LETTER_TOPIC = "herald.dead-letters.v1"
"""Records a stage could not decode or process, with the reason in headers."""
