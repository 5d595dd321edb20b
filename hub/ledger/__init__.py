"""The double-entry points ledger of hosted programs."""

from hub.ledger.core import Journal, Leg, Movement
from hub.ledger.points import Points, add_months, expire_overdue, expiry_of

__all__ = ["Journal", "Leg", "Movement", "Points", "add_months", "expire_overdue", "expiry_of"]
