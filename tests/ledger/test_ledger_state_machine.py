"""Any sequence of accruals, spends, holds, captures, releases and expiries keeps the ledger
sound: entries balanced, balances equal to postings and never negative, lots equal to balances."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from hub.auth import Principal
from hub.config import Settings
from hub.db import Database
from hub.enums import AccountKind, ConnectorKind, EntryKind, MerchantCategory, Role
from hub.errors import InsufficientPoints
from hub.ledger import Movement, Points
from hub.ledger.jobs import run_expiry
from hub.members import Enrollment, account_of, enroll
from hub.merchants import NewMerchant, register_merchant
from hub.models import Account, Hold
from hub.verify import verify

_counter = itertools.count()
ADMIN = Principal(key_id="test", role=Role.ADMIN)


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.db = Database(URL[0])
        self.settings = Settings(database_url=URL[0])
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        # The model: open lots as [remaining, expires_at], and pending holds.
        self.lots: list[list[Any]] = []
        self.held: dict[str, list[tuple[list[Any], int]]] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()

    def movement(self) -> Movement:
        return Movement(actor="test", business_date=self.now.date(), occurred_at=self.now)

    @initialize()
    def program(self) -> None:
        n = next(_counter)
        self.code = f"P{n}"

        async def work(session: Any) -> int:
            await register_merchant(
                session,
                NewMerchant(
                    id=f"m-{n}",
                    name="m",
                    category=MerchantCategory.OTHER,
                    program_code=self.code,
                    program_name="p",
                    unit_name="point",
                    connector=ConnectorKind.HOSTED,
                    connector_config=None,
                    point_value=Decimal("0.1"),
                    accrual_rate=Decimal(1),
                    expiry_months=None,
                    compensation_percent=Decimal(10),
                ),
            )
            member = await enroll(session, ADMIN, Enrollment(self.code, f"r{n}", "x"))
            account = await account_of(session, member.id, self.code)
            assert account is not None
            return account.id

        self.account_id = self.run(self.db.transaction(work))

    async def _account(self, session: Any) -> Account:
        account = await session.get(Account, self.account_id)
        assert account is not None
        return account

    def _model_expire(self) -> None:
        for lot in self.lots:
            if lot[1] is not None and lot[1] <= self.now:
                lot[0] = 0

    def _model_take(self, points: int) -> list[tuple[list[Any], int]]:
        """Consume lots soonest-expiring first; which lots gave how much."""
        order = sorted(
            (lot for lot in self.lots if lot[0] > 0),
            key=lambda lot: (lot[1] is None, lot[1] or self.now),
        )
        takes = []
        for lot in order:
            take = min(points, lot[0])
            lot[0] -= take
            points -= take
            if take:
                takes.append((lot, take))
        assert points == 0
        return takes

    def balance(self) -> int:
        return sum(lot[0] for lot in self.lots)

    @rule(points=st.integers(1, 500), days=st.one_of(st.none(), st.integers(1, 60)))
    def accrue(self, points: int, days: int | None) -> None:
        expires = self.now + dt.timedelta(days=days) if days else None

        async def work(session: Any) -> None:
            account = await self._account(session)
            await Points(session).credit(
                account, points, EntryKind.ACCRUAL, AccountKind.ISSUED, self.movement(), expires
            )

        self.run(self.db.transaction(work))
        self.lots.append([points, expires])

    @rule(points=st.integers(1, 800))
    def spend(self, points: int) -> None:
        async def work(session: Any) -> None:
            account = await self._account(session)
            await Points(session).debit(
                account, points, EntryKind.REDEMPTION, AccountKind.REDEEMED, self.movement()
            )

        self._model_expire()
        try:
            self.run(self.db.transaction(work))
        except InsufficientPoints:
            assert points > self.balance()
            return
        assert points <= self.balance()
        self._model_take(points)

    @rule(target=holds, points=st.integers(1, 300))
    def hold(self, points: int) -> str:
        async def work(session: Any) -> str:
            account = await self._account(session)
            hold = await Points(session).hold(
                account, points, self.movement(), dt.timedelta(hours=1)
            )
            return hold.id

        self._model_expire()
        try:
            hold_id: str = self.run(self.db.transaction(work))
        except InsufficientPoints:
            assert points > self.balance()
            return "none"
        self.held[hold_id] = self._model_take(points)
        return hold_id

    @rule(hold_id=consumes(holds))
    def capture(self, hold_id: str) -> None:
        if hold_id not in self.held:
            return

        async def work(session: Any) -> None:
            hold = await session.get(Hold, hold_id)
            await Points(session).capture(hold, AccountKind.REDEEMED, self.movement())

        self.run(self.db.transaction(work))
        del self.held[hold_id]

    @rule(hold_id=consumes(holds))
    def release(self, hold_id: str) -> None:
        if hold_id not in self.held:
            return

        async def work(session: Any) -> None:
            hold = await session.get(Hold, hold_id)
            await Points(session).release(hold, self.movement(), None)

        self.run(self.db.transaction(work))
        # Released points go back to the lots they came from, with those lots' expiry:
        # the share of a lot that expired meanwhile goes on to `expired`.
        for lot, take in self.held.pop(hold_id):
            lot[0] += take
        self._model_expire()

    @rule(days=st.integers(1, 90))
    def advance_and_expire(self, days: int) -> None:
        self.now += dt.timedelta(days=days)
        self.run(run_expiry(self.db, self.settings, now=self.now))
        self._model_expire()

    @invariant()
    def ledger_is_sound(self) -> None:
        async def work() -> tuple[int, list[str]]:
            async with self.db.read() as session:
                account = await self._account(session)
                return account.balance, [str(v) for v in await verify(session)]

        if not hasattr(self, "account_id"):
            return
        balance, violations = self.run(work())
        assert violations == []
        assert balance >= 0
        assert balance == self.balance()


URL: list[str] = []


def test_ledger_state_machine(db_url: str) -> None:
    URL[:] = [db_url]
    LedgerMachine.TestCase.settings = settings(
        max_examples=25 if "sqlite" in db_url else 10,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    LedgerMachine.TestCase().runTest()
