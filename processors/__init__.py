"""Processors: turn raw Kubernetes Events into domain events (CloudEvents) with Faust agents.

Layout: `rollouts` (pure: one raw record to its domain events), `app` (the Faust app and agent: decode,
interpret, send, dead-letter), `settings`, and `__main__` (the composition root).
"""
