"""The hub's tables; importing this package registers every table on Base.metadata."""

from hub.models.base import Base
from hub.models.exchange import (
    Conversion,
    ConversionLeg,
    ExchangeRate,
    Obligation,
    PartnerEvent,
    Quote,
)
from hub.models.ledger import (
    Account,
    Entry,
    Hold,
    IdempotencyRecord,
    Lot,
    LotUse,
    Member,
    Posting,
    Promotion,
)
from hub.models.mall import Redemption, Reward, Slot
from hub.models.merchants import ApiKey, HubSetting, Merchant, Program

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "Conversion",
    "ConversionLeg",
    "Entry",
    "ExchangeRate",
    "Hold",
    "HubSetting",
    "IdempotencyRecord",
    "Lot",
    "LotUse",
    "Member",
    "Merchant",
    "Obligation",
    "PartnerEvent",
    "Posting",
    "Program",
    "Promotion",
    "Quote",
    "Redemption",
    "Reward",
    "Slot",
]
