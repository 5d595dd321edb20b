"""Disputes that end in money: finance answers a DISPUTED statement.

As in the IATA Clearing House (billing memo, then rejection or acceptance), a closed
batch is never edited. An accepted dispute writes ADJUSTMENT obligations between the
statement's merchant and a counterparty of that statement; they are dated on the first
business date that no batch has closed yet, so the next batch settles them and both
merchants' next statements show them. Either way the statement returns to APPROVED with
the resolution recorded, and can be paid.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import validate
from hub.auth import Principal
from hub.config import Settings
from hub.db import rows_by, utcnow
from hub.enums import DisputeResolution, ObligationKind, StatementStatus
from hub.errors import InvalidInput, InvalidState, NotFound
from hub.merchants import primary_program
from hub.models import (
    Obligation,
    SettlementBatch,
    Statement,
    StatementAdjustment,
    StatementCounterparty,
    StatementEvent,
)
from hub.obligation_rules import batch_of
from settlement.statements import visible_statement

MAX_ADJUSTMENT = Decimal("100000000")  # one adjustment; beyond it is a typo
MAX_ADJUSTMENTS = 50


@dataclass(frozen=True)
class AdjustmentRequest:
    counterparty_id: str
    amount: Decimal  # signed for the disputed statement's merchant: + it receives
    reason: str


async def adjustment_date(session: AsyncSession, settings: Settings) -> dt.date:
    """The first business date from today on that no batch has settled yet."""
    today = settings.business_date(utcnow())
    latest: dt.date | None = await session.scalar(select(func.max(SettlementBatch.business_date)))
    if latest is not None and latest >= today:
        return latest + dt.timedelta(days=1)
    return today


def _checked(
    resolution: DisputeResolution,
    adjustments: Sequence[AdjustmentRequest],
    counterparties: set[str],
) -> list[AdjustmentRequest]:
    if resolution == DisputeResolution.REJECTED and adjustments:
        raise InvalidInput(
            "A rejected dispute keeps the amounts: send adjustments only with ACCEPTED.",
            field=("adjustments",),
        )
    if len(adjustments) > MAX_ADJUSTMENTS:
        raise InvalidInput(
            f"At most {MAX_ADJUSTMENTS} adjustments per dispute.", field=("adjustments",)
        )
    checked = []
    for index, item in enumerate(adjustments):
        at = ("adjustments", str(index))
        if item.counterparty_id not in counterparties:
            raise InvalidInput(
                f"{item.counterparty_id!r} is not a counterparty of this statement; "
                "adjust only amounts the statement shows.",
                field=(*at, "counterparty"),
            )
        amount = validate.decimal_in_range(
            item.amount, (*at, "amount"), low=-MAX_ADJUSTMENT, high=MAX_ADJUSTMENT, places=2
        )
        if amount == 0:
            raise InvalidInput("An adjustment of 0.00 changes nothing.", field=(*at, "amount"))
        reason = validate.text(item.reason, (*at, "reason"), max_length=2000)
        checked.append(AdjustmentRequest(item.counterparty_id, amount, reason))
    return checked


async def resolve(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    statement_id: str,
    resolution: DisputeResolution,
    note: str,
    adjustments: Sequence[AdjustmentRequest],
) -> Statement:
    """FINANCE answers a dispute; the statement returns to APPROVED with the resolution."""
    note = validate.text(note, ("note",), max_length=2000)
    statement = await visible_statement(session, principal, statement_id)
    if statement is None:
        raise NotFound(
            f"No statement {statement_id!r} is visible to this key.",
            field=("statement_id",),
        )
    if statement.status != StatementStatus.DISPUTED:
        raise InvalidState(
            f"The statement is {statement.status}; only a DISPUTED statement can be resolved.",
            field=("statement_id",),
        )
    counterparties = set(
        await session.scalars(
            select(StatementCounterparty.counterparty_id).where(
                StatementCounterparty.statement_id == statement.id
            )
        )
    )
    checked = _checked(resolution, adjustments, counterparties)
    # Claim the transition first: of two finance staff resolving at once, one wins.
    changed = await session.execute(
        update(Statement)
        .where(Statement.id == statement.id, Statement.status == StatementStatus.DISPUTED)
        .values(
            status=StatementStatus.APPROVED,
            approved_at=utcnow(),
            resolution=f"{resolution.value}: {note}",
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidState(
            "The statement was resolved by someone else a moment ago.",
            field=("statement_id",),
        )
    if checked:
        await _write_adjustments(session, settings, statement, checked)
    session.add(
        StatementEvent(
            statement_id=statement.id,
            action=f"RESOLVE_{resolution.value}",
            actor=principal.actor,
            note=note,
        )
    )
    await session.flush()
    await session.refresh(statement)
    return statement


async def _write_adjustments(
    session: AsyncSession,
    settings: Settings,
    statement: Statement,
    adjustments: Sequence[AdjustmentRequest],
) -> None:
    primary = await primary_program(session, statement.merchant_id)
    program = primary.code if primary else None
    assert program is not None, "a statement's merchant runs a program"
    business_date = await adjustment_date(session, settings)
    now = utcnow()
    for item in adjustments:
        receives = item.amount > 0
        obligation = Obligation(
            kind=ObligationKind.ADJUSTMENT,
            debtor_id=item.counterparty_id if receives else statement.merchant_id,
            creditor_id=statement.merchant_id if receives else item.counterparty_id,
            program_code=program,
            points=0,
            amount=abs(item.amount),
            reference=statement.id,
            occurred_at=now,
            business_date=business_date,
        )
        session.add(obligation)
        await session.flush()
        session.add(
            StatementAdjustment(
                statement_id=statement.id,
                counterparty_id=item.counterparty_id,
                amount=item.amount,
                reason=item.reason,
                obligation_id=obligation.id,
            )
        )


@dataclass(frozen=True)
class CarriedAdjustment:
    adjustment: StatementAdjustment
    batch_id: str | None  # the batch that settles it; None until that batch runs


async def adjustments_by_statement(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, list[CarriedAdjustment]]:
    """Each statement's adjustments with the batch that carried each (one query)."""
    found = await rows_by(
        session, StatementAdjustment, StatementAdjustment.statement_id, ids, StatementAdjustment.id
    )
    obligation_ids = [a.obligation_id for rows in found.values() for a in rows]
    batches: dict[int, str | None] = {}
    if obligation_ids:
        batches = {
            oid: batch
            for oid, batch in await session.execute(
                select(Obligation.id, batch_of(session.get_bind().dialect.name)).where(
                    Obligation.id.in_(obligation_ids)
                )
            )
        }
    return {
        key: [CarriedAdjustment(a, batches.get(a.obligation_id)) for a in rows]
        for key, rows in found.items()
    }
