"""Webhook secrets sealed at rest: what is stored gives nothing away and opens only where it was
sealed, with a key of the keyring."""

from __future__ import annotations

import base64
import uuid

import pytest

from dispatchers.sealing import PREFIX, Keyring, Opened, SealError, Unopened

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(32, 64))).decode()
SUB = uuid.UUID("5b8e9a8e-6d0c-4f51-a1c5-2c3a3c0e9f11")


def test_a_sealed_secret_holds_nothing_of_it_and_opens_back() -> None:
    keyring = Keyring.parse(f"k1:{K1}")
    sealed = keyring.seal(SECRET, subscription=SUB)
    assert sealed.startswith(f"{PREFIX}k1:")
    assert SECRET[6:] not in sealed
    assert keyring.seal(SECRET, subscription=SUB) != sealed  # a fresh nonce each time
    assert keyring.open(sealed, subscription=SUB) == SECRET


def test_a_sealed_secret_does_not_open_for_another_subscription_or_altered() -> None:
    keyring = Keyring.parse(f"k1:{K1}")
    sealed = keyring.seal(SECRET, subscription=SUB)
    with pytest.raises(SealError, match="another subscription"):
        keyring.open(sealed, subscription=uuid.uuid4())
    altered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(SealError, match="altered"):
        keyring.open(altered, subscription=SUB)


def test_the_first_key_seals_and_every_listed_key_opens() -> None:
    old = Keyring.parse(f"k1:{K1}").seal(SECRET, subscription=SUB)
    rotated = Keyring.parse(f"k2:{K2},k1:{K1}")
    assert rotated.open(old, subscription=SUB) == SECRET
    assert not rotated.is_current(old)
    assert rotated.is_current(rotated.seal(SECRET, subscription=SUB))
    with pytest.raises(SealError, match="key 'k1', which HERALD_SECRETS_KEYS does not hold"):
        Keyring.parse(f"k2:{K2}").open(old, subscription=SUB)


def test_without_keys_secrets_are_kept_as_given_and_sealed_ones_do_not_open() -> None:
    assert Keyring().seal(SECRET, subscription=SUB) == SECRET
    assert Keyring().open(SECRET, subscription=SUB) == SECRET
    sealed = Keyring.parse(f"k1:{K1}").seal(SECRET, subscription=SUB)
    with pytest.raises(SealError, match="does not hold"):
        Keyring().open(sealed, subscription=SUB)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (K1, "entry 1 must be id:base64key"),
        (f"k1:{K1},k one:{K2}", "entry 2 must be id:base64key"),
        ("k1:not base64!", "key 'k1' is not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "key 'k1' must be 32 bytes, not 5"),
        (f"k1:{K1},k1:{K2}", "key id 'k1' is listed twice"),
    ],
)
def test_a_bad_keyring_is_refused_naming_the_setting(text: str, message: str) -> None:
    with pytest.raises(SealError, match="HERALD_SECRETS_KEYS") as error:
        Keyring.parse(text)
    assert message in str(error.value)
    assert K1 not in str(error.value)


def test_a_value_that_does_not_open_is_told_with_its_key_instead_of_raised() -> None:
    sealed_k2 = Keyring.parse(f"k2:{K2}").seal(SECRET, subscription=SUB)
    missing = Keyring.parse(f"k1:{K1}").try_open(sealed_k2, subscription=SUB)
    assert isinstance(missing, Unopened)
    assert (missing.key_id, missing.key_held) == ("k2", False)
    assert "key 'k2', which HERALD_SECRETS_KEYS does not hold" in missing.reason
    altered = Keyring.parse(f"k2:{K2}").try_open(sealed_k2, subscription=uuid.uuid4())
    assert isinstance(altered, Unopened)
    assert (altered.key_id, altered.key_held) == ("k2", True)
    assert SECRET[6:] not in missing.reason + altered.reason
    assert Keyring.parse(f"k2:{K2}").try_open(sealed_k2, subscription=SUB) == SECRET
    assert Keyring().try_open(SECRET, subscription=SUB) == SECRET  # stored as given


def test_a_subscriptions_secrets_and_headers_open_together_or_not_at_all() -> None:
    k1, k2 = Keyring.parse(f"k1:{K1}"), Keyring.parse(f"k2:{K2}")
    header = k1.seal("Bearer 0123456789abcdef", subscription=SUB)
    opened = k1.open_subscription(
        SUB, secrets=[k1.seal(SECRET, subscription=SUB), SECRET], headers={"Authorization": header}
    )
    assert opened == Opened(
        secrets=(SECRET, SECRET), headers=(("Authorization", "Bearer 0123456789abcdef"),)
    )
    # One value sealed with a key it does not hold: nothing of the subscription is opened.
    for secrets, headers in (
        ([SECRET, k2.seal(SECRET, subscription=SUB)], {"Authorization": header}),
        ([SECRET], {"Authorization": k2.seal("Bearer x", subscription=SUB)}),
    ):
        unopened = k1.open_subscription(SUB, secrets=secrets, headers=headers)
        assert isinstance(unopened, Unopened)
        assert unopened.key_id == "k2"
