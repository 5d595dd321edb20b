"""The redemption saga: hold the points, book the reward, capture; or release.

And the cancellation that follows a confirmed redemption: cancel the booking,
refund the points, credit compensation when the merchant cancelled. Each step's
state is on the redemption row; hub.sagas runs the steps: local ones (hosted
programs) in the current transaction, partner ones between transactions with
idempotency keys derived from the redemption id, so that repeating any of them
is safe.

A compensating step (release, un-book, refund, compensation) is never
abandoned: until the partner applies it, it is tried again with backoff, and
the redemption shows PENDING meanwhile. An unreachable partner
(PARTNER_UNAVAILABLE) is never taken for a refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

import structlog
from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import (
    BookingRequest,
    ConnectorFactory,
    MemberAccount,
    Outcome,
    PointsCall,
    Purpose,
    unsaid,
)
from hub import obligations, sagas, vouchers
from hub.config import Settings
from hub.db import Database, get_row, utcnow
from hub.enums import ConnectorKind, ErrorCode, ObligationKind, RedemptionStatus, WebhookEvent
from hub.errors import DomainError
from hub.mall import inventory
from hub.members import account_of
from hub.merchants import primary_program, program_of
from hub.models import Member, Program, Redemption, Reward, Slot
from hub.sagas import (
    Next,
    Result,
    being_credited,
    being_returned,
    record_failure,
    refusal,
    retry_later,
    say_returned,
)
from hub.webhooks import announce

log = structlog.get_logger(__name__)


class Step(StrEnum):
    DEBIT = "DEBIT"  # both sides hosted: one debit, no hold
    HOLD = "HOLD"
    BOOK = "BOOK"
    CAPTURE = "CAPTURE"
    RELEASE = "RELEASE"  # the booking failed: give the points back
    UNBOOK = "UNBOOK"  # the points could not be captured: undo the booking
    DONE = "DONE"


class CancelStep(StrEnum):
    CANCEL_BOOKING = "CANCEL_BOOKING"
    REFUND = "REFUND"
    COMPENSATE = "COMPENSATE"
    DONE = "DONE"


# Steps that undo what was done: retried until the partner applies them.
COMPENSATING = frozenset({"RELEASE", "UNBOOK", "REFUND", "COMPENSATE"})


# A cancellation's give-backs. While the paying program's partner refuses one (an account
# frozen; not an unreachable partner, which is no answer), the redemption's failure says
# why, in the partner's words and the hub's, as a failed booking's does until its points
# are back; the step is tried again until the partner applies it. Each: the reason when the
# partner gives none, and the failure's message made of a reason.
GIVEN_BACK: dict[str, tuple[str, Callable[[str], str]]] = {
    "REFUND": ("The partner refused the refund.", being_returned),
    "COMPENSATE": ("The partner refused the compensation.", being_credited),
}


def key(redemption: Redemption, name: str) -> str:
    return f"{redemption.id}:{name.lower()}"


def taken_key(redemption: Redemption) -> str:
    """The key of the call that took the member's points (a hold or a direct debit)."""
    return key(redemption, "debit" if redemption.hold_ref is None else "hold")


@dataclass(frozen=True)
class _Parties:
    """What a redemption's next step needs to know: the reward (and its slot), the program
    that pays and the reward's owner's, and the member's account that pays (a booking reads
    the member's name and account at the owner itself: _member_name, _at_owner)."""

    reward: Reward
    payer: Program
    owner: Program
    pay: MemberAccount
    slot: Slot | None


async def _context(session: AsyncSession, r: Redemption) -> _Parties:
    reward = await get_row(session, Reward, r.reward_id)
    payer = await program_of(session, r.paid_with)
    owner = await primary_program(session, r.merchant_id)
    pay_account = await account_of(session, r.member_id, r.paid_with)
    assert reward and payer and owner and pay_account and pay_account.external_ref
    return _Parties(
        reward=reward,
        payer=payer,
        owner=owner,
        pay=MemberAccount(r.member_id, payer.code, pay_account.external_ref),
        slot=await session.get(Slot, r.slot_id) if r.slot_id else None,
    )


async def _member_name(session: AsyncSession, r: Redemption) -> str:
    """The name a booking is made in (read only for a booking: no other step names it)."""
    member = await get_row(session, Member, r.member_id)
    assert member is not None
    return member.display_name


async def _at_owner(session: AsyncSession, r: Redemption, owner: Program) -> MemberAccount | None:
    """The member's account at the reward's owner, if it has one (what a booking names).
    None without a read for a hosted owner: its booking is a voucher code the hub issues,
    for no account (connectors.hosted)."""
    if owner.connector == ConnectorKind.HOSTED:
        return None
    account = await account_of(session, r.member_id, owner.code)
    if account is None or account.external_ref is None:
        return None
    return MemberAccount(r.member_id, owner.code, account.external_ref)


def _points(
    c: _Parties,
    r: Redemption,
    name: str,
    points: int,
    purpose: Purpose,
    undoes: str | None = None,
) -> PointsCall:
    return PointsCall(
        account=c.pay,
        points=points,
        idempotency_key=key(r, name),
        purpose=purpose,
        reference=r.id,
        memo=c.reward.title,
        undoes=undoes,
    )


def compensation_points(points: int, percent: Decimal) -> int:
    """compensationPercent of the points paid, rounded down."""
    return int((Decimal(points) * percent / 100).to_integral_value(rounding=ROUND_FLOOR))


def at_rest(r: Redemption) -> bool:
    """Whether the redemption has no step left to take: neither being made nor cancelled
    (the status callers see is not PENDING)."""
    return status_of(r) != RedemptionStatus.PENDING


async def next_step(session: AsyncSession, r: Redemption) -> Next | None:
    """The program whose connector acts next, the step's name, and the call; None when done."""
    if at_rest(r):
        return None
    c = await _context(session, r)
    if r.status == RedemptionStatus.PENDING:
        step = Step(r.step)
        if step == Step.DEBIT:
            call = _points(c, r, "debit", r.points, Purpose.REDEMPTION)
            return Next(c.payer, step, lambda conn: conn.debit(call))
        if step == Step.HOLD:
            call = _points(c, r, "hold", r.points, Purpose.REDEMPTION)
            return Next(c.payer, step, lambda conn: conn.hold(call))
        if step == Step.BOOK:
            request = BookingRequest(
                reward_ref=c.reward.ref,
                slot_ref=c.slot.ref if c.slot else None,
                quantity=r.quantity,
                account=await _at_owner(session, r, c.owner),
                member_name=await _member_name(session, r),
                idempotency_key=key(r, "book"),
                reference=r.id,
            )
            return Next(c.owner, step, lambda conn: conn.book(request))
        if step == Step.CAPTURE:
            call = _points(c, r, "capture", r.points, Purpose.REDEMPTION, undoes=r.hold_ref)
            return Next(c.payer, step, lambda conn: conn.capture(call))
        if step == Step.RELEASE:
            call = _points(c, r, "release", r.points, Purpose.REDEMPTION, undoes=r.hold_ref)
            return Next(c.payer, step, lambda conn: conn.release(call))
        if step == Step.UNBOOK:
            ref = r.fulfillment_ref or ""
            return Next(c.owner, step, lambda conn: conn.cancel(ref, "HOLD_LOST", key(r, "unbook")))
        return None
    if r.status == RedemptionStatus.CONFIRMED and r.cancel_step:
        cancel = CancelStep(r.cancel_step)
        if cancel == CancelStep.CANCEL_BOOKING:
            ref = r.fulfillment_ref or ""
            reason = r.cancel_reason or "MEMBER_REQUEST"
            return Next(c.owner, cancel, lambda conn: conn.cancel(ref, reason, key(r, "cancel")))
        if cancel == CancelStep.REFUND:
            call = _points(c, r, "refund", r.points, Purpose.REFUND, undoes=taken_key(r))
            return Next(c.payer, cancel, lambda conn: conn.reverse(call))
        if cancel == CancelStep.COMPENSATE:
            call = _points(c, r, "compensate", r.compensation_points, Purpose.COMPENSATION)
            return Next(c.payer, cancel, lambda conn: conn.credit(call))
    return None


def _give_back_refused(r: Redemption, step: str, result: Result) -> None:
    """A cancellation's refund or compensation refused (it is tried again): the redemption
    says why. Whoever refused, its words are the member's alone: a partner's, or the hub's
    own for a hosted program (a full balance, which they give). The failure is about the
    cancellation, the request that asked for the give-back (as a merchant's refusal of it
    is), not the redemption's payWith (outside attack helper-80)."""
    default, telling = GIVEN_BACK[step]
    told = telling(result.message or default)
    said = result.said or result.message
    record_failure(r, refusal(result), told, "redemption_id", said=said)


def _failure(r: Redemption, result: Result, field: str, default: str) -> None:
    record_failure(r, refusal(result), result.message or default, field, said=result.said)


async def _owes(
    session: AsyncSession, settings: Settings, r: Redemption, payer: Program, kind: ObligationKind
) -> None:
    """Record the redemption's obligation of `kind`: for REDEMPTION the paying program's
    merchant owes the reward's merchant the line at its settlement price; a REFUND owes it
    back; COMPENSATION owes the payer's merchant the compensation points at their worth.
    The line is named in the reward's own points, as a conversion leg names what arrives on
    its payee's side; one priced before migration 0012 named what the member paid."""
    line = obligations.Line(r.paid_with, r.points, r.settlement_price)
    if kind == ObligationKind.COMPENSATION:  # `payer` is the program of `paid_with`
        line = obligations.Line.worth(payer, r.compensation_points)
    elif r.price_points is not None:
        owner = await primary_program(session, r.merchant_id)
        assert owner is not None
        line = obligations.Line(owner.code, r.price_points, r.settlement_price)
    debtor, creditor = payer.merchant_id, r.merchant_id
    if kind != ObligationKind.REDEMPTION:  # a refund or a compensation flows the other way
        debtor, creditor = creditor, debtor
    await obligations.record(
        session,
        settings,
        kind,
        line,
        debtor=debtor,
        creditor=creditor,
        reference=r.id,
        occurred_at=utcnow(),
    )


def _retried(r: Redemption, step: str, result: Result) -> bool:
    """Whether an outcome leaves the step to be tried again rather than ending it."""
    if result.outcome == Outcome.UNKNOWN:
        return True
    if result.outcome == Outcome.APPLIED:
        return False
    if step in COMPENSATING:
        return True  # only the partner's applying it ends a compensating step
    if r.attempts > 0 and result.code == ErrorCode.PARTNER_UNAVAILABLE:
        # An earlier attempt of this step may have applied (its outcome was unknown): a
        # call that was not even sent now says nothing about that one. Ask again, with the
        # same key, until the partner answers.
        return True
    # Not sent (connection refused, breaker open) is no answer to a cancellation.
    return step == CancelStep.CANCEL_BOOKING and result.code == ErrorCode.PARTNER_UNAVAILABLE


async def apply(
    session: AsyncSession, settings: Settings, r: Redemption, step: str, result: Result
) -> None:
    """Move the redemption on from a step's outcome."""
    now = utcnow()
    r.updated_at = now
    if _retried(r, step, result):
        if step in COMPENSATING and result.outcome == Outcome.REJECTED:
            log.warning(
                "compensating step not applied; tried again later",
                redemption=r.id,
                step=step,
                code=result.code,
                reason=unsaid(result.message, result.said),
            )
            if step in GIVEN_BACK and result.code != ErrorCode.PARTNER_UNAVAILABLE:
                _give_back_refused(r, step, result)
        retry_later(r, now)
        return
    ok = result.outcome == Outcome.APPLIED
    r.attempts, r.next_attempt_at = 0, None
    payer = await program_of(session, r.paid_with)
    assert payer is not None
    if step in (Step.DEBIT, Step.HOLD):
        if ok:
            if step == Step.HOLD:
                r.hold_ref = getattr(result, "partner_ref", None)
            r.step = Step.BOOK.value
        else:
            _failure(r, result, "pay_with", "The points could not be taken.")
            await _failed(session, r)
            await inventory.give_back(session, r.reward_id, r.slot_id, r.quantity)
    elif step == Step.BOOK:
        if ok:
            r.fulfillment_ref = getattr(result, "booking_ref", None)
            r.step = Step.CAPTURE.value if r.hold_ref else Step.DONE.value
            if r.step == Step.DONE.value:
                await _confirm(session, settings, r, payer)
        else:
            # Only a partner's booking can fail, and points for a partner's reward are
            # always held first: release the hold, and say so until it is released.
            told = being_returned(result.message or "The merchant could not book it.")
            record_failure(r, refusal(result), told, "reward_id", said=result.said)
            r.step = Step.RELEASE.value
            await inventory.give_back(session, r.reward_id, r.slot_id, r.quantity)
    elif step == Step.CAPTURE:
        if ok:
            r.step = Step.DONE.value
            await _confirm(session, settings, r, payer)
        else:
            r.step = Step.UNBOOK.value
    elif step in (Step.RELEASE, Step.UNBOOK):
        say_returned(r)
        if step == Step.UNBOOK:
            _failure(r, result, "pay_with", "The held points were released before the booking.")
        await _failed(session, r)
    elif step == CancelStep.CANCEL_BOOKING:
        if ok:
            r.cancel_step = CancelStep.REFUND.value
        else:
            # The merchant refused: the redemption stays confirmed, and nothing of this
            # cancellation (its reason, its compensation) stays behind for a later one.
            r.cancel_step, r.cancel_reason, r.compensation_points = None, None, 0
            _failure(r, result, "redemption_id", "The merchant refused the cancellation.")
            await announce.redemption(session, WebhookEvent.REDEMPTION_CANCELLATION_REFUSED, r)
    elif step == CancelStep.REFUND:
        r.refunded_points = r.points
        r.failure = None  # a refusal of the refund before it landed
        r.cancel_step = (
            CancelStep.COMPENSATE.value if r.compensation_points else CancelStep.DONE.value
        )
        if r.cancel_step == CancelStep.DONE.value:
            await _cancelled(session, settings, r, payer)
    elif step == CancelStep.COMPENSATE:
        r.cancel_step = CancelStep.DONE.value
        await _cancelled(session, settings, r, payer)


def status_of(r: Redemption) -> RedemptionStatus:
    """The status callers see: PENDING while a cancellation is under way."""
    if _cancelling(r):
        return RedemptionStatus.PENDING
    return RedemptionStatus(r.status)


def compensation_applied(r: Redemption) -> int:
    """The compensation callers see: what was credited, none while it is still owed (as
    the refund shows only once it is applied)."""
    return 0 if _cancelling(r) else r.compensation_points


def _cancelling(r: Redemption) -> bool:
    return r.cancel_step is not None and r.cancel_step != CancelStep.DONE.value


async def _confirm(
    session: AsyncSession, settings: Settings, r: Redemption, payer: Program
) -> None:
    r.status = RedemptionStatus.CONFIRMED
    r.failure = None
    await vouchers.issue(session, r, utcnow())
    await announce.redemption(session, WebhookEvent.REDEMPTION_CONFIRMED, r)
    await _owes(session, settings, r, payer, ObligationKind.REDEMPTION)


async def _failed(session: AsyncSession, r: Redemption) -> None:
    """Nothing taken, or all of it given back: the redemption ends FAILED, with its failure."""
    r.status, r.step = RedemptionStatus.FAILED, Step.DONE.value
    await announce.redemption(session, WebhookEvent.REDEMPTION_FAILED, r)


async def _cancelled(
    session: AsyncSession, settings: Settings, r: Redemption, payer: Program
) -> None:
    """Refunded (and compensated): the reward's merchant pays back, and pays the extra."""
    r.status = RedemptionStatus.CANCELLED
    r.cancelled_at = utcnow()
    r.failure = None
    await announce.redemption(session, WebhookEvent.REDEMPTION_CANCELLED, r)
    await inventory.give_back(session, r.reward_id, r.slot_id, r.quantity)
    await _owes(session, settings, r, payer, ObligationKind.REFUND)
    if r.compensation_points:
        await _owes(session, settings, r, payer, ObligationKind.COMPENSATION)


def _refuse_untaken(step: str, result: Result) -> None:
    """A local refusal to take the points raises: the redemption leaves nothing behind."""
    if step in (Step.DEBIT, Step.HOLD) and result.outcome == Outcome.REJECTED:
        raise DomainError(
            result.message or "The points could not be taken.",
            field=("pay_with",),
            code=refusal(result),
        )


def _unfinished() -> object:
    return or_(
        Redemption.status == RedemptionStatus.PENDING,
        Redemption.cancel_step.in_([s.value for s in CancelStep if s != CancelStep.DONE]),
    )


SAGA = sagas.Saga[Redemption](
    name="redemption",
    model=Redemption,
    next_step=next_step,
    apply=apply,
    unfinished=_unfinished,
    # A cancellation is confirmed with the booking's reference, a capture with the hold's
    # (by the hub's key of it, as kept for a hold before migration 0027).
    names_earlier={
        CancelStep.CANCEL_BOOKING.value: Step.BOOK.value,
        Step.UNBOOK.value: Step.BOOK.value,
        Step.CAPTURE.value: Step.HOLD.value,
    },
)


async def run_local(
    session: AsyncSession,
    settings: Settings,
    factory: ConnectorFactory,
    r: Redemption,
    *,
    strict: bool = False,
) -> None:
    """Run every next step whose connector is local, in this transaction.

    With `strict`, a local refusal of the first step raises instead of being stored,
    so that a redemption the member cannot pay for leaves nothing behind.
    """
    check = _refuse_untaken if strict else None
    # The row, changed by each step, is written once when the transaction flushes (one
    # UPDATE, not one before each step's reads), as a conversion's is.
    with session.no_autoflush:
        await sagas.run_local(session, settings, factory, SAGA, r, check=check)


async def advance(
    db: Database, settings: Settings, factory: ConnectorFactory, rid: str
) -> Redemption:
    """Take a redemption (or its cancellation) as far as the partners answer now."""
    return await sagas.advance(db, settings, factory, SAGA, rid)


async def resume_due(db: Database, settings: Settings, factory: ConnectorFactory) -> int:
    """Advance every unfinished redemption or cancellation that is due."""
    return await sagas.resume_due(db, settings, factory, SAGA)
