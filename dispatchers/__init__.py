"""Dispatchers: deliver domain events to subscribed webhooks, signed, with a log of every attempt.

Layout: pure cores `matching` (which subscriptions want an event), `signing` (Standard Webhooks
signatures), `outcomes` (what an attempt's result means: delivered, retry at, failed) and `health`
(an endpoint's failure streak, when to disable it); `model` (the domain types and the store's
ports); adapters `postgres` (the store, one module per aggregate; `memory` is its in-memory twin),
`http` (the sender) and `kafka` (the consumer); the loops `consuming` and `sending`; `settings`;
`cli` and `__main__` (the composition root).
"""
