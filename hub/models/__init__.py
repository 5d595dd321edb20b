"""The hub's tables; importing this package registers every table on Base.metadata."""

from hub.models.base import Base
from hub.models.caches import CacheVersion
from hub.models.exchange import Conversion, ConversionLeg, ExchangeRate, Quote
from hub.models.idempotency import IdempotencyRecord
from hub.models.imports import ImportJob, ImportRejection, ImportRow
from hub.models.ledger import Account, Entry, Hold, Lot, LotUse, Posting
from hub.models.mall import Redemption, RedemptionLeg, Reward, Slot, Voucher
from hub.models.members import Member
from hub.models.merchants import ApiKey, HubSetting, Merchant, Program
from hub.models.partners import PartnerEvent, PartnerOutcome
from hub.models.promotions import Promotion
from hub.models.reconciliation import ReconciliationReport
from hub.models.settlement import (
    NetPosition,
    Obligation,
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
