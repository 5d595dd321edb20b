"""How decimals are shown: money with 2 places, rates without trailing zeros."""

from __future__ import annotations

from decimal import Decimal

from hub.money import money

__all__ = ["money", "plain"]


def plain(value: Decimal) -> Decimal:
    """A rate or percent without trailing zeros and never in exponent form."""
    text = format(value.normalize(), "f")
    return Decimal(text)
