from __future__ import annotations

import pytest

from dispatchers.matching import SubscriptionFilter, matches
from herald_contracts import DomainEvent


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
    ],
)
def test_subscription_filters(subscription: SubscriptionFilter, wanted: bool) -> None:
    assert matches(subscription, _event()) is wanted
