"""SettlementBatch, NetPosition, PaymentInstruction, Statement and its lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Protocol

import strawberry

from hub import models
from hub.enums import ObligationKind as DomainObligationKind
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import BatchStatus, ObligationKind, StatementStatus
from schema.formatting import money
from schema.pagination import Connection, decode_int_cursor, page_size
from schema.types.merchants import (
    Merchant,
    Program,
    load_merchant,
    merchant_field,
    program_field,
)
from settlement import statements as service
from settlement.disputes import CarriedAdjustment


class _KeepsCounterparty(Protocol):
    counterparty_id: str


async def _counterparty(root: strawberry.Parent[_KeepsCounterparty], info: Info) -> Merchant:
    """The `counterparty` of a line, a total or an adjustment, kept by id."""
    return await load_merchant(info, root.counterparty_id)


@strawberry.type
class NetPosition:
    receivable: Decimal
    payable: Decimal
    fees: Decimal
    net: Decimal = strawberry.field(description="receivable - payable - fees")
    merchant_id: strawberry.Private[str]
    merchant: Merchant = strawberry.field(resolver=merchant_field)

    @classmethod
    def from_row(cls, row: models.NetPosition) -> NetPosition:
        return cls(
            receivable=money(row.receivable),
            payable=money(row.payable),
            fees=money(row.fees),
            net=money(row.net),
            merchant_id=row.merchant_id,
        )


@strawberry.type
class PaymentInstruction:
    amount: Decimal
    row: strawberry.Private[models.PaymentInstruction]

    @strawberry.field(name="from")
    async def from_(self, info: Info) -> Merchant:
        return await load_merchant(info, self.row.from_merchant)

    @strawberry.field
    async def to(self, info: Info) -> Merchant:
        return await load_merchant(info, self.row.to_merchant)


@strawberry.type
class CounterpartyTotal:
    receivable: Decimal
    payable: Decimal
    counterparty_id: strawberry.Private[str]
    counterparty: Merchant = strawberry.field(resolver=_counterparty)


@strawberry.type
class StatementLine:
    id: strawberry.ID
    kind: ObligationKind  # type: ignore[valid-type]
    reference: str = strawberry.field(description="The conversion or redemption id.")
    points: int
    amount: Decimal = strawberry.field(description="Signed: + receivable, - payable.")
    occurred_at: dt.datetime
    counterparty_id: strawberry.Private[str]
    program_code: strawberry.Private[str]
    counterparty: Merchant = strawberry.field(resolver=_counterparty)
    program: Program = strawberry.field(resolver=program_field)

    @classmethod
    def of(cls, line: service.Line) -> StatementLine:
        """A line as its statement shows it: the obligation, signed for the statement's merchant."""
        return from_attributes(
            cls,
            line.obligation,
            id=strawberry.ID(str(line.obligation.id)),
            kind=DomainObligationKind(line.obligation.kind),
            amount=money(line.amount),
            counterparty_id=line.counterparty,
        )


@strawberry.type(description="An amount finance accepted on a disputed statement.")
class Adjustment:
    id: strawberry.ID
    amount: Decimal = strawberry.field(description="Signed, for the disputed statement's merchant.")
    reason: str
    counterparty_id: strawberry.Private[str]
    batch_id: strawberry.Private[str | None]
    counterparty: Merchant = strawberry.field(resolver=_counterparty)

    @classmethod
    def from_row(cls, carried: CarriedAdjustment) -> Adjustment:
        row = carried.adjustment
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(str(row.id)),
            amount=money(row.amount),
            batch_id=carried.batch_id,
        )

    @strawberry.field(description="The batch that settles it; null until that batch runs.")
    async def carried_to(self, info: Info) -> SettlementBatch | None:
        if self.batch_id is None:
            return None
        row = await info.context.loaders.batch.load(self.batch_id)
        return SettlementBatch.from_row(row) if row else None


@strawberry.type(description="One merchant's statement of one nightly batch.")
class Statement:
    id: strawberry.ID
    business_date: dt.date
    status: StatementStatus  # type: ignore[valid-type]
    receivable: Decimal
    payable: Decimal
    fees: Decimal
    net: Decimal
    dispute_reason: str | None
    approved_at: dt.datetime | None
    paid_reference: str | None
    resolution: str | None = strawberry.field(description="Finance's answer to a dispute.")
    row: strawberry.Private[models.Statement]

    @classmethod
    def from_row(cls, row: models.Statement) -> Statement:
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(row.id),
            receivable=money(row.receivable),
            payable=money(row.payable),
            fees=money(row.fees),
            net=money(row.net),
            row=row,
        )

    @strawberry.field(
        description="Written by resolving its dispute; each settles in a later batch."
    )
    async def adjustments(self, info: Info) -> list[Adjustment]:
        rows = await info.context.loaders.adjustments.load(self.row.id) or []
        return [Adjustment.from_row(r) for r in rows]

    @strawberry.field
    async def batch(self, info: Info) -> SettlementBatch:
        row = await info.context.loaders.batch.load(self.row.batch_id)
        assert row is not None
        return SettlementBatch.from_row(row)

    @strawberry.field
    async def merchant(self, info: Info) -> Merchant:
        return await load_merchant(info, self.row.merchant_id)

    @strawberry.field
    async def counterparties(self, info: Info) -> list[CounterpartyTotal]:
        rows = await info.context.loaders.counterparties.load(self.row.id) or []
        return [
            CounterpartyTotal(
                receivable=money(r.receivable),
                payable=money(r.payable),
                counterparty_id=r.counterparty_id,
            )
            for r in rows
        ]

    @strawberry.field
    async def lines(
        self, info: Info, first: int | None = 50, after: str | None = strawberry.UNSET
    ) -> Connection[StatementLine]:
        size = page_size(first)
        start = decode_int_cursor("line", after or None)
        found, more = await info.context.read(lambda s: service.lines(s, self.row, size, start))
        return Connection.of(
            "line", [(StatementLine.of(line), line.obligation.id) for line in found], more
        )

    @strawberry.field(description="GET with the same credentials; text/csv.")
    def csv_url(self) -> str:
        return f"/statements/{self.row.id}.csv"


@strawberry.type(
    description="The settlement of one business date. A merchant, reaching it through its "
    "own statement, sees only its part: its position, the transfers it makes or receives, "
    "its statement, and totals of the obligations it is a party to."
)
class SettlementBatch:
    id: strawberry.ID
    business_date: dt.date
    status: BatchStatus  # type: ignore[valid-type]
    currency: str
    created_at: dt.datetime
    row: strawberry.Private[models.SettlementBatch]

    @classmethod
    def from_row(cls, row: models.SettlementBatch) -> SettlementBatch:
        return from_attributes(cls, row, id=strawberry.ID(row.id), row=row)

    async def _totals(self, info: Info) -> tuple[int, Decimal]:
        principal = info.context.principal
        if service.sees_whole_batch(principal):
            return self.row.obligation_count, self.row.gross_amount
        key = (self.row.id, principal.merchant_id or "")
        found = await info.context.loaders.merchant_totals.load(key)
        return found or (0, Decimal(0))

    @strawberry.field
    async def obligation_count(self, info: Info) -> int:
        return (await self._totals(info))[0]

    @strawberry.field
    async def gross_amount(self, info: Info) -> Decimal:
        return money((await self._totals(info))[1])

    @strawberry.field
    async def positions(self, info: Info) -> list[NetPosition]:
        rows = await info.context.loaders.positions.load(self.row.id) or []
        visible = service.visible_positions(info.context.principal, rows)
        return [NetPosition.from_row(r) for r in visible]

    @strawberry.field(description="Transfers through the platform's clearing account.")
    async def payments(self, info: Info) -> list[PaymentInstruction]:
        rows = await info.context.loaders.payments.load(self.row.id) or []
        visible = service.visible_payments(info.context.principal, rows)
        return [PaymentInstruction(amount=money(r.amount), row=r) for r in visible]

    @strawberry.field
    async def statements(self, info: Info) -> list[Statement]:
        rows = await info.context.loaders.statements.load(self.row.id) or []
        visible = service.visible_statements(info.context.principal, rows)
        return [Statement.from_row(r) for r in visible]
