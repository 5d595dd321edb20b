"""Import jobs: opened for a program, rows staged as they arrive, sealed when all are in.

The process that receives a file holds the job's lease (under its worker's name) while it
stages, renewing it with every batch, and its worker applies the lines already staged
meanwhile. If that process dies before the file is whole, the lease runs out and the job
is FAILED: the body is gone. Lines applied by then stay applied; sending the file again is
safe, as an order that has earned points is rejected as a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import green, validate
from hub.auth import Principal
from hub.config import Settings
from hub.db import NO_KEY_UPDATE, Database, utcnow
from hub.enums import ImportStatus, Role
from hub.errors import FieldPath, InvalidInput, InvalidState
from hub.ids import new_id
from hub.imports import bulk
from hub.imports.rows import Checked, Reader, Rejected, Staged, check
from hub.merchants import get_program, is_connected
from hub.models import ImportJob, ImportRejection, ImportRow, Program
from hub.permissions import require_merchant

MAX_GRAPHQL_ROWS = 10_000
ROW_COLUMNS = (
    "job_id",
    "line",
    "member_id",
    "external_ref",
    "order_ref",
    "amount_cents",
    "occurred_us",
)
ERROR_COLUMNS = ("job_id", "line", "code", "message")


class UploadInterrupted(InvalidState):
    """The job stopped (FAILED, or its lease passed on) while its file was still arriving."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"Import {job_id} stopped while the file was arriving (importJob says why). Send "
            "the whole file again: orders already imported are rejected as repeats."
        )
        self.job_id = job_id


async def importable_program(
    session: AsyncSession, principal: Principal, code: str, field: FieldPath
) -> Program:
    """The caller's own hosted program (ADMIN: any hosted program), or a domain error."""
    program = await get_program(session, code, field)
    require_merchant(principal, program.merchant_id, field)
    if is_connected(program):
        raise InvalidState(
            f"{program.code} balances live in the partner's own system; accrue there.",
            field=field,
        )
    green.refuse_direct_accrual(program, field)  # GREEN points come from purchase lines
    return program


async def open_job(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    program_code: str,
    source: str,
    holder: str,
    field: FieldPath,
) -> ImportJob:
    """A new RUNNING job, leased to `holder` while it stages its rows."""
    program = await importable_program(session, principal, program_code, field)
    now = utcnow()
    job = ImportJob(
        id=new_id("imp"),
        program_code=program.code,
        merchant_id=program.merchant_id,
        actor=principal.actor,
        source=source,
        status=ImportStatus.RUNNING,
        staged=False,
        total=0,
        processed=0,
        accepted=0,
        rejected=0,
        points=0,
        failures=0,
        lease_holder=holder,
        lease_expires_at=now + dt.timedelta(seconds=settings.import_lease_seconds),
        created_at=now,
    )
    session.add(job)
    await session.flush()
    return job


async def stage(
    session: AsyncSession,
    settings: Settings,
    job_id: str,
    holder: str,
    lines: Sequence[Checked],
    *,
    seal: bool = False,
) -> None:
    """Stage a batch of checked lines (rejected ones are decided now) and renew the lease;
    with `seal`, say that the file is whole (the worker then finishes the job once every
    staged line is applied)."""
    rows = [(job_id, *s) for s in lines if isinstance(s, Staged)]
    rejects = [(job_id, r.line, r.code.value, r.message) for r in lines if isinstance(r, Rejected)]
    now = utcnow()
    values: dict[str, object] = {
        "total": ImportJob.total + len(lines),
        "processed": ImportJob.processed + len(rejects),
        "rejected": ImportJob.rejected + len(rejects),
        "lease_expires_at": now + dt.timedelta(seconds=settings.import_lease_seconds),
    }
    if seal:
        values["staged"] = True
    claimed = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.lease_holder == holder,
            ImportJob.staged.is_(False),
            ImportJob.status == ImportStatus.RUNNING,
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise UploadInterrupted(job_id)
    await bulk.insert_rows(session, ImportRow.__table__, ROW_COLUMNS, rows)  # type: ignore[arg-type]
    await bulk.insert_rows(session, ImportRejection.__table__, ERROR_COLUMNS, rejects)  # type: ignore[arg-type]


async def abandon(
    session: AsyncSession, job_id: str, reason: str, *, stalled: bool = False
) -> None:
    """FAIL a job whose lines never all arrived; what is staged and not applied is dropped.
    The reason is followed by what was imported before the upload stopped. With `stalled`
    (another process found the lease run out), only if the lease has still not been
    renewed."""
    job = await session.get(ImportJob, job_id, with_for_update=NO_KEY_UPDATE)
    if job is None or job.staged or job.status != ImportStatus.RUNNING:
        return  # sealed meanwhile (the worker's now), or over
    expires = job.lease_expires_at
    if stalled and expires is not None and expires >= utcnow():
        return  # the upload went on after all
    await session.execute(delete(ImportRow).where(ImportRow.job_id == job_id))
    job.status = ImportStatus.FAILED
    job.failure = (
        f"{reason} {job.total:,} lines had arrived; {job.accepted:,} were imported, "
        f"{job.rejected:,} rejected, the rest dropped. Send the whole file again: orders "
        "already imported are rejected as repeats, so nothing earns twice."
    )
    job.finished_at = utcnow()
    job.lease_holder = None
    job.lease_expires_at = None


async def from_rows(
    db: Database,
    settings: Settings,
    principal: Principal,
    program_code: str,
    raws: Sequence[dict[str, object]],
    holder: str,
) -> ImportJob:
    """importAccruals: up to 10,000 rows, staged and sealed in one transaction."""
    if not raws:
        raise InvalidInput("rows is empty: give at least one purchase.", field=("rows",))
    if len(raws) > MAX_GRAPHQL_ROWS:
        raise InvalidInput(
            f"{len(raws):,} rows; importAccruals takes at most {MAX_GRAPHQL_ROWS:,}. Send larger "
            "files to POST /imports/accruals, which streams them.",
            field=("rows",),
        )
    window = validate.PurchaseWindow(utcnow(), settings.accrual_backdate_days)
    lines = [check(i, raw, window) for i, raw in enumerate(raws, start=1)]

    async def work(session: AsyncSession) -> ImportJob:
        job = await open_job(
            session, settings, principal, program_code, "graphql", holder, ("program",)
        )
        await stage(session, settings, job.id, holder, lines, seal=True)
        await session.refresh(job)
        return job

    return await db.transaction(work)


@dataclass
class Received:
    job_id: str | None
    total: int
    rejected: int


async def receive(
    db: Database,
    settings: Settings,
    principal: Principal,
    program_code: str,
    reader: Reader,
    body: AsyncIterable[bytes],
    source: str,
    holder: str,
    arrived: Callable[[str], object] | None = None,
) -> Received:
    """Stage a streamed file batch by batch (one transaction each) and seal it. The job is
    opened with the first batch, after the header has been read; an empty file opens none.
    `arrived` is told the job's id after each batch, to apply the lines staged so far.
    A batch is written while the next one is read and checked (the database works in its
    own thread or server meanwhile), so at most two batches are held in memory.

    A failure while receiving (the client went away) FAILs the job; nothing was applied."""
    async with db.read() as session:
        await importable_program(session, principal, program_code, ("program",))
    batch: list[Checked] = []
    job_id: str | None = None
    total = rejected = 0
    writing: asyncio.Task[str] | None = None

    async def flush(lines: list[Checked], seal: bool) -> str:
        async def work(session: AsyncSession) -> str:
            found = job_id
            if found is None:
                job = await open_job(
                    session, settings, principal, program_code, source, holder, ("program",)
                )
                found = job.id
            await stage(session, settings, found, holder, lines, seal=seal)
            return found

        found = await db.transaction(work)
        if arrived is not None:
            arrived(found)
        return found

    async def hand_over(seal: bool) -> None:
        nonlocal batch, job_id, writing, total, rejected
        if writing is not None:
            job_id = await writing  # one batch written at a time, in order
            writing = None
        lines, batch = batch, []
        total += len(lines)
        rejected += sum(1 for x in lines if isinstance(x, Rejected))
        if seal:
            job_id = await flush(lines, seal=True)
        else:
            writing = asyncio.create_task(flush(lines, seal=False))

    try:
        async for data in body:
            reader.window = reader.window.at(utcnow())
            batch.extend(reader.feed(data))
            if len(batch) >= settings.import_chunk_rows:
                await hand_over(seal=False)
            await asyncio.sleep(0)  # let the batch being written go on
        batch.extend(reader.feed(b"", final=True))
        if batch or job_id is not None or writing is not None:
            await hand_over(seal=True)
    except BaseException:
        if writing is not None:
            with contextlib.suppress(BaseException):
                job_id = await writing
        if job_id is not None:
            stopped = job_id
            await db.transaction(
                lambda s: abandon(s, stopped, "The upload stopped before the end of the file.")
            )
        raise
    return Received(job_id=job_id, total=total, rejected=rejected)


async def visible_job(session: AsyncSession, principal: Principal, job_id: str) -> ImportJob | None:
    """The job, for ADMIN or the merchant whose program it imports into; else None."""
    job = await session.get(ImportJob, job_id)
    if job is None:
        return None
    if principal.role == Role.ADMIN:
        return job
    if principal.role == Role.MERCHANT and principal.merchant_id == job.merchant_id:
        return job
    return None


async def rejections(
    session: AsyncSession, job_id: str, first: int, after_line: int | None = None
) -> list[ImportRejection]:
    """Rejected lines in line order, from after `after_line`."""
    query = select(ImportRejection).where(ImportRejection.job_id == job_id)
    if after_line is not None:
        query = query.where(ImportRejection.line > after_line)
    rows = await session.scalars(query.order_by(ImportRejection.line).limit(first))
    return list(rows)
