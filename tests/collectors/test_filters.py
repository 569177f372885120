from __future__ import annotations

import pytest

from collectors.filters import ADMIT_ALL, EventFilter, Selection, admits
from tests.support import ROLLOUT, rollout_event

POD = {"kind": "Pod", "namespace": "billing", "name": "p", "apiVersion": "v1"}


@pytest.mark.parametrize(
    ("event_filter", "event", "published"),
    [
        pytest.param(ADMIT_ALL, rollout_event("X", "m"), True, id="default-admits-everything"),
        pytest.param(
            EventFilter(include=Selection(kinds=frozenset({"Rollout"}))),
            rollout_event("X", "m"),
            True,
            id="included-kind",
        ),
        pytest.param(
            EventFilter(include=Selection(kinds=frozenset({"Rollout"}))),
            rollout_event("X", "m", involved=POD),
            False,
            id="other-kind",
        ),
        pytest.param(
            EventFilter(exclude=Selection(reasons=frozenset({"ScalingReplicaSet"}))),
            rollout_event("ScalingReplicaSet", "m"),
            False,
            id="excluded-reason",
        ),
        pytest.param(
            EventFilter(
                include=Selection(namespaces=frozenset({"billing"})),
                exclude=Selection(kinds=frozenset({"Pod"})),
            ),
            rollout_event("X", "m", involved=POD),
            False,
            id="exclude-wins",
        ),
        pytest.param(
            EventFilter(include=Selection(namespaces=frozenset({"shop"}))),
            rollout_event("X", "m", involved=ROLLOUT),
            False,
            id="other-namespace",
        ),
        pytest.param(
            EventFilter(include=Selection(kinds=frozenset({"Rollout"}))),
            {"reason": "X"},
            False,
            id="no-involved-object",
        ),
    ],
)
def test_filters(event_filter: EventFilter, event: dict[str, object], published: bool) -> None:
    assert admits(event_filter, event) is published
