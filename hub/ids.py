"""Identifiers: sortable, prefixed, random enough to be unguessable."""

from __future__ import annotations

import base64
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# RFC 4648's base32 digits, each as the Crockford digit of the same value.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def ulid(millis: int, randomness: int) -> str:
    """48 bits of milliseconds and 80 random bits as 26 Crockford base32 digits (a ULID,
    lower case): the 130-bit number, its top two bits zero, five bits a digit, most
    significant first. Encoded by the C base32 codec, shifted to fill 20 bytes: half
    the time of a loop of divmod per digit."""
    value = (millis << 80 | randomness) << 30
    return base64.b32encode(value.to_bytes(20, "big"))[:26].translate(_CROCKFORD).decode()


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (a ULID, lower case)."""
    return f"{prefix}_{ulid(int(time.time() * 1000), secrets.randbits(80))}"
