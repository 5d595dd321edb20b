"""Merchant insights at scale: N ledger entries over a year, then every insights figure
against a bare GROUP BY over the same entries.

`python -m bench.insights [--entries N] [--members M] [--postgres URL] [--sqlite]`

For each database (SQLite in a temporary directory always; PostgreSQL in a scratch
database beside the admin URL, when it answers) this makes a fresh, migrated database,
registers two hosted merchants, and loads, set-based (INSERT ... SELECT over a series of
numbers made in the database: generate_series on PostgreSQL, a recursive CTE on SQLite),
M members with their accounts and tiers, N entries with two postings each (80% in the
measured merchant's program; accruals, redemptions, expiries and conversions spread over
365 business dates), the purchase amount of every accrual, and a redemption row for
every redemption entry of the measured merchant. PostgreSQL then gets VACUUM ANALYZE, as
autovacuum would give it; SQLite gets nothing, as the hub gives it nothing.

Then, in the same run on the same tables:

- the baseline, `SELECT program_code, kind, count(*) FROM entries GROUP BY 1, 2`: the
  bare aggregate over every entry (one run to warm the cache, then the median of three);
- every figure of `merchantInsights` for the measured merchant, with the hub's own
  queries (hub.insights), over the whole year and over its last 30 days (each the median
  of three after a warm-up run).

It prints each figure's time, the totals and their ratio to the baseline, the process's
peak RSS after the load and after the figures (no entry ever comes into Python, so it does
not grow with N: about 90 MiB at 20,000 and at 100,000 entries), and checks the figures
against what was loaded. Results go to bench/results/insights-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from bench import databases, standalone
from bench.harness import peak_rss_mib, progress, verdicts
from bench.standalone import TableColumn, finish, opened
from hub import insights
from hub.config import Settings
from hub.db import Database, ExactDecimal, UTCDateTime, utcnow
from hub.enums import AccountKind, EntryKind, MerchantCategory
from hub.merchants import register_merchant
from hub.models import (
    Account,
    AccrualAmount,
    Entry,
    Member,
    MemberTier,
    Posting,
    Redemption,
    Reward,
    Tier,
)

NAME = "insights"
TITLE = "insights: every figure of merchantInsights vs. a bare GROUP BY over the same entries"
CHUNK = 100_000  # numbers per INSERT ... SELECT
DAYS = 365
AMOUNTS = 500  # purchase amounts 1..500, points the same (one point per unit)
REWARDS = 30
RUNS = 3
ACCOUNT_BASE = {"P0": 1_000_000_000, "P1": 2_000_000_000}  # member account id = base + n
TIERS = [("SILVER", 0, 3), ("GOLD", 1, 10)]  # (code, rank, every n-th member holds it)

# Scratch tables for the load only: each row is bound through the hub's own column types,
# so that dates, instants and amounts are stored exactly as the hub stores them.
_scratch = MetaData()
DAYS_TABLE = Table(
    "bench_days",
    _scratch,
    Column("d", Integer, primary_key=True),
    Column("business_date", Date),
    Column("at", UTCDateTime()),
)
AMOUNTS_TABLE = Table(
    "bench_amounts",
    _scratch,
    Column("a", Integer, primary_key=True),
    Column("amount", ExactDecimal()),
)


@dataclass
class Outcome:
    backend: str
    entries: int
    members: int
    load_seconds: float = 0.0
    peak_rss_load_mib: float = 0.0  # this process's peak RSS once the entries are loaded
    peak_rss_mib: float = 0.0  # and once every figure is measured
    baseline_cold_seconds: float = 0.0
    baseline_runs: list[float] = field(default_factory=list)
    year: dict[str, float] = field(default_factory=dict)  # figure -> median seconds
    month: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def baseline_seconds(self) -> float:
        return statistics.median(self.baseline_runs)

    def ratio(self, which: dict[str, float]) -> float:
        return sum(which.values()) / self.baseline_seconds

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "baseline_seconds": round(self.baseline_seconds, 4),
            "year_seconds": round(sum(self.year.values()), 4),
            "month_seconds": round(sum(self.month.values()), 4),
            "year_ratio": round(self.ratio(self.year), 3),
            "month_ratio": round(self.ratio(self.month), 3),
        }


# ---------------------------------------------------------------- the world


def _numbers(dialect: str, start: int, end: int) -> Any:
    """A derived table with one column `n`: start..end, made in the database."""
    if dialect == "postgresql":
        # BIGINT: the spreading products (n * 104729) pass 2**31.
        bounds = cast(literal(start), BigInteger), cast(literal(end), BigInteger)
        return func.generate_series(*bounds).table_valued("n").render_derived("g")
    series = select(literal(start).label("n")).cte("g", recursive=True)
    return series.union_all(select(series.c.n + 1).where(series.c.n < end))


def _mod(value: Any, modulus: int) -> Any:
    return value % modulus


async def _merchants(session: AsyncSession) -> None:
    for i in range(2):
        await register_merchant(
            session,
            standalone.hosted_merchant(
                id=f"m{i}",
                name=f"Merchant {i}",
                category=MerchantCategory.PLATFORM if i == 0 else MerchantCategory.OTHER,
                program_code=f"P{i}",
                point_value=Decimal("0.1"),
                expiry_months=12,
            ),
        )
    for code, rank, _ in TIERS:
        session.add(
            Tier(
                program_code="P0",
                code=code,
                rank=rank,
                name=code.title(),
                min_spend=Decimal(1000 * (rank + 1)),
                min_orders=rank + 2,
                accrual_multiplier=Decimal(1),
                redemption_discount_percent=Decimal(0),
                benefits="[]",
            )
        )
    for r in range(REWARDS):
        session.add(
            Reward(
                id=f"m0:R{r:02d}",
                merchant_id="m0",
                ref=f"R{r:02d}",
                kind="GOODS",
                title=f"Reward {r}",
                price=100 + 10 * r,
                source="HOSTED",
            )
        )


async def load(db: Database, n_entries: int, n_members: int, today: dt.date) -> None:
    """The world, set-based: members, accounts, tiers, entries, postings, amounts."""
    dialect = db.dialect
    tz = Settings().tz
    now = utcnow()
    async with db.write() as session:
        await _merchants(session)
        conn = await session.connection()
        await conn.run_sync(_scratch.create_all)
        await conn.execute(
            insert(DAYS_TABLE),
            [
                {
                    "d": d,
                    "business_date": today - dt.timedelta(days=d),
                    "at": dt.datetime.combine(
                        today - dt.timedelta(days=d), dt.time(12), tzinfo=tz
                    ).astimezone(dt.UTC),
                }
                for d in range(DAYS)
            ],
        )
        await conn.execute(
            insert(AMOUNTS_TABLE), [{"a": a, "amount": Decimal(a + 1)} for a in range(AMOUNTS)]
        )
    system = await _system_accounts(db)
    stamp = literal(now, UTCDateTime())

    # Members, each with an account in P0; every 4th also in P1; tiers held in P0.
    g = _numbers(dialect, 1, n_members)
    member_id = literal("b") + cast(g.c.n, String)
    await _insert(
        db,
        Member,
        ["id", "display_name", "created_at"],
        select(member_id, literal("Member ") + cast(g.c.n, String), stamp),
    )
    for code, every in (("P0", 1), ("P1", 4)):
        g = _numbers(dialect, 1, n_members)
        member_id = literal("b") + cast(g.c.n, String)
        await _insert(
            db,
            Account,
            ["id", "program_code", "kind", "member_id", "external_ref", "balance", "created_at"],
            select(
                ACCOUNT_BASE[code] + g.c.n,
                literal(code),
                literal(AccountKind.MEMBER.value),
                member_id,
                literal(code + "-") + cast(g.c.n, String),
                literal(0),
                stamp,
            ).where(_mod(g.c.n, every) == 0),
        )
    for code, _, every in TIERS:
        g = _numbers(dialect, 1, n_members)
        await _insert(
            db,
            MemberTier,
            ["program_code", "member_id", "tier_code", "since"],
            select(literal("P0"), literal("b") + cast(g.c.n, String), literal(code), stamp).where(
                _mod(g.c.n, every) == 0,
                # GOLD members are not SILVER as well
                *([] if code == "GOLD" else [_mod(g.c.n, 10) != 0]),
            ),
        )
    progress(f"{n_members:,} members, their accounts and tiers")

    began = time.perf_counter()
    for start in range(1, n_entries + 1, CHUNK):
        end = min(start + CHUNK - 1, n_entries)
        await _entries(db, dialect, system, start, end, n_members)
        rate = end / max(time.perf_counter() - began, 1e-9)
        progress(f"loaded {end:,} / {n_entries:,} entries with their postings ({rate:,.0f}/s)")
    async with db.write() as session:
        conn = await session.connection()
        await conn.run_sync(_scratch.drop_all)
    if dialect == "postgresql":
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))


async def _system_accounts(db: Database) -> dict[tuple[str, str], int]:
    async with db.read() as session:
        rows = await session.execute(
            select(Account.program_code, Account.kind, Account.id).where(
                Account.member_id.is_(None)
            )
        )
        return {(p, k): i for p, k, i in rows}


async def _insert(db: Database, model: Any, columns: list[str], rows: Select[Any]) -> None:
    async with db.write() as session:
        await session.execute(insert(model).from_select(columns, rows))


async def _entries(
    db: Database,
    dialect: str,
    system: dict[tuple[str, str], int],
    start: int,
    end: int,
    n_members: int,
) -> None:
    """Entries start..end (their ids), two postings each, and what accruals were for."""

    def shape() -> tuple[Any, Any, Any, Any, Any, Any, Any]:
        g = _numbers(dialect, start, end)
        n = g.c.n
        in_p1 = _mod(n, 5) == 0
        program = case((in_p1, literal("P1")), else_=literal("P0"))
        slot = _mod(n, 20)
        kind = case(
            (slot < 14, literal(EntryKind.ACCRUAL.value)),
            (slot < 17, literal(EntryKind.REDEMPTION.value)),
            (slot < 18, literal(EntryKind.EXPIRY.value)),
            else_=literal(EntryKind.CONVERSION_OUT.value),
        )
        # Members of P1 are every 4th member.
        member = case(
            (in_p1, 4 * (1 + _mod(n * 7919, n_members // 4))), else_=1 + _mod(n * 7919, n_members)
        )
        return g, n, program, slot, kind, member, _mod(n * 104729, DAYS)

    g, n, program, slot, kind, member, day = shape()
    days = DAYS_TABLE.alias("days")
    await _insert(
        db,
        Entry,
        [
            "id",
            "kind",
            "program_code",
            "member_id",
            "actor",
            "occurred_at",
            "business_date",
            "reference",
        ],
        select(
            n,
            kind,
            program,
            literal("b") + cast(member, String),
            literal("bench"),
            days.c.at,
            days.c.business_date,
            literal("e") + cast(n, String),
        ).join_from(g, days, days.c.d == day),
    )
    # The member's posting and the system account's: signs by kind.
    amounts = AMOUNTS_TABLE.alias("amounts")
    for side in ("member", "system"):
        g, n, program, slot, kind, member, day = shape()
        points = 1 + _mod(n * 31, AMOUNTS)
        earns = slot < 14
        if side == "member":
            account = case((program == "P1", ACCOUNT_BASE["P1"]), else_=ACCOUNT_BASE["P0"]) + member
            amount = case((earns, points), else_=-points)
        else:
            account = case(
                *[
                    ((program == code) & (kind == k.value), system[(code, a.value)])
                    for code in ("P0", "P1")
                    for k, a in (
                        (EntryKind.ACCRUAL, AccountKind.ISSUED),
                        (EntryKind.REDEMPTION, AccountKind.REDEEMED),
                        (EntryKind.EXPIRY, AccountKind.EXPIRED),
                    )
                ],
                (program == "P1", system[("P1", AccountKind.EXCHANGE.value)]),
                else_=system[("P0", AccountKind.EXCHANGE.value)],
            )
            amount = case((earns, -points), else_=points)
        await _insert(db, Posting, ["entry_id", "account_id", "amount"], select(n, account, amount))
    g, n, program, slot, kind, member, day = shape()
    await _insert(
        db,
        AccrualAmount,
        ["entry_id", "program_code", "member_id", "amount", "occurred_at"],
        select(n, program, literal("b") + cast(member, String), amounts.c.amount, days.c.at)
        .join_from(g, days, days.c.d == day)
        .join(amounts, amounts.c.a == _mod(n * 31, AMOUNTS))
        .where(slot < 14),
    )
    g, n, program, slot, kind, member, day = shape()
    reward = func.min(_mod(n * 13, REWARDS), _mod(n * 17, REWARDS))  # the first ones more often
    if dialect == "postgresql":
        reward = func.least(_mod(n * 13, REWARDS), _mod(n * 17, REWARDS))
    reward_id = (
        literal("m0:R")
        + case((reward < 10, literal("0")), else_=literal(""))
        + cast(reward, String)
    )
    await _insert(
        db,
        Redemption,
        [
            "id",
            "member_id",
            "reward_id",
            "merchant_id",
            "quantity",
            "paid_with",
            "points",
            "settlement_price",
            "status",
            "step",
            "actor",
            "attempts",
            "created_at",
            "updated_at",
        ],
        select(
            literal("rb") + cast(n, String),
            literal("b") + cast(member, String),
            reward_id,
            literal("m0"),
            literal(1),
            literal("P0"),
            1 + _mod(n * 31, AMOUNTS),
            literal(Decimal("1.0"), ExactDecimal()),
            literal("CONFIRMED"),
            literal("DONE"),
            literal("bench"),
            literal(0),
            days.c.at,
            days.c.at,
        )
        .join_from(g, days, days.c.d == day)
        .where(slot >= 14, slot < 17, _mod(n, 5) != 0),
    )


# ---------------------------------------------------------------- what is measured


async def group_by(db: Database) -> tuple[float, int]:
    """The baseline: seconds, and the entries counted."""
    query = select(Entry.program_code, Entry.kind, func.count()).group_by(
        Entry.program_code, Entry.kind
    )
    async with db.read() as session:
        began = time.perf_counter()
        rows = (await session.execute(query)).all()
        seconds = time.perf_counter() - began
    return seconds, sum(int(r[2]) for r in rows)


Figure = Callable[[AsyncSession, insights.Scope, insights.Period], Awaitable[Any]]
FIGURES: dict[str, Figure] = {
    "ledger (issued, redeemed, expired, daily)": insights.ledger_figures,
    "active members": insights.active_members,
    "members per tier": lambda s, scope, _: insights.tier_counts(s, scope),
    "top rewards": insights.top_rewards,
    "rising members": insights.rising_members,
}


async def figures(db: Database, period: insights.Period) -> tuple[dict[str, float], dict[str, Any]]:
    """Each figure's median seconds (after a warm-up run) and its last answer."""
    times: dict[str, float] = {}
    answers: dict[str, Any] = {}
    async with db.read() as session:
        scope = await insights.scope_of(session, "m0")
    assert scope is not None
    for name, figure in FIGURES.items():
        runs = []
        for attempt in range(RUNS + 1):
            async with db.read() as session:
                began = time.perf_counter()
                answer = await figure(session, scope, period)
                seconds = time.perf_counter() - began
            if attempt:
                runs.append(seconds)
        times[name] = statistics.median(runs)
        answers[name] = answer
    return times, answers


def _expected(n_entries: int, first_day: int, last_day: int) -> dict[str, int]:
    """What the loader put in P0 over days-ago first_day..last_day (computed here)."""
    issued = redeemed = expired = 0
    for n in range(1, n_entries + 1):
        if n % 5 == 0 or not first_day <= (n * 104729) % DAYS <= last_day:
            continue
        points, slot = 1 + (n * 31) % AMOUNTS, n % 20
        if slot < 14:
            issued += points
        elif slot < 17:
            redeemed += points
        elif slot < 18:
            expired += points
    return {"issued": issued, "redeemed": redeemed, "expired": expired}


async def measure(
    backend: str, url: str, n_entries: int, n_members: int, today: dt.date
) -> Outcome:
    outcome = Outcome(backend=backend, entries=n_entries, members=n_members)
    tz = Settings().tz
    async with opened(url) as db:
        outcome.baseline_cold_seconds, counted = await group_by(db)
        for _ in range(RUNS):
            outcome.baseline_runs.append(round((await group_by(db))[0], 4))
        progress(
            f"[{backend}] GROUP BY over {counted:,} entries: first "
            f"{outcome.baseline_cold_seconds:.3f} s, then "
            + ", ".join(f"{s:.3f}" for s in outcome.baseline_runs)
            + " s"
        )
        year = insights.Period.checked(today - dt.timedelta(days=DAYS - 1), today, tz)
        month = insights.Period.checked(today - dt.timedelta(days=29), today, tz)
        outcome.year, answers = await figures(db, year)
        outcome.month, month_answers = await figures(db, month)
        for label, times in (("year", outcome.year), ("30 days", outcome.month)):
            progress(
                f"[{backend}] {label}: " + ", ".join(f"{k} {v:.3f} s" for k, v in times.items())
            )
        ledger: insights.LedgerFigures = answers["ledger (issued, redeemed, expired, daily)"]
        month_ledger: insights.LedgerFigures = month_answers[
            "ledger (issued, redeemed, expired, daily)"
        ]
        tiers: dict[int | None, int] = answers["members per tier"]
        top: list[insights.RewardCount] = answers["top rewards"]
        outcome.figures = {
            "issued": ledger.issued,
            "redeemed": ledger.redeemed,
            "expired": ledger.expired,
            "active_members": answers["active members"],
            "month_active_members": month_answers["active members"],
            "members_per_tier": sorted(tiers.values()),
            "top_rewards": [(r.reward.id, r.redemptions, r.points) for r in top[:3]],
            "rising_members": len(answers["rising members"]),
        }
        year_expected = _expected(n_entries, 0, DAYS - 1)
        month_expected = _expected(n_entries, 0, 29)
        outcome.checks = {
            "GROUP BY counts every entry": counted == n_entries,
            "the year's figures are what was loaded": {
                "issued": ledger.issued,
                "redeemed": ledger.redeemed,
                "expired": ledger.expired,
            }
            == year_expected,
            "the 30 days' figures are what was loaded": {
                "issued": month_ledger.issued,
                "redeemed": month_ledger.redeemed,
                "expired": month_ledger.expired,
            }
            == month_expected,
            "every member of P0 has one tier count": sum(tiers.values()) == n_members,
            "top rewards most redeemed first": [r.redemptions for r in top]
            == sorted((r.redemptions for r in top), reverse=True),
        }
    return outcome


async def run(backend: str, postgres: str | None, n_entries: int, n_members: int) -> Outcome:
    today = utcnow().astimezone(Settings().tz).date()
    async with databases.scratch(backend, postgres) as url:
        began = time.perf_counter()
        async with opened(url) as db:
            await load(db, n_entries, n_members, today)
        loaded = time.perf_counter() - began
        peak_load = peak_rss_mib()
        progress(f"[{backend}] loaded in {loaded:.1f} s (peak RSS {peak_load:.0f} MiB)")
        outcome = await measure(backend, url, n_entries, n_members, today)
    outcome.load_seconds = loaded
    outcome.peak_rss_load_mib = round(peak_load, 1)
    outcome.peak_rss_mib = round(peak_rss_mib(), 1)
    return outcome


# ---------------------------------------------------------------- report


COLUMNS: list[TableColumn[Outcome]] = [
    TableColumn("entries", ">10,", lambda o: o.entries),
    TableColumn("load s", ">7.1f", lambda o: o.load_seconds),
    TableColumn("GROUP BY s", ">10.3f", lambda o: o.baseline_seconds),
    TableColumn("year s", ">8.3f", lambda o: sum(o.year.values())),
    TableColumn("ratio", ">6.2f", lambda o: o.ratio(o.year)),
    TableColumn("30 days s", ">9.3f", lambda o: sum(o.month.values())),
    TableColumn("ratio", ">6.2f", lambda o: o.ratio(o.month)),
]


def table(outcomes: Sequence[Outcome]) -> str:
    lines = standalone.table(TITLE, COLUMNS, outcomes)
    for o in outcomes:
        for label, times in (("year", o.year), ("30 days", o.month)):
            parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in times.items())
            lines.append(f"   {label} [{o.backend}]: {parts}")
    for o in outcomes:
        lines.append(f"   checks [{o.backend}]: {verdicts(o.checks)}")
        lines.append(
            f"   peak RSS [{o.backend}]: {o.peak_rss_load_mib:.0f} MiB after the load, "
            f"{o.peak_rss_mib:.0f} MiB after the figures"
        )
        lines.append(f"   figures [{o.backend}]: {o.figures}")
    lines.append(
        "   ratio: the figures' seconds (each the median of "
        f"{RUNS} after a warm-up) over the GROUP BY's (likewise), same tables, same run."
    )
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = standalone.parser(
        NAME, "merchantInsights over N ledger entries; compare with a bare GROUP BY."
    )
    standalone.count(parser, "--entries", 1_000_000)
    standalone.count(parser, "--members", 20_000, metavar="M", low=4)
    return standalone.parsed(parser, argv, seed=False)


async def main(argv: list[str]) -> int:
    args = parse(argv)
    postgres, outcomes = await standalone.on_each_database(
        args,
        f"bench.insights: {args.entries:,} entries, {args.members:,} members",
        lambda backend, postgres: run(backend, postgres, args.entries, args.members),
    )
    options = {
        "entries": args.entries,
        "members": args.members,
        "postgres": databases.shown(postgres),
    }
    return finish(NAME, table(outcomes), outcomes, options)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
