from __future__ import annotations

import json

import pytest

from dispatchers.matching import SubscriptionFilter, matches
from herald_contracts import DomainEvent, decode_cloudevent


def _event(domain_type: str = "rollout.completed", **data: str) -> DomainEvent:
    fields = {"cluster": "prod-eu", "namespace": "billing", "name": "payments", **data}
    return DomainEvent(
        id="1",
        source="/s",
        type=f"dev.herald.{domain_type}",
        subject="payments",
        time="t",
        data=fields,
        key="k",
    )


@pytest.mark.parametrize(
    ("subscription", "wanted"),
    [
        pytest.param(SubscriptionFilter(), True, id="empty-filter-matches-all"),
        pytest.param(SubscriptionFilter(event_types=("rollout.*",)), True, id="type-glob"),
        pytest.param(
            SubscriptionFilter(event_types=("application.*",)), False, id="other-type-glob"
        ),
        pytest.param(
            SubscriptionFilter(event_types=("application.*", "rollout.completed")),
            True,
            id="any-of-the-patterns",
        ),
        pytest.param(SubscriptionFilter(clusters=("prod-*",)), True, id="cluster-glob"),
        pytest.param(SubscriptionFilter(clusters=("staging",)), False, id="other-cluster"),
        pytest.param(
            SubscriptionFilter(namespaces=("billing",), names=("pay*",)),
            True,
            id="namespace-and-name",
        ),
        pytest.param(
            SubscriptionFilter(namespaces=("billing",), names=("orders",)),
            False,
            id="all-dimensions-must-match",
        ),
        pytest.param(SubscriptionFilter(event_types=("Rollout.*",)), False, id="case-sensitive"),
        pytest.param(
            SubscriptionFilter(event_types=("dev.herald.rollout.*",)), True, id="full-type-glob"
        ),
        pytest.param(SubscriptionFilter(event_types=("com.example.*",)), False, id="foreign-glob"),
        pytest.param(SubscriptionFilter(sources=("/s",)), True, id="source"),
        pytest.param(SubscriptionFilter(sources=("/other",)), False, id="other-source"),
        pytest.param(SubscriptionFilter(subjects=("pay*",)), True, id="subject-glob"),
    ],
)
def test_subscription_filters(subscription: SubscriptionFilter, wanted: bool) -> None:
    assert matches(subscription, _event()) is wanted


FOREIGN = decode_cloudevent(
    json.dumps(
        {
            "specversion": "1.0",
            "id": "deploy-42",
            "source": "https://ci.example.com/pipelines/7",
            "type": "com.example.app.deployed",
            "subject": "payments",
            "data": {"cluster": "prod-eu", "namespace": "billing", "name": "payments"},
        }
    ).encode(),
    key=b"app-7",
)


@pytest.mark.parametrize(
    ("subscription", "wanted"),
    [
        pytest.param(SubscriptionFilter(), True, id="empty-filter-matches-all"),
        pytest.param(SubscriptionFilter(event_types=("com.example.*",)), True, id="type-glob"),
        pytest.param(
            SubscriptionFilter(event_types=("com.example.app.deployed",)), True, id="exact-type"
        ),
        pytest.param(SubscriptionFilter(event_types=("rollout.*",)), False, id="catalogue-glob"),
        pytest.param(SubscriptionFilter(event_types=("*",)), True, id="star"),
        pytest.param(
            SubscriptionFilter(sources=("https://ci.example.com/*",)), True, id="source-glob"
        ),
        pytest.param(SubscriptionFilter(subjects=("orders",)), False, id="other-subject"),
        pytest.param(
            SubscriptionFilter(clusters=("prod-*",)),
            False,
            id="no-cluster-even-if-its-data-names-one",
        ),
        pytest.param(SubscriptionFilter(names=("*",)), True, id="star-matches-no-name"),
    ],
)
def test_foreign_events_match_on_type_source_and_subject(
    subscription: SubscriptionFilter, wanted: bool
) -> None:
    assert matches(subscription, FOREIGN) is wanted


def test_an_event_without_subject_matches_only_an_open_subject_filter() -> None:
    event = decode_cloudevent(
        b'{"specversion":"1.0","id":"1","source":"/x","type":"com.example.t"}', key=None
    )
    assert matches(SubscriptionFilter(subjects=("*",)), event)
    assert not matches(SubscriptionFilter(subjects=("a*",)), event)


@pytest.mark.parametrize(
    ("patterns", "wanted"),
    [
        pytest.param(("rollout.*",), False, id="a-short-name-of-a-herald-family"),
        pytest.param(("rollout.completed",), False, id="the-same-short-name-exactly"),
        pytest.param(("*",), True, id="star"),
        pytest.param(("rollout.*", "*.completed"), True, id="another-pattern-of-the-filter"),
    ],
)
def test_a_foreign_event_whose_type_looks_like_a_herald_short_name_is_not_herald_s(
    patterns: tuple[str, ...], wanted: bool
) -> None:
    """`rollout.*` is how subscriptions ask for Herald's rollout events; another producer's
    `rollout.completed` must not reach them."""
    event = decode_cloudevent(
        b'{"specversion":"1.0","id":"1","source":"/elsewhere","type":"rollout.completed"}',
        key=None,
    )
    assert matches(SubscriptionFilter(event_types=patterns), event) is wanted
