"""The domain's enumerations; the GraphQL enums of the contract wrap these."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "ADMIN"
    MERCHANT = "MERCHANT"
    FINANCE = "FINANCE"
    STOREFRONT = "STOREFRONT"


class MerchantCategory(StrEnum):
    PLATFORM = "PLATFORM"
    HOTEL = "HOTEL"
    AIRLINE = "AIRLINE"
    RESTAURANT = "RESTAURANT"
    SCENIC_SPOT = "SCENIC_SPOT"
    RETAIL = "RETAIL"
    OTHER = "OTHER"


class MerchantStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class ConnectorKind(StrEnum):
    HOSTED = "HOSTED"
    AIRLINE = "AIRLINE"
    HOTEL = "HOTEL"
    RESTAURANT = "RESTAURANT"
    SCENIC = "SCENIC"
    HTTP = "HTTP"


class ProgramKind(StrEnum):
    STANDARD = "STANDARD"  # a merchant's primary program
    GREEN = "GREEN"  # earned on green-tagged purchase lines, spent on green-tagged rewards


class RewardKind(StrEnum):
    GOODS = "GOODS"
    VOUCHER = "VOUCHER"
    HOTEL_NIGHT = "HOTEL_NIGHT"
    ROOM_UPGRADE = "ROOM_UPGRADE"
    HOTEL_SERVICE = "HOTEL_SERVICE"
    AWARD_FLIGHT = "AWARD_FLIGHT"
    LOUNGE_ACCESS = "LOUNGE_ACCESS"
    MEAL = "MEAL"
    ATTRACTION_TICKET = "ATTRACTION_TICKET"
    SERVICE = "SERVICE"


class EntryKind(StrEnum):
    ACCRUAL = "ACCRUAL"
    CONVERSION_OUT = "CONVERSION_OUT"
    CONVERSION_IN = "CONVERSION_IN"
    REDEMPTION = "REDEMPTION"
    REFUND = "REFUND"
    COMPENSATION = "COMPENSATION"
    EXPIRY = "EXPIRY"
    HOLD = "HOLD"
    CAPTURE = "CAPTURE"
    RELEASE = "RELEASE"
    ADJUSTMENT = "ADJUSTMENT"


class AccountKind(StrEnum):
    """A member's account, or one of the system accounts every program has."""

    MEMBER = "MEMBER"
    ISSUED = "ISSUED"
    REDEEMED = "REDEEMED"
    EXCHANGE = "EXCHANGE"
    EXPIRED = "EXPIRED"
    HELD = "HELD"


class HoldStatus(StrEnum):
    PENDING = "PENDING"
    CAPTURED = "CAPTURED"
    RELEASED = "RELEASED"


class ConversionStatus(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    REVERSED = "REVERSED"


class RedemptionStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class CancellationReason(StrEnum):
    MEMBER_REQUEST = "MEMBER_REQUEST"
    MERCHANT_CANCELLED = "MERCHANT_CANCELLED"
    FLIGHT_CANCELLED = "FLIGHT_CANCELLED"
    EVENT_CANCELLED = "EVENT_CANCELLED"


class ObligationKind(StrEnum):
    CONVERSION = "CONVERSION"
    REDEMPTION = "REDEMPTION"
    REFUND = "REFUND"
    COMPENSATION = "COMPENSATION"
    FEE = "FEE"  # the platform fee, written by the settlement run
    ADJUSTMENT = "ADJUSTMENT"  # written by resolving a disputed statement


class SettlementBasis(StrEnum):
    """Where a redemption's settlement price came from."""

    POINTS = "POINTS"  # the reward's price points x its program's point value
    ASKED = "ASKED"  # less, because the reward's merchant asked for less
    CONTRACTED = "CONTRACTED"  # an ADMIN's contracted price for the reward
    LEGACY = "LEGACY"  # priced before migration 0012, which began to record how


class DisputeResolution(StrEnum):
    ACCEPTED = "ACCEPTED"  # with adjustments that settle in the next batch
    REJECTED = "REJECTED"  # the amounts stand


class BatchStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class StatementStatus(StrEnum):
    DRAFT = "DRAFT"
    APPROVED = "APPROVED"
    DISPUTED = "DISPUTED"
    PAID = "PAID"


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    RATE_NOT_CONFIGURED = "RATE_NOT_CONFIGURED"
    BELOW_MINIMUM = "BELOW_MINIMUM"
    NOT_A_MULTIPLE_OF_STEP = "NOT_A_MULTIPLE_OF_STEP"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    SLOT_UNAVAILABLE = "SLOT_UNAVAILABLE"
    INVALID_STATE = "INVALID_STATE"
    PARTNER_UNAVAILABLE = "PARTNER_UNAVAILABLE"
    PARTNER_REJECTED = "PARTNER_REJECTED"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"  # acting for a member needs that member's own session
    NOT_ELIGIBLE = "NOT_ELIGIBLE"  # the member's tier or credit level does not qualify (yet)


class CreditLevel(StrEnum):
    """Set by an external credit system (setMemberCredit), best first."""

    EXCELLENT = "EXCELLENT"
    GOOD = "GOOD"
    FAIR = "FAIR"
    POOR = "POOR"


class WebhookEvent(StrEnum):
    POINTS_ACCRUED = "POINTS_ACCRUED"
    CONVERSION_COMPLETED = "CONVERSION_COMPLETED"
    CONVERSION_FAILED = "CONVERSION_FAILED"
    REDEMPTION_CONFIRMED = "REDEMPTION_CONFIRMED"
    REDEMPTION_CANCELLED = "REDEMPTION_CANCELLED"
    # Added to the contract's: a redemption answered PENDING may end either way, and the
    # merchants concerned hear of it as they hear of a conversion's failure.
    REDEMPTION_FAILED = "REDEMPTION_FAILED"
    REDEMPTION_CANCELLATION_REFUSED = "REDEMPTION_CANCELLATION_REFUSED"
    POINTS_EXPIRING = "POINTS_EXPIRING"
    TIER_CHANGED = "TIER_CHANGED"
    STATEMENT_READY = "STATEMENT_READY"


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class ReconciliationStatus(StrEnum):
    MATCHED = "MATCHED"
    BREAKS = "BREAKS"
    PARTNER_UNAVAILABLE = "PARTNER_UNAVAILABLE"


class ImportStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
