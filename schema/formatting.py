"""How decimals are shown: money with 2 places, rates without trailing zeros."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    """Money shown with 2 places, rounded half-up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def plain(value: Decimal) -> Decimal:
    """A rate or percent without trailing zeros and never in exponent form."""
    text = format(value.normalize(), "f")
    return Decimal(text)
