"""What a redemption bills: a reward's settlement price, checked and capped.

The money a redemption creates follows from the points paid and the program's point
value: price x pointValue per unit. A merchant (or a partner's catalog) may ask for
less, never more; only an ADMIN contracts a price above that.
"""

from __future__ import annotations

from decimal import Decimal

from hub import obligations, validate
from hub.enums import SettlementBasis
from hub.errors import FieldPath, InvalidInput

MAX_PRICE = Decimal(100_000_000)  # per unit; far beyond any reward, stops absurd input


def cap(price: int, point_value: Decimal) -> Decimal:
    """The most a merchant bills per unit on its own word: what its points are worth."""
    return obligations.amount_for(price, point_value)


def checked(
    value: Decimal, field: FieldPath, *, price: int, point_value: Decimal | None
) -> Decimal:
    """Money (non-negative, at most 2 decimals) within the cap; `point_value` None means
    an ADMIN's contracted price, which has no cap."""
    validate.money(value, field, high=MAX_PRICE)
    if point_value is not None:
        most = cap(price, point_value)
        if value > most:
            raise InvalidInput(
                f"{validate.name_of(field)} may be at most {most}: {price:,} "
                f"point{'s' if price != 1 else ''} x {point_value.normalize():f}, what the "
                "points are worth. A higher price is contracted by ADMIN.",
                field=field,
            )
    return value


def offer_refusal(
    merchant_id: str, title: str, price: int, offered: Decimal | None, point_value: Decimal
) -> str | None:
    """Why the hub refuses a partner's offer of a reward, or None when it is acceptable."""
    if price < 1:
        return (
            f"{merchant_id} offered {title} for {price} points; the hub refuses it "
            f"(a price is at least 1 point). It cannot be redeemed until {merchant_id} "
            "corrects its offer."
        )
    if offered is None:
        return None
    try:
        checked(offered, ("settlement_price",), price=price, point_value=point_value)
    except InvalidInput as refused:
        return (
            f"{merchant_id} offered {offered} as the settlement price of {title}; the hub "
            f"refuses it: {refused.message} It cannot be redeemed until {merchant_id} "
            "corrects its offer."
        )
    return None


def per_unit(settlement_price: Decimal | None, contracted: bool, worth: Decimal) -> Decimal:
    """What the paying merchant owes per unit: `worth` (the points' value now, promotions
    applied) unless the merchant asked for less or an ADMIN contracted a price."""
    if settlement_price is None:
        return worth
    if contracted:
        return settlement_price
    return min(settlement_price, worth)


def for_line(
    settlement_price: Decimal | None,
    contracted: bool,
    price_points: int,
    point_value: Decimal,
    quantity: int,
) -> tuple[Decimal, SettlementBasis]:
    """What the paying merchant owes for a whole line, and why: the line's price points
    valued once at the reward's point value, as a conversion leg is valued on its payee's
    side; less if the merchant asked less per unit; an ADMIN's contracted price per unit."""
    worth = obligations.amount_for(price_points, point_value)
    if settlement_price is None:
        return worth, SettlementBasis.POINTS
    if contracted:
        return settlement_price * quantity, SettlementBasis.CONTRACTED
    asked = settlement_price * quantity
    return (asked, SettlementBasis.ASKED) if asked < worth else (worth, SettlementBasis.POINTS)
