"""hub.ids: a ULID's 26 digits, the same as digit-by-digit base32 gives them."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from hub.ids import new_id, ulid

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _digits(value: int, width: int) -> str:
    """The reference: `width` Crockford digits of `value`, most significant first."""
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


@given(st.integers(0, 2**48 - 1), st.integers(0, 2**80 - 1))
def test_a_ulid_is_its_time_and_randomness_in_base32(millis: int, randomness: int) -> None:
    assert ulid(millis, randomness) == _digits(millis, 10) + _digits(randomness, 16)


def test_ids_sort_by_time_and_have_their_prefix() -> None:
    first, second = ulid(1_000, 2**80 - 1), ulid(1_001, 0)
    assert first < second
    made = new_id("rdm")
    assert re.fullmatch(r"rdm_[0-9a-hjkmnp-tv-z]{26}", made), made
