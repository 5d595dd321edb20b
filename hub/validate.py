"""Small checks shared by the services; each raises InvalidInput naming the field."""

from __future__ import annotations

from decimal import Decimal

from hub.errors import InvalidInput

MAX_POINTS = 10**12  # far beyond any real balance; stops absurd input before arithmetic


def decimal_in_range(
    value: Decimal,
    field: list[str],
    *,
    low: Decimal,
    high: Decimal,
    places: int,
    low_inclusive: bool = True,
) -> Decimal:
    """A finite decimal within [low, high] (or (low, high]) with at most `places` decimals."""
    if not value.is_finite():
        raise InvalidInput(f"{field[-1]} must be a number.", field=field)
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bound = "at least" if low_inclusive else "more than"
        raise InvalidInput(f"{field[-1]} must be {bound} {low} and at most {high}.", field=field)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidInput(f"{field[-1]} has more than {places} decimal places.", field=field)
    return value


def points_in_range(value: int, field: list[str], *, low: int = 1, high: int = MAX_POINTS) -> int:
    if value < low or value > high:
        raise InvalidInput(f"{field[-1]} must be between {low} and {high:,}.", field=field)
    return value


def text(value: str, field: list[str], *, max_length: int, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field[-1]} must not be empty.", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{field[-1]} is longer than {max_length} characters.", field=field)
    return value
