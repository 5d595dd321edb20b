"""Settlement at scale: one business date of N obligations among 20 merchants, settled.

`python -m bench.settlement [--obligations N] [--postgres URL] [--sqlite]`

For each database (SQLite in a temporary directory always; PostgreSQL in a scratch
database beside the admin URL, when it answers) this makes a fresh, migrated database,
registers 20 hosted merchants (one of them the platform), loads N random obligations
for one business date (on PostgreSQL with INSERT ... SELECT over generate_series, then
VACUUM ANALYZE as autovacuum would; on SQLite with executemany, 50,000 rows at a time;
either way in a process of its own), and then measures, in the same run on the same table:

- the baseline: the bare aggregate settlement cannot do without,
  `SELECT creditor_id, debtor_id, sum(amount) ... WHERE batch_id IS NULL GROUP BY 1, 2`
  (one run to warm the cache, then the median of three);
- the full settlement run, `settlement.netting.settle` in one `Database.transaction`:
  claim, fees, net positions, statements, payment instructions, invariants, commit.

It prints both times, their ratio, obligations settled per second, each step's share,
and the process's peak RSS before and after the run (the run must not load obligations
into Python, so the peak should barely move), then checks that the batch's net
positions sum to zero and that it holds exactly N obligations. Results go to
bench/results/settlement-<time>.json. Nothing is asserted: a failed check sets the exit
status.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Integer, Numeric, String, case, cast, func, insert, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from bench import databases, standalone
from bench.harness import peak_rss_mib, progress, rss_mib, verdicts
from bench.standalone import TableColumn, finish, opened
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import MerchantCategory, ObligationKind
from hub.merchants import register_merchant
from hub.models import NetPosition, Obligation, SettlementBatch, Statement
from hub.obligation_rules import unsettled
from settlement.netting import settle

T = TypeVar("T")

NAME = "settlement"
TITLE = "settlement: one business date, full run vs. a bare GROUP BY over the same table"
MERCHANTS = 20
CHUNK = 50_000  # rows per INSERT (PostgreSQL) or per executemany (SQLite)
FEE_BPS = 25
BASELINE_RUNS = 3
KINDS = [ObligationKind.CONVERSION.value, ObligationKind.REDEMPTION.value]
LOCAL_DAY = dt.time(12, 0)


@dataclass
class Outcome:
    """What one database did; every time in seconds, memory in MiB."""

    backend: str
    obligations: int
    load_seconds: float = 0.0
    baseline_cold_seconds: float = 0.0
    baseline_runs: list[float] = field(default_factory=list)
    settle_seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)  # seconds spent up to each report
    peak_rss_before_mib: float = 0.0
    peak_rss_after_mib: float = 0.0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0
    pairs: int = 0
    net_sum: str = ""
    statements: int = 0
    batch_obligations: int = 0
    gross: str = ""
    baseline_gross: str = ""
    unclaimed: int = 0
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def baseline_seconds(self) -> float:
        return statistics.median(self.baseline_runs)

    @property
    def ratio(self) -> float:
        return self.settle_seconds / self.baseline_seconds

    @property
    def per_second(self) -> float:
        return self.obligations / self.settle_seconds

    def summary(self) -> dict[str, Any]:
        found = asdict(self)
        for name, value in found.items():
            if isinstance(value, float):
                found[name] = round(value, 4)
        return {
            **found,
            "baseline_seconds": round(self.baseline_seconds, 4),
            "ratio": round(self.ratio, 3),
            "obligations_per_second": round(self.per_second),
        }


# ---------------------------------------------------------------- the world


async def register(db: Database) -> list[tuple[str, str]]:
    """Twenty hosted merchants, the first the platform: (merchant id, program code)."""
    found = [(f"m{i:02d}", "HUB" if i == 0 else f"P{i:02d}") for i in range(MERCHANTS)]

    async def work(session: AsyncSession) -> None:
        for i, (merchant, code) in enumerate(found):
            await register_merchant(
                session,
                standalone.hosted_merchant(
                    id=merchant,
                    name=f"Merchant {i}",
                    category=MerchantCategory.PLATFORM if i == 0 else MerchantCategory.OTHER,
                    program_code=code,
                    point_value=Decimal("0.1"),
                    expiry_months=None,
                ),
            )

    await db.transaction(work)
    return found


def _loaded(done: int, total: int, began: float) -> None:
    if done == total or done % (4 * CHUNK) == 0:
        rate = done / max(time.perf_counter() - began, 1e-9)
        progress(f"loaded {done:,} / {total:,} obligations ({rate:,.0f}/s)")


async def load_postgres(
    db: Database, merchants: list[tuple[str, str]], day: dt.date, n: int, seed: int
) -> None:
    """N obligations made inside PostgreSQL: INSERT ... SELECT over generate_series."""
    ids = postgresql.array([m for m, _ in merchants])
    codes = postgresql.array([c for _, c in merchants])
    at = dt.datetime.combine(day, LOCAL_DAY, tzinfo=Settings().tz).astimezone(dt.UTC)
    # setseed() makes random() repeatable within the session that loads.
    async with db.write() as session:
        await session.execute(select(func.setseed(seed / 2**31)))
        began = time.perf_counter()
        for start in range(1, n + 1, CHUNK):
            end = min(start + CHUNK - 1, n)
            series = func.generate_series(start, end).table_valued("n").render_derived("g")
            # random() in a subquery's select list is evaluated once per row (PostgreSQL
            # does not flatten a subquery with volatile outputs), so debtor, creditor and
            # the creditor's program agree.
            picks = select(
                series.c.n,
                cast(func.floor(func.random() * MERCHANTS), Integer).label("d"),
                cast(func.floor(func.random() * (MERCHANTS - 1)), Integer).label("k"),
                cast(func.floor(func.random() * 99_999) + 1, Integer).label("cents"),
            ).subquery()
            creditor = (picks.c.d + 1 + picks.c.k) % MERCHANTS + 1  # never the debtor
            row = {  # each column and its value, as load_sqlite's rows
                "kind": case((func.random() < 0.7, KINDS[0]), else_=KINDS[1]),
                "debtor_id": ids[picks.c.d + 1],
                "creditor_id": ids[creditor],
                "program_code": codes[creditor],
                "points": picks.c.cents,  # ten per yuan at 0.1
                "amount": cast(picks.c.cents, Numeric(18, 4)) / 100,
                "reference": literal("bench-") + cast(picks.c.n, String),
                "occurred_at": literal(at, Obligation.occurred_at.type),
                "business_date": literal(day),
                "created_at": literal(utcnow(), Obligation.created_at.type),
            }
            await session.execute(insert(Obligation).from_select(list(row), select(*row.values())))
            _loaded(end, n, began)
    # What autovacuum does to a freshly loaded table before a nightly run would see it:
    # statistics for the planner, hint bits and the visibility map set once.
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE obligations"))


async def load_sqlite(
    db: Database, merchants: list[tuple[str, str]], day: dt.date, n: int, seed: int
) -> None:
    """N obligations made in Python and inserted with executemany, CHUNK rows at a time."""
    rng = random.Random(seed)
    at = dt.datetime.combine(day, LOCAL_DAY, tzinfo=Settings().tz).astimezone(dt.UTC)
    now = utcnow()
    table = Obligation.metadata.tables[Obligation.__tablename__]
    began = time.perf_counter()
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(start + CHUNK, n)):
            d = rng.randrange(MERCHANTS)
            c = (d + 1 + rng.randrange(MERCHANTS - 1)) % MERCHANTS
            cents = rng.randint(1, 99_999)
            rows.append(
                {
                    "kind": KINDS[0] if rng.random() < 0.7 else KINDS[1],
                    "debtor_id": merchants[d][0],
                    "creditor_id": merchants[c][0],
                    "program_code": merchants[c][1],
                    "points": cents,
                    "amount": Decimal(cents).scaleb(-2),
                    "reference": f"bench-{i + 1}",
                    "occurred_at": at,
                    "business_date": day,
                    "created_at": now,
                }
            )
        async with db.write() as session:
            conn = await session.connection()
            await conn.execute(insert(table), rows)
        _loaded(start + len(rows), n, began)


# ---------------------------------------------------------------- what is measured


async def group_by(db: Database) -> tuple[float, int, Decimal]:
    """The baseline: seconds, pairs found, and the total of the amounts."""
    query = (
        select(Obligation.creditor_id, Obligation.debtor_id, func.sum(Obligation.amount))
        .where(Obligation.batch_id.is_(None))
        .group_by(Obligation.creditor_id, Obligation.debtor_id)
    )
    async with db.read() as session:
        began = time.perf_counter()
        rows = (await session.execute(query)).all()
        seconds = time.perf_counter() - began
    return seconds, len(rows), sum((Decimal(r[2]) for r in rows), Decimal(0))


class Steps:
    """The settlement run's progress reports: printed as they come, and timed."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.at: dict[str, float] = {}
        self._last_printed = ""

    def __call__(self, step: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.began
        self.at[step] = elapsed
        quarter = max(total // 4, 1)
        if step != self._last_printed or done == total or done % quarter < CHUNK:
            progress(f"settle: {step} {done:,}/{total:,} at {elapsed:.2f} s")
            self._last_printed = step

    def durations(self, total: float) -> dict[str, float]:
        """Seconds spent in each step: from the previous report to this one (and commit)."""
        found: dict[str, float] = {}
        previous = 0.0
        for step, at in self.at.items():
            found[step] = round(at - previous, 4)
            previous = at
        found["commit"] = round(total - previous, 4)
        return found


async def run_settlement(db: Database, url: str, day: dt.date) -> tuple[float, str, Steps]:
    """The full run for `day` in one transaction: seconds, the batch id, the step times."""
    config = Settings(database_url=url, platform_fee_bps=FEE_BPS)
    steps = Steps()

    async def work(session: AsyncSession) -> str:
        result = await settle(session, config, day, "bench", steps)
        return result.batch.id

    began = time.perf_counter()
    batch_id = await db.transaction(work, attempts=1)
    return time.perf_counter() - began, batch_id, steps


async def inspect(db: Database, batch_id: str, day: dt.date, outcome: Outcome) -> None:
    """Read the batch back and check what must hold of it."""
    async with db.read() as session:
        batch = await session.get(SettlementBatch, batch_id)
        assert batch is not None
        net_sum = await session.scalar(
            select(func.sum(NetPosition.net)).where(NetPosition.batch_id == batch_id)
        )
        outcome.statements = int(
            await session.scalar(
                select(func.count()).select_from(Statement).where(Statement.batch_id == batch_id)
            )
            or 0
        )
        outcome.unclaimed = int(
            await session.scalar(
                select(func.count())
                .select_from(Obligation)
                .where(unsettled(session.get_bind().dialect.name), Obligation.business_date <= day)
            )
            or 0
        )
    net = Decimal(net_sum or 0)
    outcome.net_sum = str(net)
    outcome.batch_obligations = batch.obligation_count
    outcome.gross = str(batch.gross_amount)
    outcome.checks = {
        "net positions sum to zero": net == 0,
        "batch holds N obligations": batch.obligation_count == outcome.obligations,
        "no obligation of the date left unclaimed": outcome.unclaimed == 0,
        "gross equals the baseline's total": batch.gross_amount == Decimal(outcome.baseline_gross),
    }


async def load(backend: str, url: str, n: int, seed: int, day: dt.date) -> float:
    """Register the merchants and load N obligations for `day`; the seconds it took."""
    async with opened(url) as db:
        merchants = await register(db)
        progress(f"[{backend}] {len(merchants)} merchants; loading {n:,} obligations for {day}")
        began = time.perf_counter()
        if backend == "postgres":
            await load_postgres(db, merchants, day, n, seed)
        else:
            await load_sqlite(db, merchants, day, n, seed)
        return time.perf_counter() - began


async def measure(backend: str, url: str, n: int, day: dt.date) -> Outcome:
    """The baseline, then the settlement run, then the checks, on a loaded database."""
    outcome = Outcome(backend=backend, obligations=n)
    async with opened(url) as db:
        outcome.baseline_cold_seconds, outcome.pairs, total = await group_by(db)
        for _ in range(BASELINE_RUNS):
            seconds, _, _ = await group_by(db)
            outcome.baseline_runs.append(round(seconds, 4))
        outcome.baseline_gross = str(total)
        progress(
            f"[{backend}] GROUP BY: {outcome.pairs} pairs; first run "
            f"{outcome.baseline_cold_seconds:.3f} s, then "
            + ", ".join(f"{s:.3f}" for s in outcome.baseline_runs)
            + " s"
        )

        outcome.peak_rss_before_mib = peak_rss_mib()
        outcome.rss_before_mib = rss_mib()
        seconds, batch_id, steps = await run_settlement(db, url, day)
        outcome.settle_seconds = seconds
        outcome.peak_rss_after_mib = peak_rss_mib()
        outcome.rss_after_mib = rss_mib()
        outcome.steps = steps.durations(seconds)
        progress(f"[{backend}] settled in {seconds:.2f} s: batch {batch_id}")
        await inspect(db, batch_id, day, outcome)
    return outcome


def _load_in_child(backend: str, url: str, n: int, seed: int, day: dt.date) -> float:
    return asyncio.run(load(backend, url, n, seed, day))


def _measure_in_child(backend: str, url: str, n: int, day: dt.date) -> Outcome:
    return asyncio.run(measure(backend, url, n, day))


async def in_child(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a fresh process: loading rows in Python must not raise the peak RSS
    of the process whose settlement run is measured."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


async def run(backend: str, postgres: str | None, n: int, seed: int) -> Outcome:
    """One database, made for this run and dropped after it."""
    began = time.perf_counter()
    day = (utcnow().astimezone(Settings().tz) - dt.timedelta(days=1)).date()
    async with databases.scratch(backend, postgres) as url:
        loaded = await in_child(_load_in_child, backend, url, n, seed, day)
        progress(f"[{backend}] loaded in {loaded:.1f} s")
        outcome = await in_child(_measure_in_child, backend, url, n, day)
    outcome.load_seconds = loaded
    progress(f"[{backend}] done in {time.perf_counter() - began:.0f} s")
    return outcome


# ---------------------------------------------------------------- report


COLUMNS: list[TableColumn[Outcome]] = [
    TableColumn("obligations", ">11,", lambda o: o.obligations),
    TableColumn("load s", ">7.1f", lambda o: o.load_seconds),
    TableColumn("GROUP BY s", ">10.3f", lambda o: o.baseline_seconds),
    TableColumn("settle s", ">9.2f", lambda o: o.settle_seconds),
    TableColumn("ratio", ">6.2f", lambda o: o.ratio),
    TableColumn("settled/s", ">10,.0f", lambda o: o.per_second),
    TableColumn("peak MiB before", ">15.1f", lambda o: o.peak_rss_before_mib),
    TableColumn("after", ">6.1f", lambda o: o.peak_rss_after_mib),
    TableColumn("growth", ">+6.1f", lambda o: o.peak_rss_after_mib - o.peak_rss_before_mib),
]


def table(outcomes: Sequence[Outcome]) -> str:
    lines = standalone.table(TITLE, COLUMNS, outcomes)
    for o in outcomes:
        shares = ", ".join(
            f"{step} {seconds:.2f} s ({100 * seconds / o.settle_seconds:.0f}%)"
            for step, seconds in o.steps.items()
        )
        lines.append(f"   steps [{o.backend}]: {shares}")
    for o in outcomes:
        lines.append(
            f"   checks [{o.backend}]: {verdicts(o.checks)} (net sum {o.net_sum}, batch count "
            f"{o.batch_obligations:,}, gross {Decimal(o.gross):,.2f}, "
            f"{o.statements} statements)"
        )
    lines += [
        "   ratio: settle seconds / GROUP BY seconds (median of "
        f"{BASELINE_RUNS} after one warm-up run), both on the same table in this run.",
        "   peak MiB: ru_maxrss of this process just before and just after the settle "
        "(the process that settles did not load: loading runs in a process of its own).",
    ]
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = standalone.parser(
        NAME, "Settle one business date of N obligations; compare with a bare GROUP BY."
    )
    standalone.count(parser, "--obligations", 1_000_000)
    return standalone.parsed(parser, argv)


async def main(argv: list[str]) -> int:
    args = parse(argv)
    postgres, outcomes = await standalone.on_each_database(
        args,
        f"bench.settlement: {args.obligations:,} obligations among {MERCHANTS} merchants, "
        f"fee {FEE_BPS} bps, seed {args.seed}",
        lambda backend, postgres: run(backend, postgres, args.obligations, args.seed),
    )
    options = {
        "obligations": args.obligations,
        "merchants": MERCHANTS,
        "fee_bps": FEE_BPS,
        "seed": args.seed,
        "postgres": databases.shown(postgres),
    }
    return finish(NAME, table(outcomes), outcomes, options)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
