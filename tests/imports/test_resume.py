"""A job interrupted by a crash or a restart resumes where it stopped: every line applied
exactly once, the ledger sound."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
from sqlalchemy import func, select

from hub.auth import Principal
from hub.config import Settings
from hub.db import Database
from hub.enums import Role
from hub.imports import service
from hub.imports.rows import check
from hub.imports.worker import ImportWorker
from hub.models import Entry, ImportJob, ImportRow
from hub.validate import PurchaseWindow
from tests.helpers import ADMIN_KEY, balances, live_app, running_app, verify_ledger
from tests.imports.conftest import World, csv_of, wait_for
from tests.process import HubProcess

ADMIN = Principal(key_id="test", role=Role.ADMIN)


async def _job(db_url: str, job_id: str) -> ImportJob:
    db = Database(db_url)
    try:
        async with db.read() as session:
            job = await session.get(ImportJob, job_id)
            assert job is not None
            return job
    finally:
        await db.dispose()


async def _imported_entries(db_url: str, job_id: str) -> tuple[int, int]:
    """(entries the job posted, distinct orders among them)."""
    db = Database(db_url)
    try:
        async with db.read() as session:
            mine = Entry.idempotency_key.like(f"{job_id}:%")
            count = await session.scalar(select(func.count()).where(mine))
            orders = await session.scalar(
                select(func.count(func.distinct(Entry.reference))).where(mine)
            )
            return int(count or 0), int(orders or 0)
    finally:
        await db.dispose()


async def test_hub_killed_mid_import_resumes_after_restart(world: World, db_url: str) -> None:
    """SIGKILL while chunks are being applied; the next `hub serve` takes the job over when
    the dead one's lease runs out, and finishes it."""
    rows = [[world.members[i % 4], f"K-{i}", "2"] for i in range(12_000)]
    env = {
        "HUB_IMPORT_CHUNK_ROWS": "100",
        "HUB_IMPORT_LEASE_SECONDS": "1.5",
        "HUB_IMPORT_INTERVAL_SECONDS": "0.2",
    }
    first = HubProcess(db_url, env=env)
    await first.start()
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=120) as client:
            response = await client.post(
                "/imports/accruals?program=JADE",
                content=csv_of(rows),
                headers={"Authorization": f"Bearer {world.jade_key}", "Content-Type": "text/csv"},
            )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        for _ in range(2000):
            if (await _job(db_url, job_id)).processed >= 500:
                break
            await asyncio.sleep(0.01)
    finally:
        first.kill()
    stopped = await _job(db_url, job_id)
    assert stopped.status == "RUNNING" and 0 < stopped.processed < 12_000, stopped.processed
    assert stopped.lease_holder is not None  # a crash gives nothing up
    assert await _imported_entries(db_url, job_id) == (stopped.accepted, stopped.accepted)
    second = HubProcess(db_url, env=env)
    await second.start()
    try:
        for _ in range(3000):
            if (await _job(db_url, job_id)).status != "RUNNING":
                break
            await asyncio.sleep(0.05)
    finally:
        second.stop()
    done = await _job(db_url, job_id)
    assert (done.status, done.processed, done.accepted, done.rejected) == (
        "COMPLETED",
        12_000,
        12_000,
        0,
    )
    assert done.points == 24_000
    assert await _imported_entries(db_url, job_id) == (12_000, 12_000)
    for member in world.members:
        assert (await balances(world.api, member))["JADE"] == 6_000
    assert await verify_ledger(db_url) == []


async def test_a_job_left_after_two_chunks_is_finished_by_the_next_runtime_at_start(
    world: World, db_url: str, settings: Settings
) -> None:
    quick = settings.model_copy(
        update={
            "import_chunk_rows": 10,
            "import_lease_seconds": 0.5,
            "import_interval_seconds": 0.1,
        }
    )
    rows: list[dict[str, Any]] = [
        {"memberId": world.members[i % 4], "orderRef": f"A-{i}", "amount": "4"} for i in range(95)
    ]
    rows[50] = {"memberId": world.members[0], "orderRef": "A-3", "amount": "4"}  # a repeat
    db = Database(db_url)
    gone = ImportWorker(db, quick)
    try:
        job = await service.from_rows(db, quick, ADMIN, "JADE", rows, gone.holder)
        assert await gone.run(job.id, max_chunks=2) is False  # then the process "dies"
        left = await _job(db_url, job.id)
        assert (left.processed, left.lease_holder) == (20, gone.holder)
        # While the lease lives, no one else applies the job.
        other = ImportWorker(db, quick)
        assert await other.run(job.id) is False
    finally:
        await db.dispose()
    async with running_app(quick.model_copy(update={"background_jobs": True})) as api:
        finished = await wait_for(api, job.id, ADMIN_KEY, seconds=30)
    assert (finished["status"], finished["accepted"], finished["rejected"]) == ("COMPLETED", 94, 1)
    assert finished["errors"] == [
        {
            "line": 51,
            "code": "ALREADY_EXISTS",
            "message": "Order 'A-3' has already earned points in JADE.",
        }
    ]
    assert await _imported_entries(db_url, job.id) == (94, 94)
    assert sum([(await balances(world.api, m))["JADE"] for m in world.members]) == 94 * 4
    assert await verify_ledger(db_url) == []


async def test_an_upload_cut_short_fails_and_imports_nothing(
    world: World, db_url: str, settings: Settings
) -> None:
    """The process receiving a file died half way: the body is gone, so the job FAILs with
    what to do, its staged lines are dropped and not a point moved."""
    quick = settings.model_copy(update={"import_lease_seconds": 0.2})
    db = Database(db_url)
    receiver = ImportWorker(db, quick)
    try:

        async def half(session: Any) -> str:
            job = await service.open_job(session, quick, ADMIN, "JADE", "http", receiver.holder, [])
            window = PurchaseWindow(job.created_at, quick.accrual_backdate_days)
            lines = [
                check(
                    i, {"memberId": world.members[0], "orderRef": f"H-{i}", "amount": "9"}, window
                )
                for i in range(2, 40)
            ]
            await service.stage(session, quick, job.id, receiver.holder, lines)
            return job.id

        job_id = await db.transaction(half)
        await asyncio.sleep(0.3)
        assert await ImportWorker(db, quick).resume_due() == 0
        with contextlib.suppress(service.UploadInterrupted):  # the receiver, back too late
            await db.transaction(
                lambda s: service.stage(s, quick, job_id, receiver.holder, [], seal=True)
            )
        async with db.read() as session:
            staged = await session.scalar(select(func.count()).select_from(ImportRow))
    finally:
        await db.dispose()
    assert staged == 0
    failed = await _job(db_url, job_id)
    assert failed.status == "FAILED" and failed.staged is False
    assert failed.failure is not None and "Send the whole file again" in failed.failure
    assert (await balances(world.api, world.members[0]))["JADE"] == 0


async def test_a_connection_cut_mid_upload_keeps_what_was_applied_and_a_resend_completes(
    world: World, db_url: str, settings: Settings
) -> None:
    """Lines are applied while the file still uploads; when the client goes away the job
    FAILs saying how far it got, and sending the whole file again imports the rest: the
    lines already imported are rejected as repeats, none earns twice."""
    small = settings.model_copy(update={"import_chunk_rows": 200})
    rows = [[world.members[i % 4], f"U-{i}", "5"] for i in range(6000)]
    data = csv_of(rows)
    cut = len(data) // 2
    async with live_app(small) as (url, hub):
        host, port = url.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                "POST /imports/accruals?program=JADE HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {world.jade_key}\r\n"
                f"Content-Type: text/csv\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[:cut]
        )
        await writer.drain()
        job_id = None
        for _ in range(600):  # until some lines are applied while the rest is awaited
            jobs = await _all_jobs(db_url)
            if jobs and jobs[0].accepted > 0:
                job_id = jobs[0].id
                break
            await asyncio.sleep(0.05)
        assert job_id is not None, "lines were applied during the upload"
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        failed = await wait_for(hub, job_id, world.jade_key)
        assert failed["status"] == "FAILED"
        assert "Send the whole file again" in failed["failure"]
        first = failed["accepted"]
        assert 0 < first < 6000
        assert failed["accepted"] + failed["rejected"] == failed["processed"]
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            again = await client.post(
                "/imports/accruals?program=JADE",
                content=data,
                headers={"Authorization": f"Bearer {world.jade_key}", "Content-Type": "text/csv"},
            )
        assert again.status_code == 202, again.text
        done = await wait_for(hub, again.json()["id"], world.jade_key, seconds=120)
    assert (done["status"], done["accepted"], done["rejected"]) == (
        "COMPLETED",
        6000 - first,
        first,
    )
    assert {e["code"] for e in done["errors"]} == {"ALREADY_EXISTS"}
    for member in world.members:
        assert (await balances(world.api, member))["JADE"] == 1500 * 5
    assert await verify_ledger(db_url) == []


async def _all_jobs(db_url: str) -> list[ImportJob]:
    db = Database(db_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(ImportJob)))
    finally:
        await db.dispose()
