"""The conversion saga: debit, credit, and on a refused credit, reverse the debit.

State lives on the conversion row (`step`). A local step (hosted program) runs
in the caller's transaction together with the state change. A partner step is
called between transactions with an idempotency key derived from the
conversion id, so repeating it after a lost answer, a crash or a restart
applies it at most once; `advance` records each outcome and `resume_due`
(started at boot and on a timer) picks up every conversion left unfinished.
"""

from __future__ import annotations

import datetime as dt
import functools
from enum import StrEnum

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import (
    CallResult,
    Connector,
    ConnectorFactory,
    MemberAccount,
    Outcome,
    PointsCall,
    Purpose,
)
from hub import obligations
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import ConversionStatus, ErrorCode, ObligationKind
from hub.members import account_of
from hub.models import Conversion, ConversionLeg, Program
from hub.sagas import record_failure, retry_later

log = structlog.get_logger(__name__)

# A credit the partner cannot take yet is retried this many times before the
# debit is reversed and the member gets the source points back.
MAX_CREDIT_ATTEMPTS = 8


class Step(StrEnum):
    DEBIT = "DEBIT"  # the source debit is next, or its outcome is not known yet
    CREDIT = "CREDIT"  # the source is debited; the destination credit is next
    REVERSE = "REVERSE"  # the credit was refused; the debit is being undone
    DONE = "DONE"


def _key(conversion: Conversion, step: Step) -> str:
    return f"{conversion.id}:{step.value.lower()}"


async def _call(
    session: AsyncSession | None, conversion: Conversion, step: Step
) -> tuple[str, PointsCall]:
    """The program a step acts on and its call."""
    assert session is not None
    if step == Step.CREDIT:
        program, points = conversion.to_code, conversion.points_credited
    else:
        program, points = conversion.from_code, conversion.points_debited
    account = await account_of(session, conversion.member_id, program)
    assert account is not None and account.external_ref is not None
    memo = {
        Step.DEBIT: f"converted to {conversion.to_code}",
        Step.CREDIT: f"converted from {conversion.from_code}",
        Step.REVERSE: f"conversion to {conversion.to_code} reversed",
    }[step]
    return program, PointsCall(
        account=MemberAccount(conversion.member_id, program, account.external_ref),
        points=points,
        idempotency_key=_key(conversion, step),
        purpose=Purpose.CONVERSION,
        reference=conversion.id,
        memo=memo,
        undoes=_key(conversion, Step.DEBIT) if step == Step.REVERSE else None,
    )


async def _invoke(connector: Connector, step: Step, call: PointsCall) -> CallResult:
    if step == Step.DEBIT:
        return await connector.debit(call)
    if step == Step.CREDIT:
        return await connector.credit(call)
    return await connector.reverse(call)


def _fail(conversion: Conversion, status: ConversionStatus, result: CallResult, field: str) -> None:
    conversion.status = status.value
    conversion.step = Step.DONE.value
    conversion.next_attempt_at = None
    record_failure(
        conversion,
        result.code or ErrorCode.PARTNER_REJECTED,
        result.message or "The partner refused.",
        field,
    )


async def _complete(session: AsyncSession, settings: Settings, conversion: Conversion) -> None:
    """Credited: the conversion is done; each leg becomes an obligation."""
    now = utcnow()
    conversion.status = ConversionStatus.COMPLETED.value
    conversion.step = Step.DONE.value
    conversion.next_attempt_at = None
    legs = await session.scalars(
        select(ConversionLeg)
        .where(ConversionLeg.conversion_id == conversion.id)
        .order_by(ConversionLeg.seq)
    )
    for leg in legs:
        payer = await session.get(Program, leg.from_code)
        payee = await session.get(Program, leg.to_code)
        assert payer is not None and payee is not None
        await obligations.record(
            session,
            settings,
            kind=ObligationKind.CONVERSION,
            debtor=payer.merchant_id,
            creditor=payee.merchant_id,
            program_code=payee.code,
            points=leg.points_out,
            amount=obligations.amount_for(leg.points_out, payee.point_value),
            reference=conversion.id,
            occurred_at=now,
        )


async def apply_outcome(
    session: AsyncSession,
    settings: Settings,
    conversion: Conversion,
    step: Step,
    result: CallResult,
) -> None:
    """Move the saga on from a step's outcome."""
    now = utcnow()
    conversion.updated_at = now
    not_sent = result.code == ErrorCode.PARTNER_UNAVAILABLE
    if step == Step.DEBIT:
        if result.outcome == Outcome.APPLIED:
            conversion.step = Step.CREDIT.value
            conversion.debit_ref = result.partner_ref
            conversion.attempts = 0
            conversion.next_attempt_at = None
        elif result.outcome == Outcome.REJECTED:
            _fail(conversion, ConversionStatus.FAILED, result, "points")
        else:
            retry_later(conversion, now)
    elif step == Step.CREDIT:
        if result.outcome == Outcome.APPLIED:
            conversion.credit_ref = result.partner_ref
            await _complete(session, settings, conversion)
        elif result.outcome == Outcome.REJECTED and not (
            not_sent and conversion.attempts < MAX_CREDIT_ATTEMPTS
        ):
            conversion.step = Step.REVERSE.value
            record_failure(
                conversion,
                result.code or ErrorCode.PARTNER_REJECTED,
                (result.message or "The destination refused the points.")
                + " The points were returned.",
                "to",
            )
            conversion.attempts = 0
            conversion.next_attempt_at = None
        else:
            retry_later(conversion, now)
    elif result.outcome == Outcome.APPLIED:  # REVERSE
        conversion.status = ConversionStatus.REVERSED.value
        conversion.step = Step.DONE.value
        conversion.next_attempt_at = None
    else:
        retry_later(conversion, now)  # a reversal is retried until the partner takes it


async def run_local_steps(
    session: AsyncSession, settings: Settings, factory: ConnectorFactory, conversion: Conversion
) -> None:
    """Run every next step whose connector is local, in this transaction."""
    while conversion.status == ConversionStatus.PENDING.value:
        step = Step(conversion.step)
        program_code, call = await _call(session, conversion, step)
        program = await session.get(Program, program_code)
        assert program is not None
        if not factory.is_local(program):
            return
        connector = factory.for_program(program, session, conversion.actor)
        result = await _invoke(connector, step, call)
        await apply_outcome(session, settings, conversion, step, result)
        if result.outcome == Outcome.UNKNOWN:
            return


async def advance(
    db: Database, settings: Settings, factory: ConnectorFactory, conversion_id: str
) -> Conversion:
    """Take a conversion as far as its partners answer now; its state afterwards."""
    for _ in range(6):  # debit, credit, reverse, with room for a retried step
        async with db.read() as session:
            conversion = await session.get(Conversion, conversion_id)
            assert conversion is not None
            if conversion.status != ConversionStatus.PENDING.value:
                return conversion
            step = Step(conversion.step)
            program_code, call = await _call(session, conversion, step)
            program = await session.get(Program, program_code)
            assert program is not None
        result: CallResult | None = None
        if not factory.is_local(program):  # a local step left over runs in `record` below
            connector = factory.for_program(program, None, conversion.actor)
            result = await _invoke(connector, step, call)

        record = functools.partial(_record, settings, factory, conversion_id, step, result)
        if not await db.transaction(record):
            break
    async with db.read() as session:
        final = await session.get(Conversion, conversion_id)
        assert final is not None
        return final


async def _record(
    settings: Settings,
    factory: ConnectorFactory,
    conversion_id: str,
    step: Step,
    result: CallResult | None,
    session: AsyncSession,
) -> bool:
    """Store a partner step's outcome and run the local steps after it; False to wait."""
    fresh = await session.scalar(
        select(Conversion)
        .where(Conversion.id == conversion_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    if fresh.status != ConversionStatus.PENDING.value or fresh.step != step.value:
        return True  # another worker moved it on meanwhile
    if result is not None:
        await apply_outcome(session, settings, fresh, step, result)
        if result.outcome == Outcome.UNKNOWN or fresh.next_attempt_at is not None:
            return False
    await run_local_steps(session, settings, factory, fresh)
    return fresh.next_attempt_at is None


async def resume_due(db: Database, settings: Settings, factory: ConnectorFactory) -> int:
    """Advance every unfinished conversion whose next attempt is due; how many were tried."""
    now = utcnow()
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(Conversion.id)
                .where(
                    Conversion.status == ConversionStatus.PENDING.value,
                    or_(Conversion.next_attempt_at.is_(None), Conversion.next_attempt_at <= now),
                    Conversion.updated_at <= now - dt.timedelta(seconds=1),
                )
                .order_by(Conversion.created_at)
                .limit(500)
            )
        )
    for conversion_id in ids:
        try:
            await advance(db, settings, factory, conversion_id)
        except Exception:
            log.exception("conversion saga step failed", conversion=conversion_id)
    return len(ids)
