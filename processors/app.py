"""The Faust app: one agent reads the raw topic, interprets each record, sends the domain events.

The agent is a short loop: decode, call the pure `interpret`, send and wait for the broker's
acknowledgement, so that the offset Faust commits after the loop moves on is never past an event
that was not written. Records that do not decode go to the dead-letter topic with the reason.
Concurrency stays 1: with more, Faust can commit past an unfinished message (faust issue #606).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import Counter

from herald_contracts import (
    ContractError,
    dead_letter_headers,
    decode_raw_record,
    encode_domain_event,
)
from processors.rollouts import interpret
from processors.settings import ProcessorSettings

log = logging.getLogger(__name__)

RECORDS = Counter(
    "herald_processor_records_total", "Raw records processed, by outcome.", ["outcome"]
)
DOMAIN_EVENTS = Counter(
    "herald_processor_domain_events_total", "Domain events sent, by type.", ["type"]
)

STAGE = "processors"


def build_app(settings: ProcessorSettings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        datadir=str(settings.data_dir),
        web_enabled=False,
        producer_acks=-1,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
    )

    def raw_topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    source = raw_topic(settings.raw_topic)
    domain = raw_topic(settings.domain_topic)
    dead_letters = raw_topic(settings.dead_letter_topic)

    @app.agent(source, concurrency=1)
    async def interpret_raw_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            try:
                record = decode_raw_record(event.value)
                domain_events = interpret(record)
            except ContractError as e:
                log.warning(
                    "dead-lettering %s[%d]@%d: %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    e,
                )
                headers = dead_letter_headers(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    stage=STAGE,
                    error=str(e),
                )
                sent = await dead_letters.send(
                    key=message.key, value=message.value, headers=headers
                )
                await sent
                RECORDS.labels("dead_lettered").inc()
                continue
            for domain_event in domain_events:
                sent = await domain.send(
                    key=domain_event.key.encode(), value=encode_domain_event(domain_event)
                )
                await sent
                DOMAIN_EVENTS.labels(domain_event.type).inc()
                log.info("%s %s for %s", domain_event.type, domain_event.id, domain_event.key)
            RECORDS.labels("interpreted" if domain_events else "ignored").inc()

    return app
