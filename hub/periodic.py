"""Periodic jobs inside `hub serve`: each runs on its own interval, logs and survives errors.

Jobs are safe to run on every replica at once: each takes its rows with locks
and conditional updates (expiry, holds, sagas), or a database lease (settlement).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from hub.db import database_unavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[object]]
    run_at_start: bool = True


class Scheduler:
    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(job), name=job.name) for job in self.jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self, job: Job) -> None:
        if not job.run_at_start:
            await asyncio.sleep(job.every_seconds)
        while True:
            try:
                await job.run()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a failed run is logged and tried again next time
                if database_unavailable(error):  # not the job's fault; it runs again
                    log.warning("job found the database unavailable", job=job.name)
                else:
                    log.exception("job failed", job=job.name)
            await asyncio.sleep(job.every_seconds)
