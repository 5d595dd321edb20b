"""The conversion saga: debit, credit, and on a refused credit, reverse the debit.

State lives on the conversion row (`step`); hub.sagas runs the steps: a local
step (hosted program) in the caller's transaction together with the state
change, a partner step between transactions with an idempotency key derived
from the conversion id, so that repeating it after a lost answer, a crash or a
restart applies it at most once.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import (
    CallResult,
    ConnectorFactory,
    MemberAccount,
    Outcome,
    PointsCall,
    Purpose,
)
from hub import obligations, sagas
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import ConversionStatus, ErrorCode, ObligationKind, WebhookEvent
from hub.exchange import pricing
from hub.members import account_of
from hub.merchants import program_of
from hub.models import Conversion
from hub.sagas import (
    Next,
    Result,
    being_returned,
    record_failure,
    refusal,
    retry_later,
    say_returned,
)
from hub.webhooks import announce

# A credit the partner cannot take yet is retried this many times before the
# debit is reversed and the member gets the source points back.
MAX_CREDIT_ATTEMPTS = 8


class Step(StrEnum):
    DEBIT = "DEBIT"  # the source debit is next, or its outcome is not known yet
    CREDIT = "CREDIT"  # the source is debited; the destination credit is next
    REVERSE = "REVERSE"  # the credit was refused; the debit is being undone
    DONE = "DONE"


def points_moved(conversion: Conversion) -> tuple[int, int]:
    """The points a conversion takes and gives, as a receipt or a reconciliation reads them:
    a FAILED or REVERSED one moved nothing in the end, and one whose debit is on its way back
    will credit nothing."""
    if conversion.status in (ConversionStatus.FAILED, ConversionStatus.REVERSED):
        return 0, 0
    if conversion.step == Step.REVERSE:
        return conversion.points_debited, 0
    return conversion.points_debited, conversion.points_credited


def _key(conversion: Conversion, step: Step) -> str:
    return f"{conversion.id}:{step.value.lower()}"


async def next_step(session: AsyncSession, conversion: Conversion) -> Next | None:
    """The program the next step acts on and its call; None when the conversion is done."""
    if conversion.status != ConversionStatus.PENDING:
        return None
    step = Step(conversion.step)
    if step == Step.CREDIT:
        code, points = conversion.to_code, conversion.points_credited
    else:
        code, points = conversion.from_code, conversion.points_debited
    program = await program_of(session, code)
    account = await account_of(session, conversion.member_id, code)
    assert program is not None and account is not None and account.external_ref is not None
    memo = {
        Step.DEBIT: f"converted to {conversion.to_code}",
        Step.CREDIT: f"converted from {conversion.from_code}",
        Step.REVERSE: f"conversion to {conversion.to_code} reversed",
    }[step]
    call = PointsCall(
        account=MemberAccount(conversion.member_id, code, account.external_ref),
        points=points,
        idempotency_key=_key(conversion, step),
        purpose=Purpose.CONVERSION,
        reference=conversion.id,
        memo=memo,
        undoes=_key(conversion, Step.DEBIT) if step == Step.REVERSE else None,
    )
    if step == Step.DEBIT:
        return Next(program, step, lambda connector: connector.debit(call))
    if step == Step.CREDIT:
        return Next(program, step, lambda connector: connector.credit(call))
    return Next(program, step, lambda connector: connector.reverse(call))


def _fail(conversion: Conversion, status: ConversionStatus, result: Result, field: str) -> None:
    conversion.status = status
    conversion.step = Step.DONE.value
    conversion.next_attempt_at = None
    message = result.message or "The partner refused."
    record_failure(conversion, refusal(result), message, field, said=result.said)


async def _complete(session: AsyncSession, settings: Settings, conversion: Conversion) -> None:
    """Credited: the conversion is done; each leg becomes an obligation."""
    now = utcnow()
    conversion.status = ConversionStatus.COMPLETED
    conversion.step = Step.DONE.value
    conversion.next_attempt_at = None
    await announce.conversion(session, WebhookEvent.CONVERSION_COMPLETED, conversion)
    for leg in await pricing.conversion_legs(session, conversion.id):
        payer = await program_of(session, leg.from_code)
        payee = await program_of(session, leg.to_code)
        assert payer is not None and payee is not None
        await obligations.record(
            session,
            settings,
            ObligationKind.CONVERSION,
            obligations.Line.worth(payee, leg.points_out),
            debtor=payer.merchant_id,
            creditor=payee.merchant_id,
            reference=conversion.id,
            occurred_at=now,
        )


async def apply_outcome(
    session: AsyncSession,
    settings: Settings,
    conversion: Conversion,
    step: str,
    result: Result,
) -> None:
    """Move the saga on from a step's outcome."""
    now = utcnow()
    conversion.updated_at = now
    not_sent = result.code == ErrorCode.PARTNER_UNAVAILABLE
    if step == Step.DEBIT:
        if result.outcome == Outcome.APPLIED:
            conversion.step = Step.CREDIT.value
            conversion.debit_ref = _ref(result)
            conversion.attempts = 0
            conversion.next_attempt_at = None
        elif result.outcome == Outcome.REJECTED and not (not_sent and conversion.attempts > 0):
            # (A call not sent after an attempt whose outcome was unknown says nothing about
            # that attempt: it is asked again below, with the same key.)
            # Too few points is the amount's fault; any other refusal is the source's.
            short = result.code == ErrorCode.INSUFFICIENT_POINTS
            _fail(conversion, ConversionStatus.FAILED, result, "points" if short else "from")
            await announce.conversion(session, WebhookEvent.CONVERSION_FAILED, conversion)
        else:
            retry_later(conversion, now)
    elif step == Step.CREDIT:
        if result.outcome == Outcome.APPLIED:
            conversion.credit_ref = _ref(result)
            await _complete(session, settings, conversion)
        elif result.outcome == Outcome.REJECTED and not (
            not_sent and conversion.attempts < MAX_CREDIT_ATTEMPTS
        ):
            conversion.step = Step.REVERSE.value
            reason = result.message or "The destination refused the points."
            said = result.said
            record_failure(conversion, refusal(result), being_returned(reason), "to", said=said)
            conversion.attempts = 0
            conversion.next_attempt_at = None
        else:
            retry_later(conversion, now)
    elif result.outcome == Outcome.APPLIED:  # REVERSE
        say_returned(conversion)
        conversion.status = ConversionStatus.REVERSED
        conversion.step = Step.DONE.value
        conversion.next_attempt_at = None
        await announce.conversion(session, WebhookEvent.CONVERSION_FAILED, conversion)
    else:
        retry_later(conversion, now)  # a reversal is retried until the partner takes it


def _ref(result: Result) -> str | None:
    return result.partner_ref if isinstance(result, CallResult) else None


def _unfinished() -> object:
    return Conversion.status == ConversionStatus.PENDING


SAGA = sagas.Saga[Conversion](
    name="conversion",
    model=Conversion,
    next_step=next_step,
    apply=apply_outcome,
    unfinished=_unfinished,
)


async def run_local(
    session: AsyncSession, settings: Settings, factory: ConnectorFactory, conversion: Conversion
) -> None:
    """Run every next step whose connector is local, in this transaction. The steps write
    the ledger with statements of their own; the conversion's row, changed by each step, is
    written once when the transaction flushes (a new one's INSERT carries its state after
    the steps; one UPDATE, not one per step, for one resumed)."""
    with session.no_autoflush:
        await sagas.run_local(session, settings, factory, SAGA, conversion)


async def advance(
    db: Database, settings: Settings, factory: ConnectorFactory, conversion_id: str
) -> Conversion:
    """Take a conversion as far as its partners answer now; its state afterwards."""
    return await sagas.advance(db, settings, factory, SAGA, conversion_id)


async def resume_due(db: Database, settings: Settings, factory: ConnectorFactory) -> int:
    """Advance every unfinished conversion whose next attempt is due; how many were tried."""
    return await sagas.resume_due(db, settings, factory, SAGA)
