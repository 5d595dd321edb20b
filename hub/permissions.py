"""The one place that decides what each role may do (the contract's Mutation comments).

Two levels: `require` says whether a role may call an operation at all (a
refusal is a top-level FORBIDDEN); the `*_scope` checks say whether the named
merchant, program or member is the caller's own (a refusal is a userError coded
FORBIDDEN, raised as `Forbidden`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth import Principal
from hub.enums import Role
from hub.errors import FieldPath, Forbidden, NotAllowed
from hub.models import Conversion, Redemption

ADMIN, MERCHANT, FINANCE, STOREFRONT = Role.ADMIN, Role.MERCHANT, Role.FINANCE, Role.STOREFRONT


class Action(StrEnum):
    REGISTER_MERCHANT = "registerMerchant"
    CREATE_API_KEY = "createApiKey"
    REVOKE_API_KEY = "revokeApiKey"
    READ_API_KEYS = "apiKeys"
    READ_SDL = "_service"  # in production only; any key in development
    SET_EXCHANGE_RATE = "setExchangeRate"
    ENROLL_MEMBER = "enrollMember"
    ACCRUE_POINTS = "accruePoints"
    UPSERT_REWARD = "upsertReward"
    SET_PROMOTION = "setPromotion"
    CREATE_MEMBER_SESSION = "createMemberSession"
    QUOTE_CONVERSION = "quoteConversion"
    CONVERT_POINTS = "convertPoints"
    REDEEM_REWARD = "redeemReward"
    CANCEL_REDEMPTION = "cancelRedemption"
    RUN_SETTLEMENT = "runSettlement"
    APPROVE_STATEMENT = "approveStatement"
    DISPUTE_STATEMENT = "disputeStatement"
    RESOLVE_DISPUTE = "resolveDispute"
    MANAGE_WEBHOOKS = "subscribeWebhook"
    MARK_STATEMENT_PAID = "markStatementPaid"
    READ_MEMBERS = "readMembers"
    READ_SETTLEMENT = "readSettlement"
    READ_STATEMENTS = "readStatements"
    READ_ACTIVITY = "readActivity"  # conversions and redemptions
    READ_RECONCILIATION = "reconciliation"
    SET_TIERS = "setTiers"
    SET_MEMBER_CREDIT = "setMemberCredit"
    READ_INSIGHTS = "merchantInsights"
    REGISTER_PROGRAM = "registerProgram"
    USE_VOUCHER = "useVoucher"
    READ_VOUCHER = "voucher"
    IMPORT_ACCRUALS = "importAccruals"
    READ_IMPORTS = "importJob"


# Who may call each operation; STOREFRONT entries need a member session token.
RULES: dict[Action, frozenset[Role]] = {
    Action.REGISTER_MERCHANT: frozenset({ADMIN}),
    Action.CREATE_API_KEY: frozenset({ADMIN}),
    Action.REVOKE_API_KEY: frozenset({ADMIN}),
    Action.READ_API_KEYS: frozenset({ADMIN}),
    Action.READ_SDL: frozenset({ADMIN}),
    Action.SET_EXCHANGE_RATE: frozenset({ADMIN}),
    Action.ENROLL_MEMBER: frozenset({ADMIN, MERCHANT}),
    Action.ACCRUE_POINTS: frozenset({ADMIN, MERCHANT}),
    Action.UPSERT_REWARD: frozenset({ADMIN, MERCHANT}),
    Action.SET_PROMOTION: frozenset({ADMIN, MERCHANT}),
    Action.CREATE_MEMBER_SESSION: frozenset({ADMIN, MERCHANT}),
    Action.QUOTE_CONVERSION: frozenset({ADMIN, STOREFRONT}),
    Action.CONVERT_POINTS: frozenset({ADMIN, STOREFRONT}),
    Action.REDEEM_REWARD: frozenset({ADMIN, STOREFRONT}),
    Action.CANCEL_REDEMPTION: frozenset({ADMIN, STOREFRONT, MERCHANT}),
    Action.RUN_SETTLEMENT: frozenset({ADMIN, FINANCE}),
    Action.APPROVE_STATEMENT: frozenset({FINANCE}),
    Action.DISPUTE_STATEMENT: frozenset({FINANCE, MERCHANT}),
    Action.RESOLVE_DISPUTE: frozenset({FINANCE}),
    Action.MANAGE_WEBHOOKS: frozenset({ADMIN, MERCHANT}),
    Action.MARK_STATEMENT_PAID: frozenset({FINANCE}),
    Action.READ_MEMBERS: frozenset({ADMIN, MERCHANT, STOREFRONT}),
    Action.READ_SETTLEMENT: frozenset({ADMIN, FINANCE}),
    Action.READ_STATEMENTS: frozenset({ADMIN, FINANCE, MERCHANT}),
    Action.READ_ACTIVITY: frozenset({ADMIN, MERCHANT, STOREFRONT, FINANCE}),
    Action.READ_RECONCILIATION: frozenset({ADMIN, FINANCE, MERCHANT}),
    Action.SET_TIERS: frozenset({ADMIN, MERCHANT}),
    Action.SET_MEMBER_CREDIT: frozenset({ADMIN}),
    Action.READ_INSIGHTS: frozenset({ADMIN, MERCHANT}),
    Action.REGISTER_PROGRAM: frozenset({ADMIN}),
    Action.USE_VOUCHER: frozenset({ADMIN, MERCHANT}),
    Action.READ_VOUCHER: frozenset({ADMIN, MERCHANT}),
    Action.IMPORT_ACCRUALS: frozenset({ADMIN, MERCHANT}),
    Action.READ_IMPORTS: frozenset({ADMIN, MERCHANT}),
}

_NEEDS_MEMBER = {
    Action.QUOTE_CONVERSION,
    Action.CONVERT_POINTS,
    Action.REDEEM_REWARD,
    Action.CANCEL_REDEMPTION,
    Action.READ_MEMBERS,
    Action.READ_ACTIVITY,
}


def allowed(principal: Principal, action: Action) -> bool:
    """Whether this caller's role may call the operation at all."""
    if principal.role not in RULES[action]:
        return False
    return not (
        principal.role == STOREFRONT and action in _NEEDS_MEMBER and principal.member_id is None
    )


def require(principal: Principal, action: Action) -> None:
    """Raise NotAllowed (a top-level FORBIDDEN) unless the role may call the operation."""
    if allowed(principal, action):
        return
    if principal.role == STOREFRONT and principal.role in RULES[action]:
        raise NotAllowed(
            f"{action} acts for a member: send the member's session token in X-Member-Token."
        )
    roles = ", ".join(sorted(RULES[action]))
    raise NotAllowed(f"{action} is for {roles}; this key's role is {principal.role}.")


def require_merchant(principal: Principal, merchant_id: str, field: FieldPath) -> None:
    """A MERCHANT key acts only for its own merchant; ADMIN for any."""
    if principal.role == ADMIN:
        return
    if principal.role == MERCHANT and principal.merchant_id == merchant_id:
        return
    raise Forbidden(f"This key cannot act for merchant {merchant_id!r}.", field=field)


def acts_for_member(principal: Principal, member_id: str) -> bool:
    """A storefront acts only for the member of its session token; ADMIN for any."""
    return principal.role == ADMIN or (
        principal.role == STOREFRONT and principal.member_id == member_id
    )


def require_member(principal: Principal, member_id: str, field: FieldPath) -> None:
    """acts_for_member, or Forbidden."""
    if not acts_for_member(principal, member_id):
        raise Forbidden("The member session is for another member.", field=field)


def sees_money_of(principal: Principal, merchant_id: str) -> bool:
    """A merchant's settlement money (its rewards' settlement prices, its part of a batch):
    ADMIN, FINANCE and that merchant only."""
    if principal.role in (ADMIN, FINANCE):
        return True
    return principal.role == MERCHANT and principal.merchant_id == merchant_id


def sees_redemption_money(principal: Principal, reward_merchant: str, payer_merchant: str) -> bool:
    """A redemption's settlement price (what the payer owes the reward's merchant): ADMIN,
    FINANCE and those two merchants."""
    return sees_money_of(principal, reward_merchant) or sees_money_of(principal, payer_merchant)


def sees_by_role(principal: Principal, member_id: str) -> bool | None:
    """Whether the caller sees one of a member's conversions or redemptions by its role
    alone: ADMIN and FINANCE any, the member in the universal mall its own; None for a
    merchant, or a session a merchant minted (it sees those that touch the merchant's
    programs, `reading_merchant`: the caller knows which do); False for the rest."""
    if principal.role in (ADMIN, FINANCE):
        return True
    if principal.role == STOREFRONT and principal.member_id != member_id:
        return False
    return None if reading_merchant(principal) is not None else principal.role == STOREFRONT


Activity = TypeVar("Activity", Conversion, Redemption)


async def visible_activity(
    session: AsyncSession,
    principal: Principal,
    model: type[Activity],
    row_id: str,
    touches: Callable[[AsyncSession, Activity, str], Awaitable[bool]],
) -> Activity | None:
    """One of a member's conversions or redemptions, if the caller sees it (`sees_by_role`;
    a merchant, or a session it minted, when it `touches` the merchant's programs)."""
    row = await session.get(model, row_id)
    if row is None:
        return None
    seen = sees_by_role(principal, row.member_id)
    if seen is None:
        merchant = reading_merchant(principal)
        assert merchant is not None
        seen = await touches(session, row, merchant)
    return row if seen else None


def sees_as_the_member(principal: Principal, member_id: str) -> bool:
    """What only the member sees of itself (its credit level, from the external credit
    system): ADMIN, or a session of that member minted by the platform or ADMIN. A session a
    merchant minted on its own (no member need be present) does not: the merchant would
    read it through it. Nor does a MERCHANT key, whatever session comes with it (one the
    platform minted, leaked or handed over: outside attack helper-78): it reads as its
    merchant (reading_merchant)."""
    if principal.role == ADMIN:
        return True
    grant = principal.session
    return (
        principal.role != MERCHANT
        and principal.member_id == member_id
        and grant is not None
        and grant.universal
    )


def reading_merchant(principal: Principal) -> str | None:
    """The merchant through whose eyes the caller reads a member: a MERCHANT key's own, or
    the merchant that minted the member session (it may mint one on its own, no member
    present, so the session reads no more than the merchant does); None for ADMIN and for a
    session the platform or ADMIN minted (the member itself, in the universal mall)."""
    if principal.role == MERCHANT:
        return principal.merchant_id
    grant = principal.session
    if grant is not None and not grant.universal:
        return grant.merchant_id
    return None


def can_see_all_members(principal: Principal) -> bool:
    return principal.role == ADMIN
