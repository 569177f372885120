from __future__ import annotations

import copy
import json

from hypothesis import event, given, settings
from hypothesis import strategies as st

from collectors.records import MESSAGE_BYTES_ANNOTATION, bound_message, to_raw_record
from herald_contracts import WatchType
from tests.support import rollout_event


def test_managed_fields_are_removed_and_everything_else_kept() -> None:
    event = rollout_event("RolloutPaused", "Rollout is paused (CanaryPauseStep)", count=2)
    record = to_raw_record(
        cluster="prod", watch_type="MODIFIED", event=event, collected_at="2026-08-20T09:16:54Z"
    )
    expected = copy.deepcopy(event)
    del expected["metadata"]["managedFields"]
    assert record.object == expected
    assert record.watch_type is WatchType.MODIFIED


def test_the_callers_event_is_not_changed() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed")
    before = copy.deepcopy(event)
    to_raw_record(cluster="prod", watch_type="ADDED", event=event, collected_at="t")
    assert event == before


def test_an_event_without_metadata_still_becomes_a_record() -> None:
    record = to_raw_record(
        cluster="prod", watch_type="DELETED", event={"reason": "X"}, collected_at="t"
    )
    assert record.object == {"reason": "X"}
    assert record.key == "prod///"


def _size(text: str) -> int:
    """What the text takes in the record: its JSON string's UTF-8, without the quotes."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def test_a_message_that_fits_is_left_alone() -> None:
    event = rollout_event("Unhealthy", "x" * 1000)
    bounded = bound_message(event, max_bytes=1000)
    assert bounded.event is event
    assert bounded.shortened_from is None


def test_a_long_message_is_cut_with_a_marker_and_its_original_length() -> None:
    message = "Liveness probe failed: " + "é" * 600_000
    event = rollout_event("Unhealthy", message)
    event["metadata"]["annotations"] = {"dest-server": "https://kubernetes.default.svc"}
    before = copy.deepcopy(event)
    bounded = bound_message(event, max_bytes=4096)
    shortened = bounded.event["message"]
    original_bytes = len(message.encode())
    assert bounded.shortened_from == original_bytes
    assert shortened.endswith(f" [shortened by Herald from {original_bytes} bytes]")
    assert message.startswith(shortened[: shortened.index(" [shortened by Herald")])
    assert 4096 - 2 < _size(shortened) <= 4096  # as much as fits ("é" takes two bytes)
    assert bounded.event["metadata"]["annotations"] == {
        "dest-server": "https://kubernetes.default.svc",
        MESSAGE_BYTES_ANNOTATION: str(original_bytes),
    }
    assert event == before  # the caller's event is not changed


def test_escaped_characters_count_as_their_escapes() -> None:
    message = "\x00" * 2000  # 2,000 characters, 12,000 bytes in the record
    bounded = bound_message(rollout_event("Failed", message), max_bytes=4096)
    assert bounded.shortened_from == 2000
    assert _size(bounded.event["message"]) <= 4096


MESSAGES = st.one_of(
    st.text(max_size=3000),
    # Long runs of characters of every width, escapes and a lone surrogate included.
    st.lists(
        st.sampled_from(["a", "é", "€", "😀", "\x00", '"', "\\", "\n", "\ud800"]).flatmap(
            lambda c: st.integers(0, 1500).map(lambda n: c * n)
        ),
        max_size=4,
    ).map("".join),
)


@settings(max_examples=200, deadline=None)
@given(message=MESSAGES, max_bytes=st.integers(min_value=1024, max_value=6000))
def test_a_shortened_message_always_fits_and_keeps_the_longest_prefix(
    message: str, max_bytes: int
) -> None:
    bounded = bound_message({"message": message, "metadata": {}}, max_bytes=max_bytes)
    shortened = bounded.event["message"]
    event("shortened" if bounded.shortened_from is not None else "kept")
    if bounded.shortened_from is None:
        assert _size(message) <= max_bytes
        assert shortened == message
        return
    marker = f" [shortened by Herald from {bounded.shortened_from} bytes]"
    kept = shortened.removesuffix(marker)
    assert shortened.endswith(marker)
    assert message.startswith(kept)
    assert _size(shortened) <= max_bytes
    assert _size(message[: len(kept) + 1] + marker) > max_bytes  # one character more would not fit
