"""Statements: who may read them, their lines, and the workflow DRAFT -> APPROVED or
DISPUTED -> PAID, with who did what and when."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, literal, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hub import validate
from hub.auth import Principal
from hub.db import row_by, rows_by, utcnow
from hub.enums import ObligationKind, Role, StatementStatus
from hub.errors import Forbidden, InvalidState, NotFound
from hub.models import (
    NetPosition,
    Obligation,
    PaymentInstruction,
    SettlementBatch,
    Statement,
    StatementCounterparty,
    StatementEvent,
)
from hub.obligation_rules import in_batch, signed_gross
from hub.permissions import sees_money_of

DRAFT, APPROVED, DISPUTED, PAID = (
    StatementStatus.DRAFT,
    StatementStatus.APPROVED,
    StatementStatus.DISPUTED,
    StatementStatus.PAID,
)
# Which statuses each action may start from.
ALLOWED = {
    # A DISPUTED statement leaves only through resolveDispute (settlement.disputes), which
    # records the answer; approving over a dispute erased the merchant's reason unanswered.
    "APPROVE": {DRAFT},
    "DISPUTE": {DRAFT, APPROVED},
    "PAY": {APPROVED},
}


def can_read(principal: Principal, statement: Statement) -> bool:
    return sees_money_of(principal, statement.merchant_id)


# A batch, by whatever path it is reached (a statement's batch, a workflow payload), shows
# ADMIN and FINANCE everything; a merchant its own position, the transfers it makes or
# receives, its own statement (with its lines and counterparty totals) and totals of the
# obligations it is a party to. settlementBatch(es) refuse a merchant outright.


def sees_whole_batch(principal: Principal) -> bool:
    return principal.role in (Role.ADMIN, Role.FINANCE)


def visible_positions(principal: Principal, rows: Sequence[NetPosition]) -> list[NetPosition]:
    return [r for r in rows if sees_money_of(principal, r.merchant_id)]


def visible_payments(
    principal: Principal, rows: Sequence[PaymentInstruction]
) -> list[PaymentInstruction]:
    return [
        r
        for r in rows
        if sees_money_of(principal, r.from_merchant) or sees_money_of(principal, r.to_merchant)
    ]


def visible_statements(principal: Principal, rows: Sequence[Statement]) -> list[Statement]:
    return [r for r in rows if can_read(principal, r)]


async def merchant_totals(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """Per (batch, merchant): how many of the batch's obligations (fees aside) the merchant
    is a party to, and their gross amount (refunds taken back), as the batch's own totals
    count them."""
    dialect = session.get_bind().dialect.name
    batches = await rows_by(
        session, SettlementBatch, SettlementBatch.id, list({b for b, _ in keys}), SettlementBatch.id
    )
    merchant_ids = list({m for _, m in keys})
    not_fee = Obligation.kind != ObligationKind.FEE
    parts = [
        select(
            literal(batch.id).label("batch_id"),
            party.label("merchant_id"),
            signed_gross().label("amount"),
        ).where(in_batch(dialect, batch), not_fee)
        for found in batches.values()
        for batch in found
        for party in (Obligation.creditor_id, Obligation.debtor_id)
    ]
    if not parts:
        return {key: (0, Decimal(0)) for key in keys}
    sides = union_all(*parts).subquery()
    rows = await session.execute(
        select(sides.c.batch_id, sides.c.merchant_id, func.count(), func.sum(sides.c.amount))
        .where(sides.c.merchant_id.in_(merchant_ids))
        .group_by(sides.c.batch_id, sides.c.merchant_id)
    )
    found = {(b, m): (int(n), Decimal(total)) for b, m, n, total in rows}
    return {key: found.get(key, (0, Decimal(0))) for key in keys}


async def visible_statement(
    session: AsyncSession, principal: Principal, statement_id: str
) -> Statement | None:
    statement = await session.get(Statement, statement_id)
    return statement if statement is not None and can_read(principal, statement) else None


async def _transition(
    session: AsyncSession,
    principal: Principal,
    statement_id: str,
    action: str,
    target: StatementStatus,
    values: dict[str, object],
    note: str | None,
) -> Statement:
    statement = await visible_statement(session, principal, statement_id)
    if statement is None:
        raise NotFound(f"No statement {statement_id!r} is visible to this key.", field=("id",))
    allowed = ALLOWED[action]
    changed = await session.execute(
        update(Statement)
        .where(Statement.id == statement_id, Statement.status.in_(allowed))
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        froms = " or ".join(sorted(s.value for s in allowed))
        raise InvalidState(
            f"The statement is {statement.status}; {action.lower()} needs it {froms}.",
            field=("id",),
        )
    session.add(
        StatementEvent(statement_id=statement_id, action=action, actor=principal.actor, note=note)
    )
    await session.flush()
    await session.refresh(statement)
    return statement


async def approve(
    session: AsyncSession, principal: Principal, statement_id: str, note: str | None
) -> Statement:
    """FINANCE approves a draft (a disputed statement is answered with resolveDispute)."""
    if note is not None:
        note = validate.text(note, ("note",), max_length=2000, required=False) or None
    return await _transition(
        session,
        principal,
        statement_id,
        "APPROVE",
        APPROVED,
        {"approved_at": utcnow()},
        note,
    )


async def dispute(
    session: AsyncSession, principal: Principal, statement_id: str, reason: str
) -> Statement:
    """FINANCE or the statement's merchant disputes it, with a reason, before it is paid."""
    reason = validate.text(reason, ("reason",), max_length=2000)
    statement = await visible_statement(session, principal, statement_id)
    if statement is not None and principal.role == Role.ADMIN:
        raise Forbidden("Disputes come from FINANCE or the statement's merchant.", field=("id",))
    return await _transition(
        session, principal, statement_id, "DISPUTE", DISPUTED, {"dispute_reason": reason}, reason
    )


async def mark_paid(
    session: AsyncSession, principal: Principal, statement_id: str, reference: str
) -> Statement:
    """FINANCE records the payment of an approved statement."""
    reference = validate.text(reference, ("payment_reference",), max_length=120)
    return await _transition(
        session,
        principal,
        statement_id,
        "PAY",
        PAID,
        {"paid_at": utcnow(), "paid_reference": reference},
        reference,
    )


@dataclass(frozen=True)
class Line:
    obligation: Obligation
    counterparty: str
    amount: Decimal  # signed for the statement's merchant


async def lines(
    session: AsyncSession, statement: Statement, first: int, after: int | None
) -> tuple[list[Line], bool]:
    """The statement's obligations in id order, signed: + receivable, - payable."""
    batch = await session.get(SettlementBatch, statement.batch_id)
    assert batch is not None
    query = (
        select(Obligation)
        .where(
            in_batch(session.get_bind().dialect.name, batch),
            or_(
                Obligation.debtor_id == statement.merchant_id,
                Obligation.creditor_id == statement.merchant_id,
            ),
        )
        .order_by(Obligation.id)
        .limit(first + 1)
    )
    if after is not None:
        query = query.where(Obligation.id > after)
    rows = list(await session.scalars(query))
    found = [
        Line(
            obligation=o,
            counterparty=o.debtor_id if o.creditor_id == statement.merchant_id else o.creditor_id,
            amount=o.amount if o.creditor_id == statement.merchant_id else -o.amount,
        )
        for o in rows[:first]
    ]
    return found, len(rows) > first


Written = TypeVar("Written", NetPosition, PaymentInstruction)


async def _written(
    session: AsyncSession, model: type[Written], batch_id: str, order: InstrumentedAttribute[Any]
) -> list[Written]:
    """What a batch's run wrote to `model`, in `order`."""
    return list(
        await session.scalars(select(model).where(model.batch_id == batch_id).order_by(order))
    )


async def positions(session: AsyncSession, batch_id: str) -> list[NetPosition]:
    return await _written(session, NetPosition, batch_id, NetPosition.merchant_id)


async def payments(session: AsyncSession, batch_id: str) -> list[PaymentInstruction]:
    return await _written(session, PaymentInstruction, batch_id, PaymentInstruction.id)


async def batch_of(session: AsyncSession, business_date: dt.date) -> SettlementBatch | None:
    return await session.scalar(
        select(SettlementBatch).where(SettlementBatch.business_date == business_date)
    )


async def batches(
    session: AsyncSession, first: int, before: str | None
) -> tuple[list[SettlementBatch], bool]:
    """Newest business date first."""
    query = select(SettlementBatch).order_by(SettlementBatch.business_date.desc()).limit(first + 1)
    if before:
        query = query.where(SettlementBatch.business_date < dt.date.fromisoformat(before))
    rows = list(await session.scalars(query))
    return rows[:first], len(rows) > first


async def statements_page(
    session: AsyncSession,
    principal: Principal,
    merchant_id: str | None,
    status: StatementStatus | None,
    first: int,
    before: str | None,
) -> tuple[list[Statement], bool]:
    """Statements, newest first, of one merchant or all; a MERCHANT gets its own whatever
    merchant it names."""
    if principal.role == Role.MERCHANT:
        merchant_id = principal.merchant_id
    # Statement ids begin with their batch's id, which sorts by time: newest first.
    query = select(Statement).order_by(Statement.id.desc())
    if merchant_id:
        query = query.where(Statement.merchant_id == merchant_id)
    if status:
        query = query.where(Statement.status == status)
    if before:
        query = query.where(Statement.id < before)
    rows = list(await session.scalars(query.limit(first + 1)))
    return rows[:first], len(rows) > first


async def batches_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, SettlementBatch]:
    return await row_by(session, SettlementBatch, SettlementBatch.id, ids)


async def counterparties_by_statement(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, list[StatementCounterparty]]:
    return await rows_by(
        session,
        StatementCounterparty,
        StatementCounterparty.statement_id,
        ids,
        StatementCounterparty.counterparty_id,
    )


async def positions_by_batch(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, list[NetPosition]]:
    return await rows_by(session, NetPosition, NetPosition.batch_id, ids, NetPosition.merchant_id)


async def payments_by_batch(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, list[PaymentInstruction]]:
    return await rows_by(
        session, PaymentInstruction, PaymentInstruction.batch_id, ids, PaymentInstruction.id
    )


async def statements_by_batch(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, list[Statement]]:
    return await rows_by(session, Statement, Statement.batch_id, ids, Statement.merchant_id)
