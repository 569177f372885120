"""Dispatchers: deliver domain events to subscribed webhooks, signed, with a log of every attempt.

Layout: pure cores `matching` (which subscriptions want an event), `signing` (Standard Webhooks
signatures) and `outcomes` (what an attempt's result means: delivered, retry at, failed); adapters
`postgres` (the store), `http` (the sender) and `kafka` (the consumer); the loops `consuming` and
`sending`; `settings`; `cli` and `__main__` (the composition root).
"""
