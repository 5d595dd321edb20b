"""The hub's tables; importing this package registers every table on Base.metadata."""

from hub.models.base import Base
from hub.models.caches import CacheVersion
from hub.models.exchange import (
    Conversion,
    ConversionLeg,
    ExchangeRate,
    Obligation,
    PartnerEvent,
    Quote,
)
from hub.models.imports import ImportJob, ImportRejection, ImportRow
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
from hub.models.mall import Redemption, RedemptionLeg, Reward, Slot, Voucher
from hub.models.merchants import ApiKey, HubSetting, Merchant, Program
from hub.models.outcomes import PartnerOutcome
from hub.models.reconciliation import ReconciliationReport
from hub.models.settlement import (
    NetPosition,
    PaymentInstruction,
    SettlementBatch,
    SettlementCarried,
    SettlementLease,
    Statement,
    StatementAdjustment,
    StatementCounterparty,
    StatementEvent,
)
from hub.models.tiers import AccrualAmount, MemberTier, Tier, TierReview
from hub.models.webhooks import OutboxEvent, WebhookDelivery, WebhookSubscription

__all__ = [
    "Account",
    "AccrualAmount",
    "ApiKey",
    "Base",
    "CacheVersion",
    "Conversion",
    "ConversionLeg",
    "Entry",
    "ExchangeRate",
    "Hold",
    "HubSetting",
    "IdempotencyRecord",
    "ImportJob",
    "ImportRejection",
    "ImportRow",
    "Lot",
    "LotUse",
    "Member",
    "MemberTier",
    "Merchant",
    "NetPosition",
    "Obligation",
    "OutboxEvent",
    "PartnerEvent",
    "PartnerOutcome",
    "PaymentInstruction",
    "Posting",
    "Program",
    "Promotion",
    "Quote",
    "ReconciliationReport",
    "Redemption",
    "RedemptionLeg",
    "Reward",
    "SettlementBatch",
    "SettlementCarried",
    "SettlementLease",
    "Slot",
    "Statement",
    "StatementAdjustment",
    "StatementCounterparty",
    "StatementEvent",
    "Tier",
    "TierReview",
    "Voucher",
    "WebhookDelivery",
    "WebhookSubscription",
]
