"""Partner reconciliation: a connected merchant's movements at its partner, with the breaks."""

from __future__ import annotations

import datetime as dt

import strawberry

from hub import reconciliation as service
from hub.enums import Role
from hub.permissions import Action
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import ReconciliationStatus
from schema.errors import forbidden
from schema.pagination import checked_date
from schema.types.merchants import Merchant, merchant_field


@strawberry.type
class ReconciliationItem:
    reference: str = strawberry.field(
        description="The hub's idempotency key of the movement at the partner."
    )
    external_ref: str
    hub_points: int | None = strawberry.field(description="null: the hub has no such movement")
    partner_points: int | None = strawberry.field(
        description="null: the partner has no such movement"
    )


@strawberry.type
class ReconciliationReport:
    business_date: dt.date
    status: ReconciliationStatus  # type: ignore[valid-type]
    matched: int
    breaks: list[ReconciliationItem]
    generated_at: dt.datetime
    merchant_id: strawberry.Private[str]
    merchant: Merchant = strawberry.field(resolver=merchant_field)

    @classmethod
    def of(cls, report: service.Report) -> ReconciliationReport:
        breaks = [from_attributes(ReconciliationItem, b) for b in report.breaks]
        return from_attributes(cls, report, breaks=breaks)


@strawberry.type
class ReconciliationQueries:
    @strawberry.field(
        description="ADMIN or FINANCE; a MERCHANT for its own programs. Asks the partner now "
        "and keeps the report; null for a merchant whose programs are all hosted."
    )
    async def reconciliation(
        self, info: Info, merchant: strawberry.ID, business_date: dt.date
    ) -> ReconciliationReport | None:
        principal = info.context.require(Action.READ_RECONCILIATION)
        checked_date(business_date, "businessDate")
        if principal.role == Role.MERCHANT and principal.merchant_id != str(merchant):
            raise forbidden("A merchant reads only its own reconciliation.")
        runtime = info.context.runtime
        report = await service.reconcile(
            runtime.db, runtime.settings, runtime.connectors, str(merchant), business_date
        )
        return ReconciliationReport.of(report) if report else None

    @strawberry.field(
        description="The last reconciliation reports of a business date (the nightly run "
        "keeps them): ADMIN or FINANCE every merchant's, a MERCHANT its own."
    )
    async def reconciliations(
        self, info: Info, business_date: dt.date
    ) -> list[ReconciliationReport]:
        principal = info.context.require(Action.READ_RECONCILIATION)
        checked_date(business_date, "businessDate")
        only = principal.merchant_id if principal.role == Role.MERCHANT else None
        reports = await info.context.read(lambda s: service.stored(s, business_date, only))
        return [ReconciliationReport.of(r) for r in reports]
