"""Partner catalogs: asked concurrently under one time budget, cached with a TTL.

A partner that does not answer within the budget is named in
unavailableMerchants and its last listing (if any) is served; its answer, when
it comes, still refreshes the cache in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory, RewardOffer, SlotOffer
from hub.caches import Caches
from hub.config import Settings
from hub.db import Database
from hub.mall import catalog
from hub.merchants import is_connected
from hub.models import Program, Reward
from hub.models.mall import LISTED_COLUMNS, ListedReward, RewardLike

log = structlog.get_logger(__name__)

# A partner whose listing (its catalog, or its rewards' slots) failed is not asked again for
# this long: the pages meanwhile name it unavailable at once and serve what is kept, where
# each would have waited for the transport's retries of a partner that fails every call.
# After that it is asked again in the background, not waited for, until it answers.
RETRY_AFTER_FAILURE_SECONDS = 15.0


class PartnerCatalog:
    def __init__(
        self, db: Database, factory: ConnectorFactory, settings: Settings, caches: Caches
    ) -> None:
        self.db = db
        self.factory = factory
        self.settings = settings
        self.caches = caches
        self.refreshed: dict[str, float] = {}
        # What each partner listed when this process last stored its catalog: the same
        # answer again only renews its freshness, it is not written again.
        self.stored: dict[str, tuple[RewardOffer, ...]] = {}
        self.inflight: dict[str, asyncio.Task[list[RewardOffer]]] = {}
        # When each in-flight listing was asked (monotonic): one older than the budget has
        # had its chance, and later pages do not wait for it again.
        self.asked_at: dict[str, float] = {}
        # When each partner's catalog, and its slots, last failed to list (monotonic), until
        # one answers again: see RETRY_AFTER_FAILURE_SECONDS.
        self.failed_at: dict[str, float] = {}
        self.slots_failed_at: dict[str, float] = {}
        self._background: set[asyncio.Future[None]] = set()
        self._stored_later: set[asyncio.Task[list[RewardOffer]]] = set()
        self._slot_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._slots_refreshed: dict[tuple[str, str], float] = {}
        self._slots_asked_at: dict[tuple[str, str], float] = {}
        self._slot_merchants: dict[tuple[str, str], str] = {}  # whose reward each key is
        # Partners' slot answers waiting to be stored together (_store_slots).
        self._slots_to_store: _SlotAnswers = []
        self._slot_writer: asyncio.Task[None] | None = None

    async def connected_programs(self, merchant: str | None = None) -> list[Program]:
        """The partners' programs (from the process's cache of programs)."""
        programs = (await self.caches.programs()).by_code.values()
        return [
            p
            for p in programs
            if is_connected(p) and (merchant is None or p.merchant_id == merchant)
        ]

    def _fresh(self, merchant_id: str) -> bool:
        at = self.refreshed.get(merchant_id)
        return at is not None and time.monotonic() - at < self.settings.catalog_cache_seconds

    async def _fetch(self, program: Program) -> list[RewardOffer]:
        connector = self.factory.for_program(program, None, "catalog")
        return await connector.list_rewards()

    async def _store(self, answers: dict[str, list[RewardOffer]]) -> None:
        """Store what the partners answered, in one transaction; a listing the same as the
        one this process stored last is not written again."""
        changed = {m: tuple(o) for m, o in answers.items() if self.stored.get(m) != tuple(o)}

        async def store(session: AsyncSession) -> None:
            for merchant_id, offers in changed.items():
                await catalog.store_partner_rewards(session, merchant_id, offers)

        if changed:
            await self.db.transaction(store)
            self.stored.update(changed)
        now = time.monotonic()
        for merchant_id in answers:
            self.refreshed[merchant_id] = now

    def _start(self, program: Program) -> asyncio.Task[list[RewardOffer]]:
        merchant_id = program.merchant_id
        task = self.inflight.get(merchant_id)
        if task is None or task.done():
            task = asyncio.create_task(self._fetch(program), name=f"catalog:{merchant_id}")
            self.inflight[merchant_id] = task
            self.asked_at[merchant_id] = time.monotonic()
            task.add_done_callback(self._forget(merchant_id))
        return task

    def _forget(self, merchant_id: str) -> Callable[[asyncio.Task[list[RewardOffer]]], None]:
        def done(task: asyncio.Task[list[RewardOffer]]) -> None:
            if self.inflight.get(merchant_id) is task:
                del self.inflight[merchant_id]
            if task.cancelled():
                return
            if task.exception() is None:
                self.failed_at.pop(merchant_id, None)
                return
            self.failed_at[merchant_id] = time.monotonic()
            log.info(
                "partner catalog not refreshed",
                merchant=merchant_id,
                error=type(task.exception()).__name__,
            )

        return done

    def _store_later(self, merchant_id: str, task: asyncio.Task[list[RewardOffer]]) -> None:
        """A partner that answers after the budget still refreshes the cache (once, however
        many pages found it late)."""
        if task in self._stored_later:
            return
        self._stored_later.add(task)

        def done(finished: asyncio.Task[list[RewardOffer]]) -> None:
            self._stored_later.discard(finished)
            if finished.cancelled() or finished.exception() is not None:
                return
            background = asyncio.ensure_future(self._store({merchant_id: finished.result()}))
            self._background.add(background)
            background.add_done_callback(self._background.discard)

        task.add_done_callback(done)

    async def ensure_fresh(
        self, programs: Sequence[Program], budget: float | None = None
    ) -> list[str]:
        """Ask every stale partner at once; the merchants that did not answer in time.

        A partner asked by an earlier page and still silent after a whole budget is not
        waited for again (a partner that hangs would cost every page its budget): its
        answer, when it comes, refreshes the cache, and until then it is unavailable."""
        stale = [p for p in programs if not self._fresh(p.merchant_id)]
        if not stale:
            return []
        budget = budget or self.settings.catalog_budget_seconds
        resting = {p.merchant_id for p in stale if _recently(self.failed_at.get(p.merchant_id))}
        tasks = {p.merchant_id: self._start(p) for p in stale if p.merchant_id not in resting}
        now = time.monotonic()
        waited = [
            t
            for m, t in tasks.items()
            if now - self.asked_at.get(m, now) < budget and m not in self.failed_at
        ]
        if waited:
            await asyncio.wait(waited, timeout=budget)
        answered = {
            m: t.result()
            for m, t in tasks.items()
            if t.done() and not t.cancelled() and t.exception() is None
        }
        if answered:
            await self._store(answered)
        late = [m for m, t in tasks.items() if not t.done()]
        for merchant_id in late:
            self._store_later(merchant_id, tasks[merchant_id])
        return sorted((set(tasks) - set(answered)) | resting)

    async def close(self) -> None:
        """Stop asking partners (at shutdown)."""
        tasks: list[asyncio.Future[Any]] = [
            *self.inflight.values(),
            *self._slot_tasks.values(),
            *([self._slot_writer] if self._slot_writer else []),
            *self._background,
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def refresh_all(self) -> list[str]:
        """The background refresh: every partner whose cache is past its TTL."""
        return await self.ensure_fresh(await self.connected_programs(), budget=30)

    async def slots_on(
        self, day: dt.date, merchant: str | None = None, wait: float | None = None
    ) -> list[str]:
        """Ask the partners (all, or `merchant`) for `day`'s slots of each of their slotted
        rewards, at once and within the catalog's budget (or `wait`, what a page has left
        of it), so that a listing of the rewards available that day knows them; the
        merchants that did not answer in time. A day already past is not asked: none of
        its slots can be booked."""
        if day < dt.datetime.now(self.settings.tz).date():
            return []
        merchants = [p.merchant_id for p in await self.connected_programs(merchant)]
        if not merchants:
            return []
        slotted = select(*LISTED_COLUMNS).where(
            Reward.merchant_id.in_(merchants),
            Reward.source == "PARTNER",
            Reward.has_slots.is_(True),
            Reward.active.is_(True),
        )
        async with self.db.single_read() as conn:
            rewards = [ListedReward.of(row) for row in await conn.execute(slotted)]
        answered = await asyncio.gather(*(self.slots(r, day, wait=wait) for r in rewards))
        return sorted({r.merchant_id for r, ok in zip(rewards, answered, strict=True) if not ok})

    async def slots(
        self, reward: RewardLike, day: dt.date | None, *, wait: float | None = None
    ) -> bool:
        """Refresh a partner reward's slots (for a day, or the coming days); False if the
        partner did not answer within the budget (or `wait`, if shorter), or failed a
        moment ago, and the cached slots are served."""
        key = (reward.id, day.isoformat() if day else "")
        at = self._slots_refreshed.get(key)
        if at is not None and time.monotonic() - at < self.settings.catalog_cache_seconds:
            return True
        merchant = reward.merchant_id
        failed = self.slots_failed_at.get(merchant)
        if _recently(failed):
            return False
        budget = self.settings.catalog_budget_seconds
        task = self._slot_tasks.get(key)
        if task is None or task.done():
            task = asyncio.create_task(self._refresh_slots(reward, day, key))
            self._slot_tasks[key] = task
            self._slots_asked_at[key] = time.monotonic()
            self._slot_merchants[key] = merchant
        if failed is not None or self._silent(merchant, budget):
            return False  # failing, or silent for a whole budget on a page before: not waited
        done, _ = await asyncio.wait([task], timeout=budget if wait is None else min(wait, budget))
        return bool(done) and task.exception() is None

    def _silent(self, merchant: str, budget: float) -> bool:
        """Whether a slot listing asked of this partner is still unanswered after a whole
        budget, whichever reward and day it was for."""
        now = time.monotonic()
        return any(
            not task.done()
            and self._slot_merchants.get(key) == merchant
            and now - self._slots_asked_at[key] >= budget
            for key, task in self._slot_tasks.items()
        )

    async def _refresh_slots(
        self, reward: RewardLike, day: dt.date | None, key: tuple[str, str]
    ) -> None:
        program = await self.caches.program_of_merchant(reward.merchant_id)
        assert program is not None
        connector = self.factory.for_program(program, None, "catalog")
        try:
            offers = await connector.list_slots(reward.ref, day)
        except Exception:
            self.slots_failed_at[reward.merchant_id] = time.monotonic()
            raise
        self.slots_failed_at.pop(reward.merchant_id, None)
        await self._store_slots(reward.id, offers)
        self._slots_refreshed[key] = time.monotonic()

    async def _store_slots(self, reward_id: str, offers: Sequence[SlotOffer]) -> None:
        """Store a reward's slots as its partner answered, in one transaction with the
        answers that arrive meanwhile (each slotted reward of each day a page asks is an
        answer of its own; SQLite takes write transactions in turn). Returns once stored."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slots_to_store.append((reward_id, offers, stored))
        if self._slot_writer is None or self._slot_writer.done():
            self._slot_writer = asyncio.create_task(self._write_slots())
        await stored

    async def _write_slots(self) -> None:
        """Store the answers waiting, all in one transaction, until none waits."""
        while self._slots_to_store:
            batch, self._slots_to_store = self._slots_to_store, []

            async def store(session: AsyncSession, batch: _SlotAnswers = batch) -> None:
                await catalog.store_partner_slots(session, [(r, o) for r, o, _ in batch])

            try:
                await self.db.transaction(store)
            except Exception as error:  # each waiter's page serves the slots it had
                for *_, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
            else:
                for *_, stored in batch:
                    if not stored.done():
                        stored.set_result(None)


_SlotAnswers = list[tuple[str, Sequence[SlotOffer], asyncio.Future[None]]]


def _recently(failed: float | None) -> bool:
    """Whether a listing that failed at `failed` (monotonic) is still resting."""
    return failed is not None and time.monotonic() - failed < RETRY_AFTER_FAILURE_SECONDS
