"""Running import jobs: one process at a time per job, under a lease renewed every chunk.

The process that receives a job applies it as its lines arrive; `resume_due` (the
scheduler, at start and then every few seconds) takes over any sealed job whose lease ran
out, so a job interrupted by a crash or a restart resumes where it stopped: its applied
chunks are committed and gone from the staged rows, the rest is still there. An upload
that stopped half way (its lease ran out before it was sealed) is FAILED: its body is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import secrets
import socket
from collections.abc import Callable

import structlog
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.db import NO_KEY_UPDATE, Database, utcnow
from hub.enums import ImportStatus
from hub.imports import service
from hub.imports.apply import Chunk, LeaseLost, apply_chunk
from hub.imports.repository import refresh_statistics
from hub.models import ImportJob, ImportRow

log = structlog.get_logger(__name__)
MAX_FAILURES = 5  # chunk attempts failing in a row before the job is FAILED
RUNNING = ImportStatus.RUNNING

STALLED = "The upload stopped before the end of the file (the process receiving it ended)."

Progress = Callable[[Chunk], None]


def new_holder() -> str:
    """Who holds a lease: this process, and this worker within it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ImportWorker:
    """Applies import jobs in this process; one task per job."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.holder = new_holder()
        self._tasks: dict[str, asyncio.Task[bool]] = {}
        self._stopping = False
        self._arrived: dict[str, asyncio.Event] = {}  # per job: more lines were staged
        self.progress: Progress | None = None  # told of each chunk (the CLI's bar)

    def kick(self, job_id: str) -> None:
        """Start applying a job in the background (unless this worker already is): a sealed
        one, or one this process is still receiving (it applies what has arrived)."""
        self._arrival(job_id).set()
        if self._stopping:
            return
        running = self._tasks.get(job_id)
        if running is not None and not running.done():
            return
        self._tasks[job_id] = asyncio.create_task(self.run(job_id), name=f"import {job_id}")
        self._tasks = {k: t for k, t in self._tasks.items() if not t.done() or k == job_id}
        self._arrived = {k: e for k, e in self._arrived.items() if k in self._tasks}

    def _arrival(self, job_id: str) -> asyncio.Event:
        return self._arrived.setdefault(job_id, asyncio.Event())

    async def run(
        self, job_id: str, progress: Progress | None = None, max_chunks: int | None = None
    ) -> bool:
        """Apply the job to its end if its lease can be taken; whether it was. With
        `max_chunks`, stop after that many chunks keeping the lease, as a process killed
        there would (the tests of resuming)."""
        if not await self._take(job_id):
            return False
        await self.db.transaction(refresh_statistics)
        progress = progress or self.progress
        arrived = self._arrival(job_id)
        chunks = 0
        while max_chunks is None or chunks < max_chunks:
            if self._stopping:  # between chunks: the next process resumes from here
                await self.db.transaction(self._release)
                return False
            arrived.clear()  # before reading: a batch staged meanwhile sets it again
            try:
                chunk = await self.db.transaction(
                    lambda s: apply_chunk(
                        s, self.settings, job_id, self.holder, self.settings.import_chunk_rows
                    )
                )
            except LeaseLost:
                log.warning("import lease lost", job=job_id)
                return False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("import chunk failed", job=job_id)
                await self._failed(job_id, exc)
                return False
            if chunk.waiting:  # the upload goes on: wait for its next batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), timeout=1.0)
                continue
            chunks += 1
            if progress is not None:
                progress(chunk)
            if chunk.finished:
                log.info("import completed", job=job_id)
                return True
        return False

    async def resume_due(self) -> int:
        """Fail stalled uploads and take over every job whose lease ran out; the number
        started."""
        now = utcnow()
        async with self.db.read() as session:
            stalled = list(
                await session.scalars(
                    select(ImportJob.id).where(
                        ImportJob.status == RUNNING,
                        ImportJob.staged.is_(False),
                        ImportJob.lease_expires_at < now,
                    )
                )
            )
            due = list(
                await session.scalars(
                    select(ImportJob.id)
                    .where(
                        ImportJob.status == RUNNING,
                        ImportJob.staged.is_(True),
                        or_(ImportJob.lease_expires_at.is_(None), ImportJob.lease_expires_at < now),
                    )
                    .order_by(ImportJob.created_at)
                )
            )
        for job_id in stalled:
            await self.db.transaction(
                functools.partial(service.abandon, job_id=job_id, reason=STALLED, stalled=True)
            )
            log.warning("import upload abandoned", job=job_id)
        for job_id in due:
            self.kick(job_id)
        return len(due)

    async def drain(self) -> None:
        """Wait for the jobs this worker is applying (tests, the CLI)."""
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop after the chunks in flight (cancelling a transaction half way could leak its
        connection), and give up this worker's leases so the next process resumes at once."""
        self._stopping = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):  # best effort: the lease runs out anyway
            await self.db.transaction(self._release)

    async def _release(self, session: AsyncSession) -> None:
        await session.execute(
            update(ImportJob)
            .where(ImportJob.lease_holder == self.holder, ImportJob.staged.is_(True))
            .values(lease_holder=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )

    async def _take(self, job_id: str) -> bool:
        """The job's lease, if it is free, run out, or this worker's."""

        async def work(session: AsyncSession) -> bool:
            now = utcnow()
            taken = await session.execute(
                update(ImportJob)
                .where(
                    ImportJob.id == job_id,
                    ImportJob.status == RUNNING,
                    or_(
                        ImportJob.lease_holder == self.holder,  # as its receiver, or again
                        and_(
                            ImportJob.staged.is_(True),
                            or_(
                                ImportJob.lease_holder.is_(None),
                                ImportJob.lease_expires_at < now,
                            ),
                        ),
                    ),
                )
                .values(
                    lease_holder=self.holder,
                    lease_expires_at=now + dt.timedelta(seconds=self.settings.import_lease_seconds),
                )
                .execution_options(synchronize_session=False)
            )
            return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

        return await self.db.transaction(work)

    async def _failed(self, job_id: str, exc: Exception) -> None:
        """Count a failed chunk; give the lease up so the next round tries again, or FAIL
        the job after MAX_FAILURES in a row (its applied chunks stay applied)."""

        async def work(session: AsyncSession) -> None:
            job = await session.get(ImportJob, job_id, with_for_update=NO_KEY_UPDATE)
            if job is None or job.status != RUNNING or job.lease_holder != self.holder:
                return
            job.failures += 1
            if job.staged:  # the next round (any process) tries again; while this process
                job.lease_holder = None  # still receives the file, its next batch does
                job.lease_expires_at = None
            if job.failures >= MAX_FAILURES:
                await session.execute(delete(ImportRow).where(ImportRow.job_id == job_id))
                job.status = ImportStatus.FAILED
                job.finished_at = utcnow()
                job.failure = (
                    f"Stopped after {job.processed:,} of {job.total:,} lines: the database "
                    f"refused a chunk {job.failures} times ({type(exc).__name__}). The lines "
                    "applied stay applied. Send the whole file again: orders already "
                    "imported are rejected as repeats."
                )

        with contextlib.suppress(Exception):
            await self.db.transaction(work)
