"""runSettlement and the statement workflow; batch and statement queries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from hub.enums import DisputeResolution as DomainDisputeResolution
from hub.enums import StatementStatus as DomainStatementStatus
from hub.models import Statement as StatementRow
from hub.permissions import Action
from schema.context import Info
from schema.enums import DisputeResolution, StatementStatus
from schema.errors import ARGUMENTS, UserError, attempt
from schema.pagination import Connection, checked_date, decode_cursor, page_size
from schema.types.settlement import SettlementBatch, Statement
from settlement import disputes, runs
from settlement import statements as service


@strawberry.type
class RunSettlementPayload:
    batch: SettlementBatch | None
    user_errors: list[UserError]


@strawberry.type
class StatementPayload:
    statement: Statement | None
    user_errors: list[UserError]


def _statement(row: StatementRow | None, errors: list[UserError]) -> StatementPayload:
    return StatementPayload(statement=Statement.from_row(row) if row else None, user_errors=errors)


@strawberry.input
class AdjustmentInput:
    counterparty: strawberry.ID
    amount: Decimal = strawberry.field(description="Signed for the disputed statement's merchant.")
    reason: str


@strawberry.input
class ResolveDisputeInput:
    statement_id: strawberry.ID
    resolution: DisputeResolution  # type: ignore[valid-type]
    note: str
    adjustments: list[AdjustmentInput] | None = strawberry.field(
        default_factory=list, description="Only with ACCEPTED."
    )


@strawberry.type
class SettlementMutations:
    @strawberry.mutation(description="ADMIN or FINANCE: settle a business date (once).")
    async def run_settlement(self, info: Info, business_date: dt.date) -> RunSettlementPayload:
        principal = info.context.require(Action.RUN_SETTLEMENT)
        runtime = info.context.runtime
        row, errors = await attempt(
            runs.run_asked(runtime.db, runtime.settings, business_date, principal.actor),
            under=ARGUMENTS,
        )
        return RunSettlementPayload(
            batch=SettlementBatch.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(description="FINANCE: approve a draft or resolved statement.")
    async def approve_statement(
        self, info: Info, id: strawberry.ID, note: str | None = strawberry.UNSET
    ) -> StatementPayload:
        principal = info.context.require(Action.APPROVE_STATEMENT)
        row, errors = await info.context.write(
            lambda s: service.approve(s, principal, str(id), note or None), under=ARGUMENTS
        )
        return _statement(row, errors)

    @strawberry.mutation(description="FINANCE or the statement's merchant: dispute it.")
    async def dispute_statement(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> StatementPayload:
        principal = info.context.require(Action.DISPUTE_STATEMENT)
        row, errors = await info.context.write(
            lambda s: service.dispute(s, principal, str(id), reason), under=ARGUMENTS
        )
        return _statement(row, errors)

    @strawberry.mutation(
        description="FINANCE: answer a dispute; ACCEPTED adjustments settle in the next batch."
    )
    async def resolve_dispute(self, info: Info, input: ResolveDisputeInput) -> StatementPayload:
        principal = info.context.require(Action.RESOLVE_DISPUTE)
        runtime = info.context.runtime
        requests = [
            disputes.AdjustmentRequest(str(a.counterparty), a.amount, a.reason)
            for a in input.adjustments or []
        ]
        row, errors = await info.context.write(
            lambda s: disputes.resolve(
                s,
                runtime.settings,
                principal,
                str(input.statement_id),
                DomainDisputeResolution(input.resolution),
                input.note,
                requests,
            )
        )
        return _statement(row, errors)

    @strawberry.mutation(description="FINANCE: record the payment of an approved statement.")
    async def mark_statement_paid(
        self, info: Info, id: strawberry.ID, payment_reference: str
    ) -> StatementPayload:
        principal = info.context.require(Action.MARK_STATEMENT_PAID)
        row, errors = await info.context.write(
            lambda s: service.mark_paid(s, principal, str(id), payment_reference), under=ARGUMENTS
        )
        return _statement(row, errors)


@strawberry.type
class SettlementQueries:
    @strawberry.field(description="ADMIN or FINANCE: the batch of a business date.")
    async def settlement_batch(self, info: Info, business_date: dt.date) -> SettlementBatch | None:
        info.context.require(Action.READ_SETTLEMENT)
        checked_date(business_date, "businessDate")
        row = await info.context.read(lambda s: service.batch_of(s, business_date))
        return SettlementBatch.from_row(row) if row else None

    @strawberry.field(description="ADMIN or FINANCE: batches, newest business date first.")
    async def settlement_batches(
        self, info: Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[SettlementBatch]:
        info.context.require(Action.READ_SETTLEMENT)
        size = page_size(first)
        before = decode_cursor("batch", after or None)
        rows, more = await info.context.read(lambda s: service.batches(s, size, before))
        return Connection.of(
            "batch",
            [(SettlementBatch.from_row(r), r.business_date.isoformat()) for r in rows],
            more,
        )

    @strawberry.field(description="A statement: FINANCE and ADMIN any, a merchant its own.")
    async def statement(self, info: Info, id: strawberry.ID) -> Statement | None:
        principal = info.context.require(Action.READ_STATEMENTS)
        row = await info.context.read(lambda s: service.visible_statement(s, principal, str(id)))
        return Statement.from_row(row) if row else None

    @strawberry.field(description="Statements, newest first; a merchant sees only its own.")
    async def statements(
        self,
        info: Info,
        merchant: strawberry.ID | None = strawberry.UNSET,
        status: StatementStatus | None = strawberry.UNSET,  # type: ignore[valid-type]
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Statement]:
        principal = info.context.require(Action.READ_STATEMENTS)
        size = page_size(first)
        before = decode_cursor("statement", after or None)
        merchant_id = str(merchant) if merchant else None
        state = DomainStatementStatus(status) if status else None
        rows, more = await info.context.read(
            lambda s: service.statements_page(s, principal, merchant_id, state, size, before)
        )
        return Connection.of("statement", [(Statement.from_row(r), r.id) for r in rows], more)
