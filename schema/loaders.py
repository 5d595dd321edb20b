"""DataLoaders, one set per request; every lookup made from a list goes through one."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from functools import cached_property
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory
from hub import eligibility, members, merchants, partner_balances, vouchers
from hub.auth import Principal
from hub.caches import Caches
from hub.db import Database, Reads, utcnow
from hub.mall import catalog
from hub.mall.pricing import PriceBook
from hub.member_view import AccountView, MemberView, member_balances, member_views
from hub.models import (
    Account,
    Member,
    Merchant,
    NetPosition,
    PaymentInstruction,
    Program,
    SettlementBatch,
    Slot,
    Statement,
    StatementCounterparty,
    Tier,
    Voucher,
)
from hub.models.mall import ListedReward
from hub.partner_balances import PartnerBalance
from hub.tiers.ladder import ladders_by_program
from hub.tiers.standing import Standing, standings
from settlement import disputes
from settlement import statements as settlement_statements
from settlement.disputes import CarriedAdjustment

H = TypeVar("H")  # what a batch reads through: a session, or a Core connection
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[AsyncSession, Sequence[K]], Awaitable[dict[K, V]]]
CoreFetch = Callable[[Reads, Sequence[K]], Awaitable[dict[K, V]]]


class _BatchLoader(Generic[H, K, V]):
    """Loads by key, the distinct keys of a batch in one read through a handle of its own
    (strawberry resolves sibling fields concurrently, and one session must not be used
    concurrently); missing keys load as None."""

    def __init__(
        self,
        open_read: Callable[[], AbstractAsyncContextManager[H]],
        fetch: Callable[[H, Sequence[K]], Awaitable[dict[K, V]]],
    ) -> None:
        self._open_read = open_read
        self._fetch = fetch

    @cached_property
    def _loader(self) -> DataLoader:
        # Made on first use: a request builds every loader and uses few of them.
        return DataLoader(self._batch)

    async def _batch(self, keys: Sequence[K]) -> list[V | None]:
        async with self._open_read() as handle:
            found = await self._fetch(handle, list(dict.fromkeys(keys)))
        return [found.get(key) for key in keys]

    async def load(self, key: K) -> V | None:
        result: V | None = await self._loader.load(key)
        return result

    async def load_many(self, keys: Sequence[K]) -> list[V | None]:
        result: list[V | None] = await self._loader.load_many(keys)
        return result

    def prime(self, key: K, value: V) -> None:
        """`value` is what a load of `key` gives in this request, without a read: a row the
        request's own transaction read, and that the loader's rule would give this caller."""
        self._loader.prime(key, value)


class KeyedLoader(_BatchLoader[AsyncSession, K, V]):
    """Loads by key in one query per batch, through a short session of its own."""

    def __init__(self, db: Database, fetch: Fetch[K, V]) -> None:
        super().__init__(db.read, fetch)


class CoreLoader(_BatchLoader[Reads, K, V]):
    """A KeyedLoader for the hot paths: one SQLAlchemy Core statement per batch, outside
    any transaction (Database.single_read), no ORM instances."""

    def __init__(self, db: Database, fetch: CoreFetch[K, V]) -> None:
        super().__init__(db.single_read, fetch)


class MerchantProgramsLoader:
    """Every program of a merchant, its primary one first, from the process's cache."""

    def __init__(self, caches: Caches) -> None:
        self._caches = caches

    async def load(self, merchant_id: str) -> list[Program]:
        programs = await self._caches.programs()
        found = [p for p in programs.by_code.values() if p.merchant_id == merchant_id]
        primary = programs.by_merchant.get(merchant_id)
        return sorted(found, key=lambda p: (p is not primary, p.code))


class ProgramLoader:
    """Programs from the process's cache (hub.caches): no read per request."""

    def __init__(self, caches: Caches, by_merchant: bool) -> None:
        self._caches = caches
        self._by_merchant = by_merchant

    async def load(self, key: str) -> Program | None:
        if self._by_merchant:
            return await self._caches.program_of_merchant(key)
        return await self._caches.program(key)

    async def load_many(self, keys: Sequence[str]) -> list[Program | None]:
        return [await self.load(key) for key in keys]


class MerchantLoader:
    """Merchants from the process's cache (kept with the programs); one the cache does not
    know yet (registered by another process since) is read, in a batch."""

    def __init__(self, caches: Caches, read: KeyedLoader[str, Merchant]) -> None:
        self._caches = caches
        self._read = read

    async def load(self, merchant_id: str) -> Merchant | None:
        kept = (await self._caches.programs()).merchants.get(merchant_id)
        return kept if kept is not None else await self._read.load(merchant_id)


class PartnerBalances:
    """Balances of connected programs, all of a request's asked at once
    (hub.partner_balances decides what is asked, kept and shown); an error becomes a field
    error with its code."""

    def __init__(self, db: Database, factory: ConnectorFactory) -> None:
        self._db = db
        self._factory = factory
        self._loader = DataLoader(self._batch)

    async def _batch(self, accounts: Sequence[AccountView]) -> list[Any]:
        # aiodataloader raises an Exception found in the results from that load(): the
        # DomainError, which the field makes its error as its caller may read it.
        return list(await partner_balances.read(self._db, self._factory, accounts))

    async def load(self, account: AccountView) -> PartnerBalance:
        result: PartnerBalance = await self._loader.load(account)
        return result


class Loaders:
    def __init__(
        self,
        db: Database,
        factory: ConnectorFactory,
        principal: Principal,
        caches: Caches,
        *,
        tz: dt.tzinfo = dt.UTC,
    ) -> None:
        self.db = db
        self.caches = caches
        # Prices are the session member's own (their tiers, credit level, age).
        self.member_id = principal.member_id
        self.tz = tz
        self._book: asyncio.Task[PriceBook] | None = None
        self.reward: CoreLoader[str, ListedReward] = CoreLoader(db, catalog.listed_by_id)
        self.slot: KeyedLoader[str, Slot] = KeyedLoader(db, catalog.slots_by_id)
        self.bookable: CoreLoader[str, bool] = CoreLoader(db, catalog.bookable)
        self.voucher_of_redemption: KeyedLoader[str, Voucher] = KeyedLoader(
            db, vouchers.by_redemption
        )
        self.batch: KeyedLoader[str, SettlementBatch] = KeyedLoader(
            db, settlement_statements.batches_by_id
        )
        self.counterparties: KeyedLoader[str, list[StatementCounterparty]] = KeyedLoader(
            db, settlement_statements.counterparties_by_statement
        )
        self.positions: KeyedLoader[str, list[NetPosition]] = KeyedLoader(
            db, settlement_statements.positions_by_batch
        )
        self.payments: KeyedLoader[str, list[PaymentInstruction]] = KeyedLoader(
            db, settlement_statements.payments_by_batch
        )
        self.statements: KeyedLoader[str, list[Statement]] = KeyedLoader(
            db, settlement_statements.statements_by_batch
        )
        self.adjustments: KeyedLoader[str, list[CarriedAdjustment]] = KeyedLoader(
            db, disputes.adjustments_by_statement
        )
        self.merchant_totals: KeyedLoader[tuple[str, str], tuple[int, Decimal]] = KeyedLoader(
            db, settlement_statements.merchant_totals
        )
        self.partner_balance = PartnerBalances(db, factory)
        # Merchants and programs from the process's cache (hub.caches).
        self.merchant = MerchantLoader(caches, KeyedLoader(db, merchants.merchants_by_id))
        self.program = ProgramLoader(caches, by_merchant=False)
        self.program_of_merchant = ProgramLoader(caches, by_merchant=True)
        self.programs_of_merchant = MerchantProgramsLoader(caches)
        self.member: KeyedLoader[str, Member] = KeyedLoader(db, members.members_by_id)
        self.visible_member: KeyedLoader[str, Member] = KeyedLoader(
            db, lambda session, ids: members.visible_members(session, principal, ids)
        )
        self.accounts_of_member: KeyedLoader[str, list[Account]] = KeyedLoader(
            db, members.accounts_by_member
        )
        self.ladder: KeyedLoader[str, list[Tier]] = KeyedLoader(db, ladders_by_program)
        self.standing: KeyedLoader[tuple[str, str], Standing] = KeyedLoader(
            db, lambda session, keys: standings(session, keys, utcnow())
        )
        # A member with its accounts, balances, holds and expiring lots: one Core statement;
        # without the lots (a row per account, not per lot) when none is asked.
        self.member_view: CoreLoader[str, MemberView] = CoreLoader(db, member_views)
        self.member_balances: CoreLoader[str, MemberView] = CoreLoader(db, member_balances)

    async def price_book(self, merchant_id: str | None = None) -> PriceBook:
        """Rates in effect and promotions, read once per request. `merchant_id`: a merchant
        whose rewards it must price; one the kept programs do not know yet (registered a
        moment ago through another process) has the programs read again, and the book
        made again."""
        if self._book is None:
            self._book = asyncio.ensure_future(self._load_book())
        book = await self._book
        unknown = merchant_id is not None and merchant_id not in book.by_merchant
        if unknown and await self.caches.program_of_merchant(str(merchant_id)) is not None:
            self._book = asyncio.ensure_future(self._load_book())
            book = await self._book
        return book

    async def _load_book(self) -> PriceBook:
        # Rates, programs and promotions from the process's cache; only a shopper is read.
        now = utcnow()
        rates, programs = await self.caches.rates(), await self.caches.programs()
        loyalty = await self.caches.loyalty()
        shopper = None
        if self.member_id is not None:
            shopper = await eligibility.shopper(self.db, loyalty, self.member_id, now, self.tz)
        return PriceBook.kept(now, rates, programs, loyalty.running(now), shopper)
