"""Collectors: list and watch core/v1 Events in a cluster and publish them, raw, to Kafka.

Layout: `records` (pure: watch event to raw record), `watching` (the list-then-watch loop over a
small `EventSource` protocol), `kube` (that protocol on the official kubernetes client), `kafka`
(the producer), `settings`, and `__main__` (the composition root).
"""
