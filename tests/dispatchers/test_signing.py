from __future__ import annotations

import pytest

from dispatchers.signing import SecretError, redact, secret_key, sign

# The test vector published with the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = sign(
        secrets=[SPEC_SECRET], message_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY
    )
    assert signature == SPEC_SIGNATURE


def test_every_active_secret_signs_space_separated() -> None:
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    signature = sign(
        secrets=[SPEC_SECRET, other], message_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY
    )
    first, second = signature.split(" ")
    assert first == SPEC_SIGNATURE
    assert second.startswith("v1,")
    assert second != first


def test_changing_the_body_changes_the_signature() -> None:
    tampered = sign(
        secrets=[SPEC_SECRET], message_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=b'{"test": 1}'
    )
    assert tampered != SPEC_SIGNATURE


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        pytest.param("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", id="no-prefix"),
        pytest.param("whsec_not base64!", "base64", id="not-base64"),
        pytest.param("whsec_c2hvcnQ=", "16 bytes", id="too-short"),
    ],
)
def test_malformed_secrets_are_refused(secret: str, complaint: str) -> None:
    with pytest.raises(SecretError, match=complaint):
        secret_key(secret)


def test_redacted_secret_shows_only_the_prefix_and_last_characters() -> None:
    assert redact(SPEC_SECRET) == "whsec_...LaSw"
