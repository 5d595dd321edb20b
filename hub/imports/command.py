"""`hub import accruals FILE --program P`: a file of purchases imported from the command
line, with a progress bar; the same job as POST /imports/accruals, run in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hub.auth import Principal
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import ImportStatus, Role
from hub.errors import DomainError
from hub.imports import service
from hub.imports.apply import Chunk
from hub.imports.rows import reader_for_file
from hub.imports.worker import ImportWorker
from hub.models import ImportJob
from hub.validate import PurchaseWindow

READ_BYTES = 1 << 16
SHOWN_ERRORS = 1000
CLI = Principal(key_id="cli", role=Role.ADMIN)


async def import_accruals(
    settings: Settings,
    name: str,
    handle: BinaryIO,
    size: int,
    program: str,
    echo: Callable[[str], object],
) -> int:
    """Stage the file, apply it here, print the outcome; the exit status (0: completed).
    A blocking read per 64 KiB is fine here: this process does nothing else."""
    err = Console(stderr=True)
    db = Database.configured(settings)
    worker = ImportWorker(db, settings)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        ) as bar:
            reading = bar.add_task("reading ", total=size)

            async def body() -> AsyncIterator[bytes]:
                while data := handle.read(READ_BYTES):
                    bar.advance(reading, len(data))
                    yield data

            reader = reader_for_file(name, PurchaseWindow(utcnow(), settings.accrual_backdate_days))
            applying = bar.add_task("importing", total=None)

            def advance(chunk: Chunk) -> None:
                bar.advance(applying, chunk.lines)

            worker.progress = advance  # lines are applied while the file is still read
            try:
                received = await service.receive(
                    db,
                    settings,
                    CLI,
                    program,
                    reader,
                    body(),
                    "cli",
                    worker.holder,
                    arrived=worker.kick,
                )
            except DomainError as exc:
                err.print(f"[red]{exc.code.value}: {exc.message}[/red]")
                return 2
            if received.job_id is None:
                err.print("[red]The file has no lines to import.[/red]")
                return 2
            job_id = received.job_id
            bar.update(applying, total=received.total)
            bar.advance(applying, received.rejected)  # decided while reading
            worker.kick(job_id)
            await worker.drain()
        async with db.read() as session:
            job = await session.get(ImportJob, job_id)
            assert job is not None
            errors = await service.rejections(session, job_id, SHOWN_ERRORS)
    finally:
        await worker.close()
        await db.dispose()
    for e in errors:
        echo(f"line {e.line}: {e.code} {e.message}")
    if job.rejected > len(errors):
        echo(f"... and {job.rejected - len(errors):,} more: importJob(id: {job_id!r})")
    echo(
        f"import {job_id} {job.status}: {job.accepted:,} accepted, {job.rejected:,} rejected "
        f"of {job.total:,} lines; {job.points:,} points"
    )
    if job.status == ImportStatus.RUNNING:  # another process holds it (or took it over)
        echo("still running in another process; follow it with importJob(id)")
        return 1
    if job.failure:
        echo(job.failure)
    return 0 if job.status == ImportStatus.COMPLETED else 1
