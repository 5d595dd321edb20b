"""What every request needs and almost never changes, kept in each process's memory:
API keys by the hash of their secret, merchants and their programs, exchange rate versions,
and promotions and tier ladders (what accruePoints reads, and the mall's price book).

Invalidation: each kind has a counter in `cache_versions`, raised (`bump`) in the same
transaction as the change (a key revoked, a merchant registered, a rate version added).
Each process reads the counters at most once per `check_seconds` (HUB_CACHE_CHECK_SECONDS,
2 s), on the first request after that interval, and drops what changed. So a revoked key is
refused by every worker and replica at most `check_seconds` after the revocation commits
(the process that revoked it refuses it from the next request on), and nothing is read per
request. The counters are read before anything is loaded, and a load that began before a
drop is not kept (a generation per kind), so what is kept is never older than the last
counters read.

Rates change with time as well as by writes: every version is kept (with its period), and
the one in effect is chosen at the moment asked, as `hub.exchange.rates` does in SQL.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, TypeVar

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth import Principal, hash_secret
from hub.db import Database, read_again
from hub.enums import AccountKind, MerchantCategory, ProgramKind, Role
from hub.models import (
    Account,
    ApiKey,
    CacheVersion,
    ExchangeRate,
    Merchant,
    Program,
    Promotion,
    Tier,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

KEYS = "api_keys"
PROGRAMS = "programs"
RATES = "rates"
LOYALTY = "loyalty"  # promotions and tier ladders
KINDS = (KEYS, PROGRAMS, RATES, LOYALTY)
_LIVE_KEY = select(ApiKey.id, ApiKey.role, ApiKey.merchant_id).where(
    ApiKey.secret_hash == bindparam("digest"), ApiKey.revoked_at.is_(None)
)
_VERSIONS = select(CacheVersion.name, CacheVersion.version)
MAX_KEYS = 10_000  # secrets kept; beyond, the map starts again (an attacker's misses are not kept)


async def bump(session: AsyncSession, *names: str) -> None:
    """Raise these kinds' counters in the caller's transaction: every process drops its copy
    within its check interval once the transaction commits."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for name in names:
        statement = insert(CacheVersion).values(name=name, version=1)
        statement = statement.on_conflict_do_update(
            index_elements=[CacheVersion.name], set_={"version": CacheVersion.version + 1}
        )
        await session.execute(statement)


@dataclass(frozen=True)
class Programs:
    """Every program, by code and by merchant, the merchants (a merchant is registered with
    its first program and not changed after), and the platform's program code."""

    by_code: dict[str, Program]
    by_merchant: dict[str, Program]
    platform: str | None
    merchants: dict[str, Merchant] = field(default_factory=dict)
    # Each program's system accounts (ISSUED, REDEEMED, ...), made with the program.
    system: dict[tuple[str, AccountKind], Account] = field(default_factory=dict)


@dataclass(frozen=True)
class Rates:
    """Every version of every pair's rate, newest first per pair (as `rates_in_effect`
    orders them: latest to start, then latest created)."""

    versions: dict[tuple[str, str], list[ExchangeRate]] = field(default_factory=dict)
    # The versions in effect, by pair, for each stretch of time in which none starts or
    # ends (by the stretch's index in _bounds): made once, shared by every request's book.
    _effective: dict[int, Mapping[tuple[str, str], ExchangeRate]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def _bounds(self) -> list[dt.datetime]:
        """Every moment a version starts or ends, in order."""
        return sorted(
            {r.effective_from for versions in self.versions.values() for r in versions}
            | {
                r.effective_to
                for versions in self.versions.values()
                for r in versions
                if r.effective_to is not None
            }
        )

    def effective(self, at: dt.datetime) -> Mapping[tuple[str, str], ExchangeRate]:
        """`in_effect(at)` by pair, read-only: the same mapping for every moment of a
        stretch in which no version starts or ends (a request's prices read it, and made
        it again from every version each time)."""
        stretch = bisect.bisect_right(self._bounds, at)
        found = self._effective.get(stretch)
        if found is None:
            found = MappingProxyType({(r.from_code, r.to_code): r for r in self.in_effect(at)})
            self._effective[stretch] = found
        return found

    def at(self, from_code: str, to_code: str, at: dt.datetime) -> ExchangeRate | None:
        """The version in effect at `at` (`hub.exchange.rates.rate_for`)."""
        for rate in self.versions.get((from_code, to_code), ()):
            if rate.effective_from <= at and (rate.effective_to is None or rate.effective_to > at):
                return rate
        return None

    @classmethod
    def of(cls, rates: Iterable[ExchangeRate]) -> Rates:
        """The versions given, ordered as `_load_rates` reads them."""
        versions: dict[tuple[str, str], list[ExchangeRate]] = {}
        for rate in sorted(rates, key=lambda r: (r.effective_from, r.created_at), reverse=True):
            versions.setdefault((rate.from_code, rate.to_code), []).append(rate)
        return cls(versions)

    def stretches(self) -> Iterator[tuple[ExchangeRate, dt.datetime, dt.datetime | None]]:
        """Each time a version is the one in effect: (version, from, until; None: open)."""
        for (source, target), versions in self.versions.items():
            bounds = sorted(
                {r.effective_from for r in versions}
                | {r.effective_to for r in versions if r.effective_to is not None}
            )
            for i, start in enumerate(bounds):
                rate = self.at(source, target, start)
                if rate is not None:
                    yield rate, start, bounds[i + 1] if i + 1 < len(bounds) else None

    def in_effect(
        self, at: dt.datetime, from_code: str | None = None, to_code: str | None = None
    ) -> list[ExchangeRate]:
        """One version per pair, the one in effect (`hub.exchange.rates.rates_in_effect`)."""
        found = []
        for source, target in sorted(self.versions):
            if (from_code and source != from_code) or (to_code and target != to_code):
                continue
            rate = self.at(source, target, at)
            if rate is not None:
                found.append(rate)
        return found


@dataclass(frozen=True)
class Loyalty:
    """Every program's promotions (oldest first, as memos name them) and tier ladder
    (lowest first)."""

    promotions: dict[str, list[Promotion]] = field(default_factory=dict)
    ladders: dict[str, list[Tier]] = field(default_factory=dict)

    def active(self, program_code: str, at: dt.datetime) -> list[Promotion]:
        """The program's promotions running at `at` (`hub.promotions.active`)."""
        return [p for p in self.promotions.get(program_code, ()) if p.starts_at <= at < p.ends_at]

    def running(self, at: dt.datetime) -> list[Promotion]:
        """Every program's promotions running at `at` (what a price book applies)."""
        return [p for program in self.promotions for p in self.active(program, at)]

    def ladder(self, program_code: str) -> list[Tier]:
        """The program's tiers (`hub.tiers.ladder.ladder`)."""
        return list(self.ladders.get(program_code, ()))


class Caches:
    """One per process (on the Runtime)."""

    def __init__(self, db: Database, check_seconds: float) -> None:
        self._db = db
        self.check_seconds = check_seconds
        self._checked_at = -math.inf  # time.monotonic() when the counters were last read
        self._known: dict[str, int] | None = None
        self._generation = dict.fromkeys(KINDS, 0)
        self._check = asyncio.Lock()
        self._loading = {kind: asyncio.Lock() for kind in (PROGRAMS, RATES, LOYALTY)}
        self._keys: dict[str, Principal] = {}
        self._live_ids: dict[str, bool] = {}  # key id -> live, for member sessions' minters
        self._kept: dict[str, Any] = {}  # PROGRAMS: Programs, RATES: Rates, LOYALTY: Loyalty
        self.checks = 0  # counter reads so far (tests and metrics)

    # ------------------------------------------------------------ invalidation

    async def fresh(self) -> None:
        """Read the counters if the last read is older than the interval; drop what changed.
        Raises when the database does not answer (nothing kept is trusted then)."""
        if time.monotonic() - self._checked_at < self.check_seconds:
            return
        async with self._check:
            started = time.monotonic()
            if started - self._checked_at < self.check_seconds:
                return  # another request read them while this one waited
            try:
                rows = await self._versions()
            except Exception:
                self.drop(*KINDS)
                raise
            self._counted(rows, started)

    async def rates_changed(self) -> bool:
        """Read the counters now, whatever the interval; drop what changed; whether the rates
        did. For a request that found no rate where another process may have set one a
        moment ago: one small read on the kept connections (the caller may hold one of the
        pool's in its transaction), and a load only when a rate did change."""
        async with self._check:
            started = time.monotonic()
            return RATES in self._counted(await self._versions(), started)

    async def _versions(self) -> list[Any]:
        """The counters, read on the kept connections: whoever holds `_check` never waits
        for the pool, which requests inside their transactions (rates_changed) may hold
        to the last connection while they wait for `_check`."""
        async with self._db.kept_single_read() as reads:
            return list((await reads.execute(_VERSIONS)).all())

    def _counted(self, rows: Iterable[Any], started: float) -> list[str]:
        """Keep the counters read at `started`; drop the kinds whose counter moved."""
        versions = {name: int(version) for name, version in rows}
        known = self._known
        changed = [k for k in KINDS if known is None or known.get(k, 0) != versions.get(k, 0)]
        if changed:
            self.drop(*changed)
        self._known = versions
        self._checked_at = started
        self.checks += 1
        return changed

    def recheck(self) -> None:
        """Read the counters on the next request: this process changed something."""
        self._checked_at = -math.inf

    def drop(self, *kinds: str) -> None:
        for kind in kinds:
            self._generation[kind] += 1
            if kind == KEYS:
                self._keys = {}
                self._live_ids = {}
            else:
                self._kept.pop(kind, None)

    # ------------------------------------------------------------ API keys

    async def principal(self, secret: str) -> Principal | None:
        """The principal of a live key with this secret, or None (not kept: a key created
        elsewhere works at once)."""
        digest = hash_secret(secret)
        found = self._keys.get(digest)
        if found is not None:
            return found
        generation = self._generation[KEYS]
        async with self._db.single_read() as conn:
            row = (await conn.execute(_LIVE_KEY, {"digest": digest})).first()
        if row is None:
            return None
        principal = Principal(key_id=row.id, role=Role(row.role), merchant_id=row.merchant_id)
        if generation == self._generation[KEYS]:
            if len(self._keys) >= MAX_KEYS:
                self._keys = {}
            self._keys[digest] = principal
        return principal

    async def key_is_live(self, key_id: str) -> bool:
        """Whether the key with this id exists and is not revoked: a member session ends with
        the key that minted it. Kept like the keys themselves."""
        found = self._live_ids.get(key_id)
        if found is not None:
            return found
        generation = self._generation[KEYS]
        async with self._db.single_read() as conn:
            row = (
                await conn.execute(
                    select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                )
            ).first()
        live = row is not None
        if generation == self._generation[KEYS]:
            if len(self._live_ids) >= MAX_KEYS:
                self._live_ids = {}
            self._live_ids[key_id] = live
        return live

    # ------------------------------------------------------------ programs

    async def programs(self, missing: Iterable[str] = ()) -> Programs:
        """Every program; read again when one of `missing` is not among them (a program
        registered since, by another process, before this one read the counters)."""
        return await self._kept_or_load(
            PROGRAMS, _load_programs, lambda kept: all(code in kept.by_code for code in missing)
        )

    def system_account_now(self, program_code: str, kind: AccountKind) -> Account | None:
        """A program's system account if the programs are kept now; None when not."""
        current: Programs | None = self._kept.get(PROGRAMS)
        return current.system.get((program_code, kind)) if current is not None else None

    def program_now(self, code: str) -> Program | None:
        """The program if it is kept now; None when not (the caller reads it)."""
        current: Programs | None = self._kept.get(PROGRAMS)
        return current.by_code.get(code) if current is not None else None

    def primary_now(self, merchant_id: str) -> Program | None:
        """The merchant's STANDARD program if the programs are kept now and know it; None
        when not (the caller reads it)."""
        current: Programs | None = self._kept.get(PROGRAMS)
        return current.by_merchant.get(merchant_id) if current is not None else None

    async def program(self, code: str) -> Program | None:
        return (await self.programs([code])).by_code.get(code)

    async def program_of_merchant(self, merchant_id: str) -> Program | None:
        programs = await self.programs()
        found = programs.by_merchant.get(merchant_id)
        if found is None:
            # A merchant registered since: read once more (an unknown merchant costs a read).
            programs = await self._reload_programs()
            found = programs.by_merchant.get(merchant_id)
        return found

    async def _reload_programs(self) -> Programs:
        self.drop(PROGRAMS)
        return await self.programs()

    # ------------------------------------------------------------ rates

    async def rates(self) -> Rates:
        return await self._kept_or_load(RATES, _load_rates)

    # ------------------------------------------------------------ promotions and tiers

    async def loyalty(self) -> Loyalty:
        """Every promotion and tier ladder (a promotion's period is checked when asked)."""
        return await self._kept_or_load(LOYALTY, _load_loyalty)

    # ------------------------------------------------------------ loading

    async def _kept_or_load(
        self,
        kind: str,
        load: Callable[[AsyncSession], Awaitable[T]],
        usable: Callable[[T], bool] = lambda _: True,
    ) -> T:
        """What is kept of `kind` if `usable`, else loaded once for every request that waits
        on it; kept only if nothing dropped it while it loaded."""

        def kept() -> T | None:
            found: T | None = self._kept.get(kind)
            return found if found is not None and usable(found) else None

        if (current := kept()) is not None:
            return current
        async with self._loading[kind]:
            if (current := kept()) is not None:
                return current  # another request loaded it while this one waited
            generation = self._generation[kind]

            # On connections of their own: the waiters may hold the pool's (Database.kept_read);
            # read again on a connection lost under it (a database restarting).
            async def reload() -> T:
                async with self._db.kept_read() as session:
                    return await load(session)

            loaded = await read_again(reload)
            if generation == self._generation[kind]:
                self._kept[kind] = loaded
            return loaded


async def _load_programs(session: AsyncSession) -> Programs:
    rows = (
        await session.execute(
            select(Program, Merchant).join(Merchant, Merchant.id == Program.merchant_id)
        )
    ).all()
    system = {
        (a.program_code, a.kind): a
        for a in await session.scalars(select(Account).where(Account.member_id.is_(None)))
    }
    primary = [p for p, _ in rows if p.kind == ProgramKind.STANDARD]
    platform = [
        p.code
        for p, m in rows
        if m.category == MerchantCategory.PLATFORM and p.kind == ProgramKind.STANDARD
    ]
    return Programs(
        by_code={p.code: p for p, _ in rows},
        by_merchant={p.merchant_id: p for p in primary},  # each merchant's primary
        platform=platform[0] if platform else None,
        system=system,
        merchants={m.id: m for _, m in rows},
    )


async def _load_rates(session: AsyncSession) -> Rates:
    rows = await session.scalars(
        select(ExchangeRate).order_by(
            ExchangeRate.from_code,
            ExchangeRate.to_code,
            ExchangeRate.effective_from.desc(),
            ExchangeRate.created_at.desc(),
        )
    )
    versions: dict[tuple[str, str], list[ExchangeRate]] = {}
    for rate in rows:
        versions.setdefault((rate.from_code, rate.to_code), []).append(rate)
    return Rates(versions)


async def _load_loyalty(session: AsyncSession) -> Loyalty:
    promotions: dict[str, list[Promotion]] = {}
    ladders: dict[str, list[Tier]] = {}
    for promotion in await session.scalars(select(Promotion).order_by(Promotion.id)):
        promotions.setdefault(promotion.program_code, []).append(promotion)
    for tier in await session.scalars(select(Tier).order_by(Tier.program_code, Tier.rank)):
        ladders.setdefault(tier.program_code, []).append(tier)
    return Loyalty(promotions, ladders)
