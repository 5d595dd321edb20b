"""Money as people read it: 2 places, rounded half-up (amounts are stored with 4)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    """Money shown with 2 places, rounded half-up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
