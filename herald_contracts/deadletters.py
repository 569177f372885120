"""The dead-letter contract: the original bytes, with headers that say where they came from and why.

Any stage that cannot decode or process a record writes it here unchanged (key and value), so that
nothing is dropped silently and the record can be inspected or replayed once the cause is fixed.
"""

from __future__ import annotations

import enum


class DeadLetterHeader(enum.StrEnum):
    SOURCE_TOPIC = "herald.source.topic"
    SOURCE_PARTITION = "herald.source.partition"
    SOURCE_OFFSET = "herald.source.offset"
    STAGE = "herald.stage"
    ERROR = "herald.error"


_MAX_ERROR_BYTES = 4096


def dead_letter_headers(
    *, topic: str, partition: int, offset: int, stage: str, error: str
) -> list[tuple[str, str | bytes | None]]:
    """Headers for a dead letter; the error text is cut to 4 KiB."""
    return [
        (DeadLetterHeader.SOURCE_TOPIC.value, topic.encode()),
        (DeadLetterHeader.SOURCE_PARTITION.value, str(partition).encode()),
        (DeadLetterHeader.SOURCE_OFFSET.value, str(offset).encode()),
        (DeadLetterHeader.STAGE.value, stage.encode()),
        (DeadLetterHeader.ERROR.value, error.encode()[:_MAX_ERROR_BYTES]),
    ]
