"""Bulk accrual imports: importAccruals, importJob."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import strawberry

from hub.enums import ErrorCode as DomainErrorCode
from hub.imports import service
from hub.models import ImportJob as JobRow
from hub.permissions import Action
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import ErrorCode, ImportStatus
from schema.errors import UserError, attempt, bad_argument
from schema.pagination import page_size
from schema.types.merchants import Program, program_field

MAX_ERRORS_PAGE = 1000


@strawberry.type(description="A line that did not import, with the code accruePoints gives.")
class ImportError:
    line: int = strawberry.field(
        description="The line in the file (a CSV's header is line 1), or the row's position "
        "in importAccruals' rows, from 1."
    )
    code: ErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type(description="Purchases imported as accruals, applied in chunks.")
class ImportJob:
    id: strawberry.ID
    status: ImportStatus  # type: ignore[valid-type]
    total: int = strawberry.field(description="Lines received (all of them once staged).")
    processed: int
    accepted: int
    rejected: int
    points: int = strawberry.field(description="Points credited so far.")
    failure: str | None = strawberry.field(description="Why a FAILED job stopped.")
    created_at: dt.datetime
    finished_at: dt.datetime | None
    program_code: strawberry.Private[str]
    program: Program = strawberry.field(resolver=program_field)

    @classmethod
    def from_row(cls, row: JobRow) -> ImportJob:
        return from_attributes(cls, row, id=strawberry.ID(row.id))

    @strawberry.field(description="Rejected lines in line order (at most 1000 at a time).")
    async def errors(
        self,
        info: Info,
        first: int | None = 50,
        after_line: Annotated[
            int | None, strawberry.argument(description="Only lines after this one.")
        ] = strawberry.UNSET,
    ) -> list[ImportError]:
        size = page_size(first, MAX_ERRORS_PAGE)
        after = after_line or None
        if after is not None and after < 0:
            raise bad_argument("afterLine must be 0 or more.")
        rows = await info.context.read(lambda s: service.rejections(s, str(self.id), size, after))
        return [
            ImportError(line=r.line, code=DomainErrorCode(r.code), message=r.message) for r in rows
        ]


@strawberry.input
class AccrualRowInput:
    member_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Or externalRef."
    )
    external_ref: str | None = strawberry.UNSET
    order_ref: str
    amount: Decimal
    occurred_at: dt.datetime | None = strawberry.UNSET


@strawberry.input
class ImportAccrualsInput:
    program: strawberry.ID
    rows: list[AccrualRowInput] = strawberry.field(description="Up to 10,000 rows.")


@strawberry.type
class ImportAccrualsPayload:
    job: ImportJob | None
    user_errors: list[UserError]


@strawberry.type
class ImportMutations:
    @strawberry.mutation(
        description="MERCHANT (own program) or ADMIN: up to 10,000 purchases as accruals, "
        "each with accruePoints' rules; a bad row is rejected, the rest imports. Larger "
        "files: POST /imports/accruals."
    )
    async def import_accruals(
        self, info: Info, input: ImportAccrualsInput
    ) -> ImportAccrualsPayload:
        principal = info.context.require(Action.IMPORT_ACCRUALS)
        runtime = info.context.runtime
        worker = runtime.imports
        assert worker is not None, "the runtime has an import worker"
        raws: list[dict[str, object]] = [
            {
                "memberId": str(r.member_id) if r.member_id else None,
                "externalRef": r.external_ref or None,
                "orderRef": r.order_ref,
                "amount": r.amount,
                "occurredAt": r.occurred_at or None,
            }
            for r in input.rows
        ]
        job, errors = await attempt(
            service.from_rows(
                runtime.db, runtime.settings, principal, str(input.program), raws, worker.holder
            )
        )
        if job is None:
            return ImportAccrualsPayload(job=None, user_errors=errors)
        worker.kick(job.id)
        return ImportAccrualsPayload(job=ImportJob.from_row(job), user_errors=[])


@strawberry.type
class ImportQueries:
    @strawberry.field(description="ADMIN, or the MERCHANT whose program the job imports into.")
    async def import_job(self, info: Info, id: strawberry.ID) -> ImportJob | None:
        principal = info.context.require(Action.READ_IMPORTS)
        row = await info.context.read(lambda s: service.visible_job(s, principal, str(id)))
        return ImportJob.from_row(row) if row else None
