"""redeemReward and cancelRedemption: who may, what it costs, what it takes and gives back."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory
from hub import consent, eligibility, green, idempotency, permissions, validate, vouchers
from hub.auth import Principal
from hub.caches import Caches
from hub.config import Settings
from hub.db import (
    KEPT,
    Database,
    Prepared,
    adopted,
    append,
    columns_of,
    get_row,
    held_row,
    insert_row,
    labelled_join,
    new_row,
    utcnow,
    write_changes,
    write_pending,
)
from hub.enums import CancellationReason, MerchantStatus, RedemptionStatus, Role
from hub.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    InvalidState,
    MovementLimit,
    NotFound,
    RateNotConfigured,
    SlotUnavailable,
)
from hub.exchange.pricing import Priced, check_limits, stored_legs
from hub.idempotency import first_read
from hub.ids import new_id
from hub.mall import inventory, saga
from hub.mall.pricing import Line, PriceBook
from hub.mall.saga import CancelStep, Step, compensation_points, run_local
from hub.members import accounts_of, lock_member_and_accounts, locking_read
from hub.merchants import program_of
from hub.models import Member, Merchant, Program, Redemption, RedemptionLeg, Reward, Slot
from hub.models.base import new_row_values, table_of
from hub.models.mall import ListedReward
from hub.permissions import acts_for_member, require_member
from hub.validate import MAX_POINTS_PER_MOVEMENT

MAX_QUANTITY = 20


@dataclass(frozen=True)
class RedeemRequest:
    member_id: str
    reward_id: str
    pay_with: str
    slot_id: str | None
    quantity: int
    idempotency_key: str


def _line(book: PriceBook, reward: Reward, paid_with: str, quantity: int) -> Line | None:
    """What the member pays in `paid_with`; None when no rate leads to the reward's
    program."""
    try:
        return book.line(reward, paid_with, quantity)
    except MovementLimit as refused:  # said of a redemption (outside attack helper-83)
        raise MovementLimit(
            f"Paying for {quantity} of {reward.title} in {paid_with} would move more than "
            f"{MAX_POINTS_PER_MOVEMENT:,} points through one rate at once; redeem fewer "
            "at a time.",
            field=("quantity",),
        ) from refused
    except DomainError as refused:  # a leg's own limit, as a conversion would meet it
        refused.field = ("quantity",)
        raise


async def _slot(session: AsyncSession, reward: Reward, slot_id: str | None) -> Slot | None:
    if not reward.has_slots:
        if slot_id:
            raise InvalidInput(f"{reward.title} has no time slots.", field=("slot_id",))
        return None
    if not slot_id:
        raise InvalidInput(
            f"{reward.title} needs a slot: pick one from Reward.slots.", field=("slot_id",)
        )
    slot = await session.get(Slot, slot_id)
    if slot is None or slot.reward_id != reward.id:
        raise NotFound(f"No slot {slot_id!r} for this reward.", field=("slot_id",))
    if slot.starts_at <= utcnow():
        raise SlotUnavailable(
            "That slot has already started; pick a later one.",
            field=("slot_id",),
        )
    return slot


_REWARDS = table_of(Reward)
_MERCHANTS = table_of(Merchant)


@functools.cache
def _reward_with_merchant() -> Prepared:
    """A reward's row and its merchant's, one Core read: each column labelled by its table."""
    on = _MERCHANTS.c.id == _REWARDS.c.merchant_id
    return Prepared(
        labelled_join(_REWARDS, "r_", _MERCHANTS, "m_", on).where(
            _REWARDS.c.id == bindparam("reward", type_=_REWARDS.c.id.type)
        ),
        autoflush=True,
    )


_REDEMPTIONS = table_of(Redemption)


@functools.cache
def _locked_with_reward() -> Prepared:
    """A redemption's row, locked (FOR UPDATE of it alone), and its reward's, one Core read."""
    on = _REWARDS.c.id == _REDEMPTIONS.c.reward_id
    return Prepared(
        labelled_join(_REDEMPTIONS, "d_", _REWARDS, "r_", on)
        .where(_REDEMPTIONS.c.id == bindparam("redemption", type_=_REDEMPTIONS.c.id.type))
        .with_for_update(of=_REDEMPTIONS, key_share=True),
        autoflush=True,
    )


async def _lock_with_reward(session: AsyncSession, redemption_id: str) -> Redemption | None:
    """The redemption, locked and read afresh (get_row with lock), and its reward as the
    session's (its steps read it: the reward's stock is changed by an UPDATE of its own, not
    from this read), in one read."""
    statement, params = _locked_with_reward(), {"redemption": redemption_id}
    rows = await first_read(session, statement, params)
    if not rows:
        return None
    (row,) = rows
    adopted(session, Reward, columns_of(row, "r_"))
    return adopted(session, Redemption, columns_of(row, "d_"))


async def _reward_and_merchant(
    session: AsyncSession, reward_id: str
) -> tuple[Reward | None, Merchant | None]:
    """The reward and its merchant, as get_row would give each, in one read (the session's
    instances when it holds both)."""
    held = held_row(session, Reward, reward_id)
    if held is not None and not sa_inspect(held).expired:
        return held, await get_row(session, Merchant, held.merchant_id)
    row = await _reward_with_merchant().row(session, {"reward": reward_id})
    if row is None:
        return None, None
    return (
        adopted(session, Reward, columns_of(row, "r_")),
        adopted(session, Merchant, columns_of(row, "m_")),
    )


async def start(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    factory: ConnectorFactory,
    request: RedeemRequest,
) -> str:
    """Create the redemption and run its local steps, once per idempotency key; its id."""
    redemption_id = new_id("rdm")
    payer = await program_of(session, request.pay_with)

    async def effect() -> idempotency.Result:
        require_member(principal, request.member_id, ("member_id",))
        # One redemption at a time per member: the member's row is held to the end. The
        # account a hosted program is paid from is locked with it, in one read (a debit
        # here needs it locked); a member not enrolled there is read apart, to say which.
        member = None
        if payer is not None and factory.is_local(payer):
            member = await lock_member_and_accounts(session, request.member_id, [payer.code])
        if member is None:
            member = await get_row(session, Member, request.member_id, lock=True)
        if member is None:
            raise NotFound(f"No member has id {request.member_id!r}.", field=("member_id",))
        validate.points_in_range(request.quantity, ("quantity",), low=1, high=MAX_QUANTITY)
        reward, merchant = await _reward_and_merchant(session, request.reward_id)
        if reward is None:
            raise NotFound(f"No reward {request.reward_id!r}.", field=("reward_id",))
        if reward.offer_refusal:
            raise InvalidState(reward.offer_refusal, field=("reward_id",))
        if not reward.active or merchant is None or merchant.status != MerchantStatus.ACTIVE:
            raise InvalidState(f"{reward.title} is no longer offered.", field=("reward_id",))
        # Prices and early access are the member's own: their tiers, credit level, age.
        now = utcnow()
        profile = await eligibility.profile_of(session, request.member_id, now, settings.tz)
        book = await PriceBook.load(
            session, now, profile, codes=[request.pay_with], merchant_id=reward.merchant_id
        )
        eligibility.require_open(
            reward, book.program_of(reward).code, profile, now, settings.tz, ("reward_id",)
        )
        if payer is None:
            raise NotFound(f"No program has code {request.pay_with!r}.", field=("pay_with",))
        consent.require_debit(principal, payer, ("pay_with",))
        green.require_payable(payer, reward, ("pay_with",))
        vouchers.check_quantity(reward, request.quantity, ("quantity",))
        # The paying account, locked when the hub debits it here (the debit then need not
        # lock it again).
        held = await accounts_of(
            session, request.member_id, [payer.code], lock=factory.is_local(payer)
        )
        if payer.code not in held:
            raise NotFound(f"The member is not enrolled in {payer.code}.", field=("pay_with",))
        line = _line(book, reward, payer.code, request.quantity)
        kept: Caches | None = session.info.get(KEPT)
        if line is None and kept is not None and await kept.rates_changed():
            # A rate set a moment ago through another process: priced again with it.
            book = await PriceBook.load(
                session, now, profile, codes=[request.pay_with], merchant_id=reward.merchant_id
            )
            line = _line(book, reward, payer.code, request.quantity)
        if line is None:
            raise RateNotConfigured(
                f"{payer.code} cannot pay for {reward.title}: no rate leads to "
                f"{book.program_of(reward).code}.",
                field=("pay_with",),
            )
        slot = await _slot(session, reward, request.slot_id)
        both_local = factory.is_local(payer) and factory.is_local(book.program_of(reward))
        business_date = settings.business_date(now)
        # Paying through a rate is converting through it: it counts against the rate's
        # daily limit, under the member's lock as a conversion's check is.
        await check_limits(
            session,
            request.member_id,
            Priced(legs=line.legs),
            business_date,
            field=("quantity",),
        )
        redemption = new_row(
            Redemption,
            id=redemption_id,
            member_id=request.member_id,
            reward_id=reward.id,
            merchant_id=reward.merchant_id,
            slot_id=slot.id if slot else None,
            quantity=request.quantity,
            paid_with=payer.code,
            points=line.points,
            discount_points=line.discount,
            price_points=line.price_points,
            settlement_price=line.settlement,
            settlement_basis=line.basis.value,
            status=RedemptionStatus.PENDING,
            step=(Step.DEBIT if both_local else Step.HOLD).value,
            actor=principal.actor,
            attempts=0,
            # The columns' defaults, set here too: what its local steps announce is read
            # before the row is written (a REDEMPTION_CONFIRMED said null: helper-79).
            refunded_points=0,
            compensation_points=0,
            created_at=now,
            updated_at=now,
        )
        # Written once its local steps have run (an INSERT with what they made of it, not an
        # INSERT and an UPDATE): the steps read with autoflush off, and whatever refers to it
        # (a voucher, the appended legs) is inserted after it (insert_row).
        legs = stored_legs(
            RedemptionLeg,
            line.legs,
            request.member_id,
            business_date,
            redemption_id=redemption.id,
        )
        # Its legs are appended: what the daily limits count, read by no step.
        await append(session, table_of(RedemptionLeg), [new_row_values(leg) for leg in legs])
        await run_local(session, settings, factory, redemption, strict=True)
        # Last, after everything else is written (the row itself with the appended rows,
        # one statement), so that the reward's row, which every redemption of it contends
        # for, is locked for the commit alone (a refusal here rolls back the points taken
        # above with everything else).
        await insert_row(session, redemption, appended=True)
        await write_pending(session)
        await inventory.take(session, reward, slot, request.quantity)
        return {"redemption_id": redemption.id}

    # The member and the paying account locked with the key's claim (the effect's read)
    # when the hub debits it here, for a caller who may act for the member.
    first = None
    if (
        payer is not None
        and factory.is_local(payer)
        and acts_for_member(principal, request.member_id)
    ):
        first = locking_read(request.member_id, [payer.code])
    result = await idempotency.once_for(
        session,
        principal,
        "redeemReward",
        request,
        effect,
        known={"redemption_id": redemption_id},
        first=first,
    )
    return str(result["redemption_id"])


@dataclass(frozen=True)
class CancelRequest:
    redemption_id: str
    reason: CancellationReason
    idempotency_key: str


async def _touches(session: AsyncSession, r: Redemption, merchant_id: str) -> bool:
    """Whether the redemption is of this merchant's reward or paid with its points."""
    if merchant_id == r.merchant_id:
        return True
    payer = await program_of(session, r.paid_with)  # only when the reward is another's
    return payer is not None and payer.merchant_id == merchant_id


async def _may_cancel(
    session: AsyncSession, principal: Principal, r: Redemption, reason: CancellationReason
) -> None:
    field = ("redemption_id",)
    if principal.role == Role.ADMIN:
        return
    if principal.role == Role.STOREFRONT and principal.member_id == r.member_id:
        minter = permissions.reading_merchant(principal)
        if minter is not None and not await _touches(session, r, minter):
            # A session a merchant minted (no member need be present) cancels only what
            # that merchant sees of hers.
            raise NotFound(f"No redemption {r.id!r} is visible to this key.", field=field)
        if minter is not None and minter != r.merchant_id:
            # It is that merchant's word, not hers: it cancels the merchant's own rewards'
            # redemptions (as the merchant's key could), not another's sale it paid for.
            raise Forbidden(
                "A session a merchant minted cancels only that merchant's rewards; the member "
                "cancels this one through a session the platform minted (the universal mall).",
                field=field,
            )
        if reason != CancellationReason.MEMBER_REQUEST:
            raise Forbidden("A member cancels with reason MEMBER_REQUEST.", field=("reason",))
        return
    if principal.role == Role.MERCHANT and principal.merchant_id == r.merchant_id:
        return
    merchant = principal.merchant_id if principal.role == Role.MERCHANT else None
    if merchant is not None and await _touches(session, r, merchant):
        # It sees the redemption (its points paid for it), so "not visible" would be false.
        raise Forbidden(
            f"Only {r.merchant_id}, whose reward it is, cancels this redemption (or the "
            "member, or ADMIN); the paying merchant does not.",
            field=field,
        )
    raise NotFound(f"No redemption {r.id!r} is visible to this key.", field=field)


async def start_cancel(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    factory: ConnectorFactory,
    request: CancelRequest,
    *,
    booking_already_cancelled: bool = False,
) -> str:
    """Start cancelling a confirmed redemption; the local steps run now."""

    async def effect() -> idempotency.Result:
        r = await _lock_with_reward(session, request.redemption_id)
        if r is None:
            raise NotFound(f"No redemption {request.redemption_id!r}.", field=("redemption_id",))
        await _may_cancel(session, principal, r, request.reason)
        if r.status == RedemptionStatus.CANCELLED:
            raise InvalidState("The redemption is already cancelled.", field=("redemption_id",))
        if r.status != RedemptionStatus.CONFIRMED or r.cancel_step is not None:
            raise InvalidState(
                "The redemption is already being cancelled; its status shows when that ends."
                if r.cancel_step
                else f"The redemption is {r.status.lower()}; only a confirmed redemption can "
                "be cancelled.",
                field=("redemption_id",),
            )
        await vouchers.require_cancellable(session, r, ("redemption_id",))
        if request.reason == CancellationReason.MEMBER_REQUEST and r.slot_id:
            slot = await session.get(Slot, r.slot_id)
            if slot is not None and slot.starts_at <= utcnow():
                raise InvalidState(
                    "The slot has started: the cancellation policy no longer allows it.",
                    field=("redemption_id",),
                )
        payer = await program_of(session, r.paid_with)
        if payer is not None and factory.is_local(payer):
            # The refund's account, locked now as the ledger would (then not read twice),
            # and before the redemption changes (a read flushes what changed).
            await accounts_of(session, r.member_id, [payer.code], lock=True)
        # Compensation belongs to this cancellation alone: none for a member's request.
        r.compensation_points = 0
        if request.reason != CancellationReason.MEMBER_REQUEST:
            merchant = await session.get(Merchant, r.merchant_id)
            assert merchant is not None
            r.compensation_points = compensation_points(r.points, merchant.compensation_percent)
        r.cancel_reason = request.reason.value
        r.cancel_step = (
            CancelStep.REFUND if booking_already_cancelled else CancelStep.CANCEL_BOOKING
        ).value
        r.failure = None
        r.updated_at = utcnow()
        await run_local(session, settings, factory, r)
        return {"redemption_id": r.id}

    result = await idempotency.once_for(
        session,
        principal,
        "cancelRedemption",
        request,
        effect,
        known={"redemption_id": request.redemption_id},  # what it cancels is what it names
        # The redemption locked and read with its reward with the key's claim (the effect's
        # first read, whoever asks: who may cancel is known from the redemption).
        first=(_locked_with_reward(), {"redemption": request.redemption_id}),
    )
    return str(result["redemption_id"])


@dataclass(frozen=True)
class Redeemed:
    redemption: Redemption
    # The reward as the redemption's transaction left it (its stock taken), for the answer
    # to show without reading it again; None when the request was a replay.
    reward: ListedReward | None


async def redeem(
    db: Database,
    principal: Principal,
    settings: Settings,
    factory: ConnectorFactory,
    request: RedeemRequest,
) -> Redeemed:
    """Redeem a reward: start it, then take it as far as the partners answer now.

    Raises a DomainError when it is refused up front (nothing then happened); a
    redemption a partner refused is FAILED with its failure, one a partner has not
    answered yet is PENDING and the saga finishes it later.
    """

    async def work(session: AsyncSession) -> tuple[Redemption, bool, Reward | None]:
        rid = await start(session, principal, settings, factory, request)
        replay = idempotency.replayed(session)
        reward = None if replay else held_row(session, Reward, request.reward_id)
        return await _row(session, rid), replay, reward

    made, replay, reward = await idempotency.transaction(db, work)
    # The reward as the commit left it (its stock taken as the transaction's last write).
    listed = ListedReward.of_instance(reward) if reward is not None else None
    return Redeemed(await _onwards(db, settings, factory, made, replay), listed)


async def cancel(
    db: Database,
    principal: Principal,
    settings: Settings,
    factory: ConnectorFactory,
    request: CancelRequest,
    *,
    booking_already_cancelled: bool = False,
) -> Redemption:
    """Cancel a confirmed redemption as far as the partners answer now (see `redeem`)."""

    async def work(session: AsyncSession) -> tuple[Redemption, bool]:
        rid = await start_cancel(
            session,
            principal,
            settings,
            factory,
            request,
            booking_already_cancelled=booking_already_cancelled,
        )
        return await _row(session, rid), idempotency.replayed(session)

    return await _onwards(db, settings, factory, *await idempotency.transaction(db, work))


async def _row(session: AsyncSession, rid: str) -> Redemption:
    """The redemption as its transaction leaves it (the one it made or changed is in the
    session already, written now if it was not yet; a replay's is read)."""
    held = held_row(session, Redemption, rid)
    if held is not None:
        await write_changes(session, held)  # one UPDATE, without the unit of work
    await session.flush()  # whatever else changed
    r = await get_row(session, Redemption, rid)
    assert r is not None
    return r


async def _onwards(
    db: Database, settings: Settings, factory: ConnectorFactory, r: Redemption, replay: bool
) -> Redemption:
    """A redemption its transaction finished (all its steps were local) as it is, and so is
    one a retried request is answered with (idempotency.replayed); one with a partner's
    step to come, as far as the partners answer now."""
    if replay or saga.at_rest(r):
        return r
    return await saga.advance(db, settings, factory, r.id)


async def visible_redemption(
    session: AsyncSession, principal: Principal, redemption_id: str
) -> Redemption | None:
    """ADMIN and FINANCE see any; the member its own; the reward's and the payer's merchants."""
    return await permissions.visible_activity(
        session, principal, Redemption, redemption_id, _touches
    )


async def by_fulfillment(session: AsyncSession, merchant_id: str, ref: str) -> Redemption | None:
    return await session.scalar(
        select(Redemption).where(
            Redemption.merchant_id == merchant_id, Redemption.fulfillment_ref == ref
        )
    )


async def of_member(
    session: AsyncSession,
    principal: Principal,
    member_id: str,
    first: int,
    before: str | None,
) -> tuple[list[Redemption], bool]:
    """A member's redemptions, newest first, as `visible_redemption` lets the caller see them:
    ADMIN any member's; the member in the universal mall all of its own; a merchant, or a
    session it minted, only those of its rewards or paid with its programs. Failed ones
    too: a redemption answered PENDING that then failed stays where the member saw it,
    with why (a refusal before anything was kept leaves no redemption at all)."""
    if principal.role != Role.ADMIN and principal.member_id != member_id:
        return [], False
    query = (
        select(Redemption)
        .where(Redemption.member_id == member_id)
        .order_by(Redemption.id.desc())
        .limit(first + 1)
    )
    merchant = permissions.reading_merchant(principal)  # a merchant, or a session it minted
    if merchant is not None:
        own = select(Program.code).where(Program.merchant_id == merchant)
        query = query.where(or_(Redemption.merchant_id == merchant, Redemption.paid_with.in_(own)))
    if before:
        query = query.where(Redemption.id < before)
    rows = list(await session.scalars(query))
    return rows[:first], len(rows) > first
