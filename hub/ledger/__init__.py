"""The double-entry points ledger of hosted programs."""

from hub.ledger.core import Journal, Movement, Side
from hub.ledger.points import Points, add_months, expire_overdue, expiry_of

__all__ = ["Journal", "Movement", "Points", "Side", "add_months", "expire_overdue", "expiry_of"]
