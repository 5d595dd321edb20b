"""Periodic jobs survive their failures; a database that could not be used is a warning
(the job runs again next time), any other failure an error with its traceback."""

from __future__ import annotations

import asyncio

import asyncpg
from structlog.testing import capture_logs

from hub.periodic import Job, Scheduler


async def _one_run_of(failure: Exception) -> list[dict[str, object]]:
    ran = asyncio.Event()

    async def run() -> None:
        ran.set()
        raise failure

    scheduler = Scheduler()
    scheduler.add(Job("test-job", 3600, run))
    with capture_logs() as logged:
        scheduler.start()
        await asyncio.wait_for(ran.wait(), timeout=5)
        await asyncio.sleep(0.01)
        await scheduler.stop()
    return [line for line in logged if line.get("job") == "test-job"]


async def test_a_job_that_lost_its_database_connection_logs_a_warning() -> None:
    """Re-attack, stop 45: backends ended under load made the webhook, saga and import
    jobs log "job failed" at error level with the driver's traceback."""
    gone = asyncpg.exceptions.AdminShutdownError("terminating connection")
    (line,) = await _one_run_of(gone)
    assert line["log_level"] == "warning", line
    assert "exc_info" not in line, line


async def test_any_other_failure_of_a_job_is_an_error_with_its_traceback() -> None:
    (line,) = await _one_run_of(RuntimeError("a bug"))
    assert line["log_level"] == "error" and line["exc_info"] is True, line
