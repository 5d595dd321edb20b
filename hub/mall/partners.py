"""Partner catalogs: asked concurrently under one time budget, cached with a TTL.

A partner that does not answer within the budget is named in
unavailableMerchants and its last listing (if any) is served; its answer, when
it comes, still refreshes the cache in the background.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory
from hub.config import Settings
from hub.db import Database
from hub.enums import ConnectorKind
from hub.mall import catalog
from hub.models import Program, Reward, Slot

log = structlog.get_logger(__name__)


class PartnerCatalog:
    def __init__(self, db: Database, factory: ConnectorFactory, settings: Settings) -> None:
        self.db = db
        self.factory = factory
        self.settings = settings
        self.refreshed: dict[str, float] = {}
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self._slot_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._slots_refreshed: dict[tuple[str, str], float] = {}

    async def connected_programs(self, merchant: str | None = None) -> list[Program]:
        async with self.db.read() as session:
            query = select(Program).where(Program.connector != ConnectorKind.HOSTED.value)
            if merchant:
                query = query.where(Program.merchant_id == merchant)
            return list(await session.scalars(query))

    def _fresh(self, merchant_id: str) -> bool:
        at = self.refreshed.get(merchant_id)
        return at is not None and time.monotonic() - at < self.settings.catalog_cache_seconds

    async def _refresh(self, program: Program) -> None:
        connector = self.factory.for_program(program, None, "catalog")
        offers = await connector.list_rewards()

        async def store(session: AsyncSession) -> None:
            await catalog.store_partner_rewards(session, program.merchant_id, offers)

        await self.db.transaction(store)
        self.refreshed[program.merchant_id] = time.monotonic()

    def _start(self, program: Program) -> asyncio.Task[None]:
        task = self.inflight.get(program.merchant_id)
        if task is None or task.done():
            task = asyncio.create_task(
                self._refresh(program), name=f"catalog:{program.merchant_id}"
            )
            self.inflight[program.merchant_id] = task
            task.add_done_callback(self._forget(program.merchant_id))
        return task

    def _forget(self, merchant_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            if self.inflight.get(merchant_id) is task:
                del self.inflight[merchant_id]
            if not task.cancelled() and task.exception() is not None:
                log.info(
                    "partner catalog not refreshed",
                    merchant=merchant_id,
                    error=type(task.exception()).__name__,
                )

        return done

    async def ensure_fresh(
        self, programs: Sequence[Program], budget: float | None = None
    ) -> list[str]:
        """Ask every stale partner at once; the merchants that did not answer in time."""
        stale = [p for p in programs if not self._fresh(p.merchant_id)]
        if not stale:
            return []
        tasks = {p.merchant_id: self._start(p) for p in stale}
        await asyncio.wait(
            list(tasks.values()), timeout=budget or self.settings.catalog_budget_seconds
        )
        return sorted(
            m
            for m, t in tasks.items()
            if not t.done() or t.cancelled() or t.exception() is not None
        )

    async def refresh_all(self) -> list[str]:
        """The background refresh: every partner whose cache is past its TTL."""
        return await self.ensure_fresh(await self.connected_programs(), budget=30)

    async def slots(self, reward: Reward, day: dt.date | None, budget: float | None = None) -> bool:
        """Refresh a partner reward's slots (for a day, or the coming days); False if the
        partner did not answer in time and the cached slots are served."""
        key = (reward.id, day.isoformat() if day else "")
        at = self._slots_refreshed.get(key)
        if at is not None and time.monotonic() - at < self.settings.catalog_cache_seconds:
            return True
        task = self._slot_tasks.get(key)
        if task is None or task.done():
            task = asyncio.create_task(self._refresh_slots(reward, day, key))
            self._slot_tasks[key] = task
        done, _ = await asyncio.wait([task], timeout=budget or self.settings.catalog_budget_seconds)
        return bool(done) and task.exception() is None

    async def _refresh_slots(
        self, reward: Reward, day: dt.date | None, key: tuple[str, str]
    ) -> None:
        async with self.db.read() as session:
            program = await session.scalar(
                select(Program).where(Program.merchant_id == reward.merchant_id)
            )
        assert program is not None
        connector = self.factory.for_program(program, None, "catalog")
        offers = await connector.list_slots(reward.ref, day)

        async def store(session: AsyncSession) -> list[Slot]:
            fresh = await session.get(Reward, reward.id)
            assert fresh is not None
            return await catalog.store_partner_slots(session, fresh, offers)

        await self.db.transaction(store)
        self._slots_refreshed[key] = time.monotonic()
