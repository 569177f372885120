"""What Postgres text and jsonb cannot hold (U+0000, unpaired surrogates) is replaced in the copies
kept for queries, and nothing else changes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchers.storable import REPLACEMENT, storable_json, storable_text


def test_nul_and_unpaired_surrogates_become_the_replacement_character() -> None:
    assert storable_text("a\x00b\ud800c\udfff") == f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}"
    assert storable_text("plain \u2028 \U0001f680") == "plain \u2028 \U0001f680"


def test_every_string_of_a_json_value_is_replaced_names_too_and_the_rest_is_kept() -> None:
    value = {"m\x00": ["x\x00", {"k": "\ud800"}], "n": 1, "f": 1.5, "b": True, "z": None}
    assert storable_json(value) == {
        f"m{REPLACEMENT}": [f"x{REPLACEMENT}", {"k": REPLACEMENT}],
        "n": 1,
        "f": 1.5,
        "b": True,
        "z": None,
    }
    assert value["m\x00"] == ["x\x00", {"k": "\ud800"}]  # the original is left alone


def test_a_value_nested_deeper_than_the_recursion_limit_is_handled() -> None:
    deep: Any = "\x00"
    for _ in range(5000):
        deep = [deep]
    out = storable_json(deep)
    for _ in range(5000):
        out = out[0]
    assert out == REPLACEMENT


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_the_result_always_encodes_as_utf8_without_nul(value: Any) -> None:
    text = json.dumps(storable_json(value), ensure_ascii=False)
    text.encode("utf-8")  # no unpaired surrogate left
    assert "\\u0000" not in text.replace("\\\\", "")
