"""Herald's Kafka topics: which ones, with what partitions and configuration, and the command that
creates or checks them (`python -m herald_runtime.topics {ensure,check,strimzi}`, see `__main__`).

- `plan`: the topics Herald's settings call for (pure).
- `drift`: how a topic as a broker reports it differs from that (pure).
- `ensuring`: create what is missing, set the configs that drift, report what cannot be fixed;
  against a `Broker` (the Kafka adapter in `kafka`, an in-memory one in `memory`).
- `strimzi`: the same plan as Strimzi `KafkaTopic` resources (pure).
- `waiting`: what a service does at start while its topics do not exist: wait, unready, saying
  which command creates them.

The processor's Faust internal topics (its tables' changelogs, its assignor's leader topic) are
Faust's to create at the processor's start; `plan.processor_topics` lists them for brokers where
the processor may not create topics (see docs/topics.md).
"""
