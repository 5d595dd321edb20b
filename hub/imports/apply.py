"""One chunk of an import, applied as accruePoints would apply each line, but set-based.

In one transaction: take the next staged lines of the job (in line order), decide each
(hub.imports.decide: accruePoints' rules, with what they need read once for the chunk and
the accounts locked in id order), then write every accepted line with a few multi-row
statements (entries, postings, lots, purchase amounts, balances, members' tiers, events),
the rejected ones into the job's errors, and delete the chunk's staged lines. A crash before
the commit leaves the chunk staged; after it, the chunk is gone from the queue: a resumed
job applies each line exactly once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.db import utcnow
from hub.enums import ImportStatus
from hub.errors import RetryTransaction
from hub.imports import bulk
from hub.imports.decide import Context, Decided, decide
from hub.imports.repository import read_lines
from hub.ledger.core import ENTRY_VALUES
from hub.models import (
    Account,
    AccrualAmount,
    Entry,
    ImportJob,
    ImportRejection,
    ImportRow,
    Lot,
    OutboxEvent,
    Posting,
    Program,
)

ENTRY_COLUMNS = ("id", *ENTRY_VALUES)
POSTING_COLUMNS = ("entry_id", "account_id", "amount", "balance_after")
LOT_COLUMNS = ("account_id", "entry_id", "points", "remaining", "expires_at", "created_at")
AMOUNT_COLUMNS = ("entry_id", "program_code", "member_id", "amount", "occurred_at")
EVENT_COLUMNS = (
    "event_id",
    "merchant_id",
    "type",
    "payload",
    "dedupe_key",
    "fanned_out",
    "created_at",
)


RUNNING = ImportStatus.RUNNING


class LeaseLost(Exception):
    """Another process holds the job now (this one was too slow, or the job ended)."""


@dataclass
class Chunk:
    """What one chunk did."""

    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    points: int = 0
    finished: bool = False
    waiting: bool = False  # nothing staged yet, but more lines are on their way


async def apply_chunk(
    session: AsyncSession, settings: Settings, job_id: str, holder: str, limit: int
) -> Chunk:
    """Apply the job's next `limit` staged lines, or finish the job when none is left and
    its upload is complete (else say it waits for more).

    The job's row is read, not locked, at the start, and updated (counters, lease) at the
    end on condition that this holder still has the lease: on PostgreSQL the upload that
    stages the next batch meanwhile updates the same row, and must not wait for a whole
    chunk. Two holders cannot both commit a chunk: the second's final update waits for the
    first's commit, then finds the lease gone (and its entries would break the unique
    order index anyway)."""
    now = utcnow()
    claimed = (
        await session.execute(
            select(ImportJob.program_code, ImportJob.actor, ImportJob.staged).where(
                ImportJob.id == job_id,
                ImportJob.lease_holder == holder,
                ImportJob.status == RUNNING,
            )
        )
    ).one_or_none()
    if claimed is None:
        raise LeaseLost(job_id)
    program_code, actor, complete = claimed
    program = await session.get(Program, program_code)
    assert program is not None
    staged = await read_lines(session, job_id, program.code, limit)
    if not staged:
        if complete:
            await _close(session, job_id, holder, now, status=ImportStatus.COMPLETED)
            return Chunk(finished=True)
        await _close(session, job_id, holder, now, lease=settings.import_lease_seconds)
        return Chunk(waiting=True)
    decided = await decide(session, Context(settings, job_id, program, actor, now), staged)
    try:
        await _write(session, decided)
    except IntegrityError as exc:  # an accruePoints of the same order committed meanwhile
        raise RetryTransaction() from exc
    await session.execute(
        delete(ImportRow)
        .where(ImportRow.job_id == job_id, ImportRow.line <= staged[-1][0])
        .execution_options(synchronize_session=False)
    )
    accepted, rejected = len(decided.entries), len(decided.rejects)
    await _close(
        session,
        job_id,
        holder,
        now,
        lease=settings.import_lease_seconds,
        processed=ImportJob.processed + len(staged),
        accepted=ImportJob.accepted + accepted,
        rejected=ImportJob.rejected + rejected,
        points=ImportJob.points + decided.points,
        failures=0,
    )
    return Chunk(len(staged), accepted, rejected, decided.points)


async def _close(
    session: AsyncSession,
    job_id: str,
    holder: str,
    now: dt.datetime,
    *,
    lease: float | None = None,
    status: str | None = None,
    **values: Any,
) -> None:
    """The chunk's last statement: the job's counters and lease (renewed, or given up with
    `status`), if this holder still has it; else LeaseLost, and the chunk rolls back."""
    if status is not None:
        values.update(status=status, finished_at=now, lease_holder=None, lease_expires_at=None)
    if lease is not None:
        values["lease_expires_at"] = now + dt.timedelta(seconds=lease)
    done = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.lease_holder == holder,
            ImportJob.status == RUNNING,
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(job_id)


async def _write(session: AsyncSession, decided: Decided) -> None:
    if decided.entries:
        await bulk.insert_rows(session, Entry.__table__, ENTRY_COLUMNS, decided.entries)  # type: ignore[arg-type]
        await bulk.insert_rows(session, Posting.__table__, POSTING_COLUMNS, decided.postings)  # type: ignore[arg-type]
        await bulk.insert_rows(session, Lot.__table__, LOT_COLUMNS, decided.lots)  # type: ignore[arg-type]
        await bulk.insert_rows(
            session,
            AccrualAmount.__table__,  # type: ignore[arg-type]
            AMOUNT_COLUMNS,
            decided.amounts,
        )
        await bulk.set_column(
            session,
            Account.__table__,  # type: ignore[arg-type]
            "balance",
            decided.balances,
        )
    if decided.climb is not None:
        await decided.climb.write(session)
    if decided.events:
        rows = [tuple(e[c] for c in EVENT_COLUMNS) for e in decided.events]
        await bulk.insert_rows(session, OutboxEvent.__table__, EVENT_COLUMNS, rows)  # type: ignore[arg-type]
    if decided.rejects:
        await bulk.insert_rows(
            session,
            ImportRejection.__table__,  # type: ignore[arg-type]
            ("job_id", "line", "code", "message"),
            decided.rejects,
        )
