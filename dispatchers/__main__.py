"""Composition root of the dispatcher: `python -m dispatchers` (or `herald-dispatcher`).

Without a command (or with `run`) it runs the service: one consuming loop and N sending workers, until
SIGTERM or SIGINT. Other commands manage the database and subscriptions (see `dispatchers.cli`).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType

from dispatchers import metrics
from dispatchers.breaker import BreakerPolicy, Breakers
from dispatchers.cli import parser, run_admin
from dispatchers.consuming import ConsumingLoop
from dispatchers.http import HttpResult, HttpSender
from dispatchers.kafka import KafkaDeadLetters, KafkaRecordSource, wait_for_topics
from dispatchers.model import DueDelivery, StoreError
from dispatchers.outcomes import Outcome, RetryAfterBounds
from dispatchers.postgres import Store
from dispatchers.sealing import SealError
from dispatchers.sending import Doorbell, GroupedAttempts, SendingLoop
from dispatchers.settings import DispatcherSettings
from dispatchers.unopened import UnopenedSubscriptions
from herald_runtime import health, logs, setting_names
from herald_runtime.backoff import Backoff
from herald_runtime.heartbeats import Heartbeats
from herald_runtime.settings import report, stop_on_bad_settings, warn_unknown_names

log = logging.getLogger("dispatchers")


def _now() -> datetime:
    return datetime.now(UTC)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with stop_on_bad_settings("dispatcher"):
        settings = DispatcherSettings.from_env(os.environ)
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    warn_unknown_names(os.environ, reads=setting_names.DISPATCHER, log=log)
    running = args.command in (None, "run")
    if running and not settings.kafka_bootstrap:
        sys.exit(
            "dispatcher: bad setting: HERALD_KAFKA_BOOTSTRAP is required to run the dispatcher"
        )
    try:
        # A command fails at once if the database does not answer; the service waits for it.
        store = Store.open(
            settings.database_url,
            max_size=settings.workers + 2,
            keyring=settings.secrets_keyring,
            wait=not running,
        )
    except StoreError as e:
        sys.exit(f"dispatcher: HERALD_DATABASE_URL: {e}")
    try:
        if not running or settings.kafka_bootstrap is None:
            sys.exit(
                run_admin(
                    args,
                    store,
                    print,
                    secret_grace=timedelta(seconds=settings.secret_grace_s),
                    address_policy=settings.address_policy,
                )
            )
        serve(settings, store, bootstrap=settings.kafka_bootstrap)
    finally:
        store.close()


def _database_ready(
    settings: DispatcherSettings,
    store: Store,
    beats: Heartbeats,
    stop: threading.Event,
    backoff: Backoff,
    *,
    source: KafkaRecordSource,
) -> bool:
    """`_database_waited_for`, closing the Kafka consumer when the dispatcher will not run: on a
    stop, and on a bad setting found there (a secret sealed with a key it lacks), which exits the
    process; an unclosed consumer's close at interpreter exit can hang it."""
    try:
        waited = _database_waited_for(settings, store, beats, stop, backoff)
    except BaseException:
        source.close()
        raise
    if not waited:
        source.close()
    return waited


def _topics_ready(
    settings: DispatcherSettings,
    beats: Heartbeats,
    stop: threading.Event,
    backoff: Backoff,
    *,
    bootstrap: str,
    source: KafkaRecordSource,
    state: dict[str, str],
) -> bool:
    """Wait until the domain and dead-letter topics exist (`state["state"]` says why not, for
    /readyz, then "ok"); False, the consumer closed, if stopped first."""

    def beat_all() -> None:  # waiting is not being stuck, for the loops not started yet
        for name in beats.names:
            beats.beat(name)

    if not wait_for_topics(
        bootstrap=bootstrap,
        topics=(settings.domain_topic, settings.dead_letter_topic),
        waiting=lambda reason: state.update(state=reason),
        beat=beat_all,
        stop=stop,
        backoff=backoff,
    ):
        source.close()
        return False
    state["state"] = "ok"
    return True


def _check_secrets(settings: DispatcherSettings, store: Store) -> None:
    """Every stored secret must open with the keyring, or the dispatcher does not start. Raises
    StoreError while the database is unreachable."""
    try:
        unsealed = store.subscriptions.check_secrets()
    except SealError as e:
        sys.exit(f"dispatcher: bad setting: HERALD_SECRETS_KEYS: {e}")
    except StoreError as e:
        if store.last_error is not None:  # unreachable: waited for
            raise
        sys.exit(f"dispatcher: HERALD_DATABASE_URL: {e}")
    if settings.secrets_keyring.sealing_key is None:
        log.warning("HERALD_SECRETS_KEYS is not set: webhook secrets are stored as given")
    elif unsealed:
        log.warning(
            "%d webhook secrets are stored unsealed: run `python -m dispatchers secrets reseal`",
            unsealed,
        )


def _serve_health(
    settings: DispatcherSettings,
    *,
    live: health.Check,
    ready: health.Check,
    source: KafkaRecordSource,
) -> None:
    """Serve /metrics, /healthz and /readyz unless HERALD_METRICS_PORT is 0; an address that
    cannot be listened on stops the dispatcher naming the setting (the consumer closed first)."""
    if not settings.metrics_port:
        return
    try:
        health.serve(host=settings.metrics_host, port=settings.metrics_port, live=live, ready=ready)
    except health.BindError as e:
        source.close()
        sys.exit(report("dispatcher", e))


CONSUMER_TURN_LIMIT_S = 120.0
"""A consuming turn (poll, store, commit) taking longer than this means the loop is stuck."""


def serve(settings: DispatcherSettings, store: Store, *, bootstrap: str) -> None:
    failures: list[str] = []
    beats = Heartbeats(
        {
            "consumer": CONSUMER_TURN_LIMIT_S,
            # A worker's turn: at most 0.9 of a lease of attempts, then recording them.
            **{f"sender-{i}": 2 * settings.lease_s + 60 for i in range(settings.workers)},
        }
    )
    stop = threading.Event()
    backoff = Backoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_max_s)
    doorbell = Doorbell()  # the consuming loop wakes idle workers when it stores deliveries
    source = KafkaRecordSource(
        bootstrap=bootstrap,
        group_id=settings.group_id,
        topic=settings.domain_topic,
        extra_topics=settings.extra_topics,
        session_timeout_s=settings.session_timeout_s,
    )
    consuming = ConsumingLoop(
        source=source,
        dead_letters=KafkaDeadLetters(bootstrap=bootstrap, topic=settings.dead_letter_topic),
        store=store.intake,
        now=_now,
        subscriptions_refresh_s=settings.subscriptions_refresh_s,
        stop=stop,
        on_dead_letter=lambda kind: metrics.DEAD_LETTERS.labels(kind).inc(),
        on_stored=doorbell.ring,
        beat=beats.beater("consumer"),
        on_lag=metrics.observe_lag,
        backoff=backoff,
    )

    def live() -> tuple[bool, dict[str, object]]:
        stuck = beats.stuck()
        return not stuck and not failures, {"stuck": stuck, "failed": failures}

    started = threading.Event()  # the database answered and the stored secrets open
    unopened = UnopenedSubscriptions()
    topics = {"state": "not checked yet"}  # "ok" once the domain and dead-letter topics exist

    def ready() -> tuple[bool, dict[str, object]]:
        ok, details = live()
        kafka = dict(consuming.problems)
        database = store.last_error or (
            "ok"
            if started.is_set()
            else "not asked yet: the topics first"
            if topics["state"] != "ok"
            else "not reached yet"
        )
        # Subscriptions whose secrets do not open are named, not a reason to be unready: the
        # others are delivered, and a restart would not start (the key is missing).
        return ok and database == "ok" and not kafka and topics["state"] == "ok", {
            **details,
            "database": database,
            "kafka": "; ".join(kafka.values()) or "ok",
            "topics": topics["state"],
            "secrets": unopened.describe(),
        }

    _serve_health(settings, live=live, ready=ready, source=source)

    def shutdown(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if not (
        _topics_ready(
            settings, beats, stop, backoff, bootstrap=bootstrap, source=source, state=topics
        )
        and _database_ready(settings, store, beats, stop, backoff, source=source)
    ):
        return
    started.set()
    sender = HttpSender(
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        total_timeout_s=settings.total_timeout_s,
        user_agent="Herald-Webhooks/0.1",
        policy=settings.address_policy,
    )
    breakers = Breakers(
        BreakerPolicy(
            window_s=settings.breaker_window_s,
            min_attempts=settings.breaker_min_attempts,
            failure_ratio=settings.breaker_failure_ratio,
            pause_s=settings.breaker_pause_s,
            max_pause_s=settings.breaker_max_pause_s,
            max_in_flight=settings.max_in_flight_per_subscription or max(1, settings.workers // 2),
            suspect_budget=settings.suspect_workers or max(1, settings.workers // 4),
        )
    )

    recorder = GroupedAttempts(
        store.queue
    )  # the workers' attempts written together, as they finish

    def crash_only(name: str, target: Callable[[], None]) -> Callable[[], None]:
        """A thread that fails stops the whole dispatcher (to be restarted), never silently."""

        def run() -> None:
            try:
                target()
            except Exception as e:
                log.exception("%s failed; stopping the dispatcher", name)
                failures.append(f"{name}: {e!r}")
                stop.set()

        return run

    workers = [
        threading.Thread(
            target=crash_only(
                f"sender-{i}",
                SendingLoop(
                    store=recorder,
                    sender=sender,
                    now=_now,
                    retry_schedule_s=settings.retry_schedule_s,
                    retry_jitter=settings.retry_jitter,
                    claim_batch=settings.claim_batch,
                    lease_s=settings.lease_s,
                    attempt_budget_s=settings.total_timeout_s,
                    idle_poll_s=settings.idle_poll_s,
                    retry_after=RetryAfterBounds(
                        min_s=settings.retry_after_min_s, max_s=settings.retry_after_max_s
                    ),
                    disable_after=timedelta(seconds=settings.disable_after_s),
                    breakers=breakers,
                    stop=stop,
                    on_attempt=_observe,
                    beat=beats.beater(f"sender-{i}"),
                    on_late=metrics.LATE_ATTEMPTS.inc,
                    unopened=unopened,
                    doorbell=doorbell,
                ).run,
            ),
            name=f"sender-{i}",
        )
        for i in range(settings.workers)
    ]
    workers.append(
        threading.Thread(
            target=crash_only(
                "housekeeping",
                lambda: _housekeeping(settings, store, breakers, unopened, stop),
            ),
            name="housekeeping",
        )
    )

    for worker in workers:
        worker.start()
    log.info(
        "dispatcher consuming %s as %s with %d workers",
        ", ".join((settings.domain_topic, *settings.extra_topics)),
        settings.group_id,
        settings.workers,
    )
    try:
        consuming.run()
    finally:
        _stop(stop, doorbell)
        for worker in workers:
            worker.join(timeout=settings.total_timeout_s)
        source.close()
        log.info("dispatcher stopped")
    if failures:
        sys.exit("dispatcher: " + "; ".join(failures))


def _observe(delivery: DueDelivery, result: HttpResult, outcome: Outcome) -> None:
    metrics.observe_attempt(delivery, result, outcome, now=_now())


def _stop(stop: threading.Event, doorbell: Doorbell) -> None:
    """Stop every loop; idle sending workers see it at once. (Not from the signal handler: the
    main thread may hold the doorbell's lock when the signal comes.)"""
    stop.set()
    doorbell.ring()


def _database_waited_for(
    settings: DispatcherSettings,
    store: Store,
    beats: Heartbeats,
    stop: threading.Event,
    backoff: Backoff,
) -> bool:
    """Check the stored secrets once the database answers, waiting for it with backoff meanwhile
    (not ready, but alive: a database that is down is no reason to restart); False if stopped
    first."""
    failures = 0
    while not stop.is_set():
        for name in beats.names:  # waiting is not being stuck, for the loops not started yet
            beats.beat(name)
        try:
            _check_secrets(settings, store)
        except StoreError as e:
            failures += 1
            if failures == 1:
                log.warning("waiting for the database (%s)", e)
            stop.wait(backoff.delay(failures, rand=random.random()))  # noqa: S311 - jitter
            continue
        if failures:
            log.info("the database answers after %d tries", failures + 1)
        return True
    return False


def _rescan_secrets(store: Store, unopened: UnopenedSubscriptions) -> None:
    since = unopened.seen
    changes = unopened.rescanned(store.subscriptions.unopened(now=_now()), since=since)
    for subscription, why in changes.waiting.items():
        log.warning(
            "deliveries to subscription %s wait, untried, for a dispatcher that can open it: %s",
            subscription,
            why.reason,
        )
    for subscription in changes.reopened:
        log.info("the secrets of subscription %s open again: its deliveries go out", subscription)
    metrics.observe_unopened(unopened.by_key())


def _housekeeping(
    settings: DispatcherSettings,
    store: Store,
    breakers: Breakers,
    unopened: UnopenedSubscriptions,
    stop: threading.Event,
) -> None:
    """Refresh the state gauges and the subscriptions whose secrets do not open every few seconds;
    run the clean-up every cleanup interval (one dispatcher at a time: the others find the lock
    taken and skip that round)."""
    next_cleanup = time.monotonic() + min(60.0, settings.cleanup_interval_s)
    while not stop.wait(5.0):
        try:
            metrics.observe_state(store.housekeeping.stats(now=_now()), breakers)
            _rescan_secrets(store, unopened)
            if time.monotonic() >= next_cleanup:
                next_cleanup = time.monotonic() + settings.cleanup_interval_s
                deleted = store.housekeeping.clean_up(
                    now=_now(),
                    delivered_for=timedelta(seconds=settings.retention_delivered_s),
                    failed_for=timedelta(seconds=settings.retention_failed_s),
                    batch=settings.cleanup_batch,
                )
                if deleted:
                    metrics.CLEANED.inc(deleted)
                    log.info("clean-up: %d old deliveries deleted", deleted)
        except StoreError as e:
            log.warning("housekeeping: the store failed (%s)", e)


if __name__ == "__main__":
    main()
