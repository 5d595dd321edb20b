"""Vouchers: a VOUCHER reward's terms, the code a confirmed redemption gives the member,
and its one use at the reward merchant's till (useVoucher).

The code is the voucher: 20 random Crockford base32 characters (100 bits, from
`secrets`), shown in groups of five. It is kept as it is, because the member reads it
again later (Redemption.voucher), but it is shown in full only to the member and ADMIN;
the merchant learns it when the member hands it over at the till. A voucher is used
once: a retry for the same order answers the first use again, any other order is
refused, and so are an order below the minimum spend, a voucher past its date, one
whose redemption is cancelled or being cancelled, and another merchant's till. A used
voucher's redemption can no longer be cancelled.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import permissions, validate
from hub.auth import Principal
from hub.db import Prepared, get_row, insert_row, utcnow
from hub.enums import RedemptionStatus, RewardKind, Role
from hub.errors import (
    BelowMinimum,
    FieldPath,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    InvalidState,
    NotFound,
)
from hub.ids import new_id
from hub.models import Merchant, Redemption, Reward, Voucher
from hub.models.base import table_of
from hub.models.mall import RewardLike
from hub.money import money

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
GROUPS, GROUP = 4, 5
MAX_MONEY = Decimal(100_000_000)
MAX_VALID_DAYS = 3650
# What people mistype for Crockford's characters; spaces and dashes are layout.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", " ": None, "-": None})
_CODE = re.compile(f"^[{ALPHABET}]{{{GROUPS * GROUP}}}$")


@dataclass(frozen=True)
class Terms:
    face_value: Decimal
    min_spend: Decimal
    valid_days: int


def checked_terms(kind: RewardKind, terms: Terms | None, field: FieldPath) -> Terms | None:
    """A VOUCHER's terms, which it must have (they are what its code is worth; without
    them a confirmed redemption would get no code): money with 2 places, a minimum spend of
    at least the face value unless 0 (a 50-off voucher on a 30 bill would pay out money),
    1-3650 days. Any other kind has none."""
    if terms is None:
        if kind == RewardKind.VOUCHER:
            raise InvalidInput(
                "A VOUCHER reward needs its terms (voucher: faceValue, and minSpend and "
                "validDays if not 0 and 90): each confirmed redemption gets a code worth "
                "them at the till.",
                field=field,
            )
        return None
    if kind != RewardKind.VOUCHER:
        raise InvalidInput(
            f"Only a VOUCHER reward carries voucher terms, not a {kind}.", field=field
        )
    validate.money(terms.face_value, (*field, "face_value"), high=MAX_MONEY, positive=True)
    validate.money(terms.min_spend, (*field, "min_spend"), high=MAX_MONEY)
    if 0 < terms.min_spend < terms.face_value:
        raise InvalidInput(
            f"minSpend ({money(terms.min_spend)}) is below faceValue "
            f"({money(terms.face_value)}): give 0 "
            "(no minimum) or at least the face value.",
            field=(*field, "min_spend"),
        )
    validate.points_in_range(terms.valid_days, (*field, "valid_days"), low=1, high=MAX_VALID_DAYS)
    return terms


def terms_of(reward: RewardLike) -> Terms | None:
    if reward.voucher_face_value is None:
        return None
    return Terms(
        face_value=reward.voucher_face_value,
        min_spend=reward.voucher_min_spend or Decimal(0),
        valid_days=reward.voucher_valid_days or 1,
    )


def set_terms(reward: Reward, terms: Terms | None) -> None:
    reward.voucher_face_value = terms.face_value if terms else None
    reward.voucher_min_spend = terms.min_spend if terms else None
    reward.voucher_valid_days = terms.valid_days if terms else None


def check_quantity(reward: Reward, quantity: int, field: FieldPath) -> None:
    """One voucher per redemption: each code is one voucher."""
    if reward.voucher_face_value is not None and quantity != 1:
        raise InvalidInput(
            f"{reward.title} is a voucher: redeem one at a time, each gets its own code.",
            field=field,
        )


def _shown(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """A time in a message, in the settlement time zone (`tz`) as the API's others."""
    return moment.astimezone(tz).isoformat(timespec="minutes")


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP))
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def canonical(code: str) -> str | None:
    """The stored form of a code as a person typed it, or None when it cannot be one."""
    raw = code.upper().translate(_READ_AS)
    if not _CODE.fullmatch(raw):
        return None
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def masked(code: str) -> str:
    """All but the last group hidden: enough to tell vouchers apart, not to use one."""
    return "-".join(["*" * GROUP] * (GROUPS - 1) + [code[-GROUP:]])


async def issue(session: AsyncSession, r: Redemption, at: dt.datetime) -> Voucher | None:
    """The voucher of a confirmed redemption of a reward with voucher terms (once)."""
    reward = await get_row(session, Reward, r.reward_id)
    assert reward is not None
    terms = terms_of(reward)
    if terms is None:
        return None
    existing = await session.scalar(select(Voucher).where(Voucher.redemption_id == r.id))
    if existing is not None:
        return existing
    # The voucher refers to the redemption, which its transaction may not have written yet
    # (it is written once its local steps ran): written first, whatever order the flush
    # would choose for two tables with no relationship between them.
    await insert_row(session, r)
    await session.flush()
    voucher = Voucher(
        id=new_id("vch"),
        code=new_code(),
        redemption_id=r.id,
        merchant_id=r.merchant_id,
        member_id=r.member_id,
        face_value=terms.face_value,
        min_spend=terms.min_spend,
        valid_until=at + dt.timedelta(days=terms.valid_days),
        created_at=at,
    )
    session.add(voucher)
    await session.flush()
    return voucher


def _not_found(code: str) -> NotFound:
    return NotFound(f"No voucher has the code {code!r}; check it with the member.", field=("code",))


async def use(
    session: AsyncSession,
    principal: Principal,
    code: str,
    order_ref: str,
    order_amount: Decimal,
    tz: dt.tzinfo = dt.UTC,
) -> Voucher:
    """Use a voucher at its merchant's till for one order, once; a retry for the same order
    returns the first use, any other order is refused."""
    stored = canonical(validate.text(code, ("code",), max_length=60))
    order_ref = validate.text(
        order_ref, ("order_ref",), max_length=validate.MAX_ORDER_REF, reference=True
    )
    validate.money(order_amount, ("order_amount",), high=MAX_MONEY, positive=True)
    found = await session.scalar(select(Voucher).where(Voucher.code == stored)) if stored else None
    if found is None:
        raise _not_found(code)
    if principal.role != Role.ADMIN and principal.merchant_id != found.merchant_id:
        merchant = await session.get(Merchant, found.merchant_id)
        name = merchant.name if merchant else found.merchant_id
        raise Forbidden(
            f"This voucher is {name}'s: it is used at {name}'s tills only.", field=("code",)
        )
    # The redemption first, as cancelRedemption locks it: a use and a cancellation wait
    # for each other and the second sees what the first did.
    redemption = await session.scalar(
        select(Redemption)
        .where(Redemption.id == found.redemption_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    voucher = await session.scalar(
        select(Voucher)
        .where(Voucher.id == found.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    assert redemption is not None and voucher is not None
    if voucher.used_at is not None:
        if voucher.order_ref != order_ref:
            raise InvalidState(
                f"This voucher was used on {_shown(voucher.used_at, tz)} "
                f"for order {voucher.order_ref!r}; a voucher is used once.",
                field=("code",),
            )
        if voucher.order_amount != order_amount:
            raise IdempotencyConflict(
                f"This voucher was used for order {order_ref!r} of "
                f"{money(voucher.order_amount or Decimal(0))}, not {money(order_amount)}.",
                field=("order_amount",),
            )
        return voucher
    if redemption.status != RedemptionStatus.CONFIRMED or redemption.cancel_step:
        raise InvalidState(
            "This voucher's redemption is cancelled or being cancelled: it can no longer be used.",
            field=("code",),
        )
    now = utcnow()
    if now >= voucher.valid_until:
        raise InvalidState(
            f"This voucher expired at {_shown(voucher.valid_until, tz)}.",
            field=("code",),
        )
    if order_amount < voucher.min_spend:
        raise BelowMinimum(
            f"This voucher needs an order of at least {money(voucher.min_spend)}; this one "
            f"is {money(order_amount)}.",
            field=("order_amount",),
        )
    voucher.used_at = now
    voucher.order_ref = order_ref
    voucher.order_amount = order_amount
    voucher.used_by = principal.actor
    await session.flush()
    return voucher


async def visible(session: AsyncSession, principal: Principal, code: str) -> Voucher | None:
    """Query.voucher: the voucher's merchant, or ADMIN; None for anyone else."""
    stored = canonical(code)
    if stored is None:
        return None
    voucher = await session.scalar(select(Voucher).where(Voucher.code == stored))
    if voucher is None:
        return None
    if principal.role == Role.ADMIN or principal.merchant_id == voucher.merchant_id:
        return voucher
    return None


_VOUCHERS = table_of(Voucher)
# A redemption's voucher's use (a cancellation's check: a Core read, no ORM instance).
_USE_OF = Prepared(
    select(_VOUCHERS.c.used_at, _VOUCHERS.c.order_ref).where(
        _VOUCHERS.c.redemption_id == bindparam("redemption", type_=_VOUCHERS.c.redemption_id.type)
    ),
    autoflush=True,
)


async def require_cancellable(session: AsyncSession, r: Redemption, field: FieldPath) -> None:
    """A used voucher's redemption is final: its value was spent at the till."""
    voucher = await _USE_OF.row(session, {"redemption": r.id})
    if voucher is not None and voucher["used_at"] is not None:
        raise InvalidState(
            f"The voucher was used for order {voucher['order_ref']!r}; a used voucher cannot "
            "be cancelled.",
            field=field,
        )


async def by_redemption(session: AsyncSession, ids: Sequence[str]) -> dict[str, Voucher]:
    rows = await session.scalars(select(Voucher).where(Voucher.redemption_id.in_(ids)))
    return {v.redemption_id: v for v in rows}


def shows_code(principal: Principal, voucher: Voucher) -> bool:
    """The code in full: the member (their session) and ADMIN. A merchant learns it at
    its till, from the member; anyone else who sees the redemption sees it masked, and so
    does a session another merchant minted (no member need be present: it reads as that
    merchant does)."""
    if principal.role == Role.ADMIN:
        return True
    minter = permissions.reading_merchant(principal)
    return principal.member_id == voucher.member_id and minter in (None, voucher.merchant_id)
