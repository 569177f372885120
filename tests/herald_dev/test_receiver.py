"""The demo receiver (`python -m herald_dev.receiver`) prints what it receives, whoever produced it."""

from __future__ import annotations

import pytest

from herald_dev.receiver import Received, Receiver


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"type":"com.example.app.deployed","data":[1,2]}', id="data-a-list"),
        pytest.param(b'{"type":"com.example.app.deployed"}', id="no-data"),
        pytest.param(b'{"type":"dev.herald.rollout.paused","data":{"name":"p"}}', id="herald"),
    ],
)
def test_the_echo_prints_any_producers_event(
    body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    Receiver(secret="whsec_x", echo=True).record(Received({}, body, verified=True, reason="ok"))
    assert "received " in capsys.readouterr().out
