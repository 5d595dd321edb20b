"""Bulk accrual import at scale: N purchases of a till file imported, against a bare
multi-row INSERT of the same ledger rows, measured in the same run.

`python -m bench.imports [--rows N] [--chunk N] [--subscribed] [--tiers]
[--postgres URL | --sqlite]`

N is 1,000,000 for the issue's figure (`--rows 1000000`); the default is
`$HUB_BENCH_IMPORT_ROWS` or 100,000, for quick runs. For each database (SQLite in a
temporary directory always; PostgreSQL in a scratch database when it answers) this makes
two fresh, migrated databases with the same world (a hosted program and N/10 enrolled
members, loaded directly), writes one CSV file of N purchases (memberId or externalRef,
orderRef, amount, occurredAt over yesterday), and measures:

- the baseline: the entries, postings, lots and purchase amounts (what tiers qualify on)
  the import will write (the same ids, points, balances after and expiries, computed
  beforehand and not timed), inserted chunk by chunk, one transaction each, with the very
  multi-row statements the import uses (`hub.imports.bulk`), and nothing else; only the
  statements and commits are timed;
- the import: the file streamed through `hub.imports.service.receive` (read, parsed,
  checked, staged) and applied by the `ImportWorker` as its batches arrive, as for
  POST /imports/accruals (chunks of HUB_IMPORT_CHUNK_ROWS: accounts locked, orders checked,
  promotions and tiers, balances, entries, postings, lots, purchase amounts, rejections,
  staged rows consumed, the job's progress), timed from the first byte to the job
  COMPLETED ("upload s": until the last byte is staged; "rest s": the chunks still to
  apply then).

It prints both rates (rows per second), the ratio import/baseline (the issue asks >= 0.5),
the import's two phases, then checks that every row was accepted, the points credited
equal the baseline's, and `hub verify` finds nothing. With `--subscribed` a merchant
webhook subscription listens to POINTS_ACCRUED, so the import also writes one outbox event
per accrual. With `--tiers` the program has a ladder (Silver from 1,000 spent and 3
orders, Gold from 3,000 and 8, both x1 so the points stay the baseline's): each chunk also
reads its members' standings and writes the moves up with their TIER_CHANGED events.
Results go to bench/results/imports-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bench import databases, standalone
from bench.harness import progress, verdicts
from bench.standalone import TableColumn, finish, opened
from hub.auth import Principal
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import AccountKind, MerchantCategory, Role, WebhookEvent
from hub.imports import bulk, service
from hub.imports.apply import AMOUNT_COLUMNS, ENTRY_COLUMNS, LOT_COLUMNS, POSTING_COLUMNS
from hub.imports.rows import CsvReader
from hub.imports.worker import ImportWorker
from hub.ledger.points import expiry_of
from hub.merchants import register_merchant
from hub.models import (
    Account,
    AccrualAmount,
    Entry,
    ImportJob,
    Lot,
    Member,
    MemberTier,
    OutboxEvent,
    Posting,
    Tier,
    WebhookSubscription,
)
from hub.promotions import Line, points_on
from hub.validate import PurchaseWindow
from hub.verify import verify

NAME = "imports"
TITLE = "imports: a till file imported vs. a bare multi-row INSERT of the same ledger rows"
PROGRAM = "TILL"
MERCHANT = "till"
EXPIRY_MONTHS = 24
READ_BYTES = 1 << 16
JOB_LIKE = "0" * 26
DEFAULT_ROWS = int(os.environ.get("HUB_BENCH_IMPORT_ROWS", "100000"))


@dataclass
class Outcome:
    backend: str
    rows: int
    members: int
    chunk: int
    subscribed: bool
    tiers: bool = False
    moved_up: int = 0
    baseline_seconds: float = 0.0
    stage_seconds: float = 0.0
    apply_seconds: float = 0.0
    baseline_cpu: float = 0.0  # this process + the PostgreSQL backends, CPU seconds
    import_cpu: float = 0.0
    accepted: int = 0
    rejected: int = 0
    points: int = 0
    baseline_points: int = 0
    verify_violations: int = -1
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def import_seconds(self) -> float:
        return self.stage_seconds + self.apply_seconds

    @property
    def ratio(self) -> float:
        """Import rate over baseline rate (= baseline time over import time)."""
        return self.baseline_seconds / self.import_seconds

    @property
    def cpu_ratio(self) -> float:
        """The same over CPU seconds: what the work costs, whatever else runs meanwhile."""
        return self.baseline_cpu / self.import_cpu if self.import_cpu else float("nan")

    def summary(self) -> dict[str, Any]:
        found = asdict(self)
        return {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in found.items()},
            "import_seconds": round(self.import_seconds, 4),
            "import_rows_per_second": round(self.rows / self.import_seconds),
            "baseline_rows_per_second": round(self.rows / self.baseline_seconds),
            "ratio": round(self.ratio, 3),
            "cpu_ratio": round(self.cpu_ratio, 3),
        }


# ---------------------------------------------------------------- the world and the file


@dataclass(frozen=True)
class Purchase:
    member: int
    order_ref: str
    amount: Decimal
    occurred: dt.datetime


def purchases(rows: int, members: int, seed: int, day_start: dt.datetime) -> Iterator[Purchase]:
    """The same N purchases every time for a seed: the file and the baseline agree."""
    rng = random.Random(seed)
    for i in range(rows):
        cents = rng.randint(100, 50_000)
        yield Purchase(
            member=rng.randrange(members),
            order_ref=f"ORD-{seed}-{i:08d}",
            amount=Decimal(cents).scaleb(-2),
            occurred=day_start + dt.timedelta(seconds=rng.randrange(86_400)),
        )


def member_id(i: int) -> str:
    return f"mbr_bench{i:08d}"


def write_file(path: Path, rows: int, members: int, seed: int, day_start: dt.datetime) -> int:
    """The till's CSV; half the lines name the member by membership number."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("memberId,externalRef,orderRef,amount,occurredAt\n")
        for p in purchases(rows, members, seed, day_start):
            who = f"{member_id(p.member)}," if p.member % 2 else f",R{p.member:08d}"
            out.write(f"{who},{p.order_ref},{p.amount},{p.occurred.isoformat()}\n")
    return path.stat().st_size


LADDER = [("SILVER", Decimal(1000), 3), ("GOLD", Decimal(3000), 8)]  # x1: points unchanged


async def make_world(db: Database, members: int, subscribed: bool, tiers: bool = False) -> None:
    """A hosted program (with a ladder of tiers if asked) and its members, loaded directly
    (not measured)."""

    async def register(session: AsyncSession) -> None:
        await register_merchant(
            session,
            standalone.hosted_merchant(
                id=MERCHANT,
                name="Till",
                category=MerchantCategory.RETAIL,
                program_code=PROGRAM,
                point_value=Decimal("0.01"),
                expiry_months=EXPIRY_MONTHS,
            ),
        )
        for rank, (code, spend, orders) in enumerate(LADDER if tiers else []):
            session.add(
                Tier(
                    program_code=PROGRAM,
                    code=code,
                    rank=rank,
                    name=code.title(),
                    min_spend=spend,
                    min_orders=orders,
                    accrual_multiplier=Decimal(1),
                    redemption_discount_percent=Decimal(0),
                    benefits="[]",
                )
            )
        if subscribed:
            session.add(
                WebhookSubscription(
                    id="whs_bench",
                    merchant_id=MERCHANT,
                    url="http://127.0.0.1:9/hooks",
                    events="POINTS_ACCRUED",
                    secret="whsec_bench",
                    active=True,
                    created_by="bench",
                    created_at=utcnow() - dt.timedelta(minutes=1),
                )
            )

    await db.transaction(register)
    now = utcnow()
    for start in range(0, members, 20_000):
        span = range(start, min(start + 20_000, members))

        async def load(session: AsyncSession, span: range = span) -> None:
            await bulk.insert_rows(
                session,
                Member.__table__,  # type: ignore[arg-type]
                ("id", "display_name", "phone", "birth_date", "created_at"),
                [(member_id(i), f"Member {i}", None, None, now) for i in span],
            )
            await bulk.insert_rows(
                session,
                Account.__table__,  # type: ignore[arg-type]
                ("program_code", "kind", "member_id", "external_ref", "balance", "created_at"),
                [
                    (PROGRAM, AccountKind.MEMBER.value, member_id(i), f"R{i:08d}", 0, now)
                    for i in span
                ],
            )

        await db.transaction(load)
    if not db.is_sqlite:  # statistics of the world, as autovacuum would have them by now
        async with db.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM ANALYZE")


async def account_ids(db: Database) -> tuple[dict[str, int], int]:
    async with db.read() as session:
        rows = await session.execute(
            select(Account.member_id, Account.id).where(Account.program_code == PROGRAM)
        )
        found = {m: i for m, i in rows if m is not None}
        issued = await session.scalar(
            select(Account.id).where(
                Account.program_code == PROGRAM, Account.kind == AccountKind.ISSUED.value
            )
        )
    assert issued is not None
    return found, issued


# ---------------------------------------------------------------- the two measurements


async def backend_cpu(db: Database) -> float:
    """CPU seconds of the PostgreSQL backends serving this database (their processes are
    this run's own connections, made fresh for the phase); 0 for SQLite, which works in
    this process."""
    if db.is_sqlite:
        return 0.0
    async with db.read() as session:
        pids = list(
            await session.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        )
    return sum(_process_cpu(pid) for pid in pids)


def _process_cpu(pid: int) -> float:
    """user + system CPU seconds of a local process (0 if it cannot be read: PostgreSQL on
    another machine, whose CPU is then not counted)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def baseline(
    url: str, rows: int, members: int, seed: int, day_start: dt.datetime, chunk: int
) -> tuple[float, float, int]:
    """Seconds (and CPU seconds) spent in the multi-row INSERTs and commits of the same
    ledger rows."""
    settings = Settings(database_url=url)
    async with opened(url) as db:
        accounts, issued = await account_ids(db)
        balances: dict[int, int] = {}
        spent = cpu = 0.0
        total = 0
        entry_id = 0
        stream = purchases(rows, members, seed, day_start)
        while True:
            batch = [p for _, p in zip(range(chunk), stream, strict=False)]
            if not batch:
                break
            entries: list[tuple[Any, ...]] = []
            postings: list[tuple[Any, ...]] = []
            lots: list[tuple[Any, ...]] = []
            amounts: list[tuple[Any, ...]] = []
            for p in batch:  # built before the clock starts
                entry_id += 1
                account = accounts[member_id(p.member)]
                points = points_on([Line(p.amount)], Decimal(1), [])
                balance = balances[account] = balances.get(account, 0) + points
                total += points
                entries.append(
                    (
                        entry_id,
                        "ACCRUAL",
                        PROGRAM,
                        member_id(p.member),
                        "bench",
                        f"imp_{JOB_LIKE}:{entry_id + 1}",  # as long as the import's
                        p.occurred,
                        settings.business_date(p.occurred),
                        p.order_ref,
                        f"purchase of {p.amount}",
                    )
                )
                postings.append((entry_id, account, points, balance))
                postings.append((entry_id, issued, -points, None))
                lots.append(
                    (
                        account,
                        entry_id,
                        points,
                        points,
                        expiry_of(p.occurred, EXPIRY_MONTHS),
                        p.occurred,
                    )
                )
                amounts.append((entry_id, PROGRAM, member_id(p.member), p.amount, p.occurred))
            began, began_cpu = time.perf_counter(), time.process_time()
            async with db.write() as session:
                await bulk.insert_rows(session, Entry.__table__, ENTRY_COLUMNS, entries)  # type: ignore[arg-type]
                await bulk.insert_rows(session, Posting.__table__, POSTING_COLUMNS, postings)  # type: ignore[arg-type]
                await bulk.insert_rows(session, Lot.__table__, LOT_COLUMNS, lots)  # type: ignore[arg-type]
                await bulk.insert_rows(session, AccrualAmount.__table__, AMOUNT_COLUMNS, amounts)  # type: ignore[arg-type]
            spent += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
            if entry_id % (chunk * 40) == 0:
                progress(f"baseline {entry_id:,} rows, {spent:.1f} s")
        return spent, cpu + await backend_cpu(db), total


async def run_import(url: str, path: Path, chunk: int, outcome: Outcome) -> None:
    settings = Settings(database_url=url, import_chunk_rows=chunk)
    db = Database(url)
    worker = ImportWorker(db, settings)
    try:
        principal = Principal(key_id="bench", role=Role.ADMIN)

        async def body() -> AsyncIterator[bytes]:
            with path.open("rb") as handle:
                while data := handle.read(READ_BYTES):
                    yield data

        done = 0

        def report(chunk_done: Any) -> None:
            nonlocal done
            done += chunk_done.lines
            if done and done % (chunk * 40) == 0:
                progress(f"applied {done:,} lines, {time.perf_counter() - began:.1f} s")

        began, began_cpu = time.perf_counter(), time.process_time()
        worker.progress = report
        received = await service.receive(
            db,
            settings,
            principal,
            PROGRAM,
            CsvReader(PurchaseWindow(utcnow(), settings.accrual_backdate_days)),
            body(),
            "bench",
            worker.holder,
            arrived=worker.kick,  # as POST /imports/accruals and the CLI do
        )
        staged = time.perf_counter()
        outcome.stage_seconds = staged - began
        progress(f"received {received.total:,} lines in {outcome.stage_seconds:.1f} s")
        assert received.job_id is not None

        worker.kick(received.job_id)
        await worker.drain()
        outcome.apply_seconds = time.perf_counter() - staged
        outcome.import_cpu = time.process_time() - began_cpu + await backend_cpu(db)
        async with db.read() as session:
            job = await session.get(ImportJob, received.job_id)
            assert job is not None
            outcome.accepted, outcome.rejected, outcome.points = (
                job.accepted,
                job.rejected,
                job.points,
            )
            progress("hub verify ...")
            outcome.verify_violations = len(await verify(session))
            ledger = await session.scalar(
                select(func.sum(Posting.amount)).where(Posting.amount > 0)
            )
            events = await session.scalar(
                select(func.count()).where(OutboxEvent.type == WebhookEvent.POINTS_ACCRUED.value)
            )
            outcome.moved_up = int(
                await session.scalar(
                    select(func.count()).where(OutboxEvent.type == WebhookEvent.TIER_CHANGED.value)
                )
                or 0
            )
            placed = await session.scalar(select(func.count()).select_from(MemberTier))
        outcome.checks["every row accepted"] = job.accepted == outcome.rows
        outcome.checks["points as the baseline"] = job.points == outcome.baseline_points
        outcome.checks["ledger holds the points"] = int(ledger or 0) == job.points
        outcome.checks["hub verify clean"] = outcome.verify_violations == 0
        wanted = job.accepted if outcome.subscribed else 0
        outcome.checks[f"{wanted:,} POINTS_ACCRUED events"] = events == wanted
        if outcome.tiers:
            outcome.checks["members moved up, each with TIER_CHANGED"] = (
                0 < int(placed or 0) <= outcome.moved_up
            )
    finally:
        await worker.close()
        await db.dispose()


@asynccontextmanager
async def world(
    backend: str, postgres: str | None, members: int, subscribed: bool, tiers: bool
) -> AsyncIterator[str]:
    """A scratch database with the world made in it, its URL: the baseline and the import
    each get one, the same, so that neither finds the other's rows."""
    async with databases.scratch(backend, postgres) as url:
        async with opened(url) as db:
            await make_world(db, members, subscribed, tiers)
        yield url


async def measure(
    backend: str,
    postgres: str | None,
    rows: int,
    chunk: int,
    subscribed: bool,
    seed: int,
    tiers: bool = False,
) -> Outcome:
    members = max(1_000, rows // 10)
    outcome = Outcome(backend, rows, members, chunk, subscribed, tiers)
    settings = Settings()
    local = utcnow().astimezone(settings.tz) - dt.timedelta(days=1)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="hub-bench-imports-") as tmp:
        path = Path(tmp) / "till.csv"
        size = write_file(path, rows, members, seed, day_start)
        progress(f"[{backend}] file of {rows:,} lines, {size / 2**20:.1f} MiB")
        async with world(backend, postgres, members, subscribed, tiers) as url:
            progress(f"[{backend}] baseline: the same rows, bare multi-row INSERTs")
            (
                outcome.baseline_seconds,
                outcome.baseline_cpu,
                outcome.baseline_points,
            ) = await baseline(url, rows, members, seed, day_start, chunk)
        async with world(backend, postgres, members, subscribed, tiers) as url:
            progress(f"[{backend}] import")
            await run_import(url, path, chunk, outcome)
    return outcome


# ---------------------------------------------------------------- report


COLUMNS: list[TableColumn[Outcome]] = [
    TableColumn("rows", ">10,", lambda o: o.rows),
    TableColumn("baseline s", ">10.2f", lambda o: o.baseline_seconds),
    TableColumn("cpu s", ">7.2f", lambda o: o.baseline_cpu),
    TableColumn("rows/s", ">9,.0f", lambda o: o.rows / o.baseline_seconds),
    TableColumn("import s", ">9.2f", lambda o: o.import_seconds),
    TableColumn("cpu s", ">7.2f", lambda o: o.import_cpu),
    TableColumn("rows/s", ">9,.0f", lambda o: o.rows / o.import_seconds),
    TableColumn("ratio", ">6.2f", lambda o: o.ratio),
    TableColumn("cpu ratio", ">9.2f", lambda o: o.cpu_ratio),
    TableColumn("upload s", ">8.2f", lambda o: o.stage_seconds),
    TableColumn("rest s", ">8.2f", lambda o: o.apply_seconds),
]


def table(outcomes: list[Outcome]) -> str:
    lines = standalone.table(TITLE, COLUMNS, outcomes)
    for o in outcomes:
        lines.append(
            f"   [{o.backend}] {o.members:,} members, chunks of {o.chunk:,}, events "
            f"{'written (a subscription listens)' if o.subscribed else 'none (no subscriber)'}"
            + (f", 2 tiers ({o.moved_up:,} moves up)" if o.tiers else "")
            + f"; {verdicts(o.checks)}"
        )
    lines.append(
        "   ratio: import rate / baseline rate (>= 0.5 asked). baseline s counts only the "
        "INSERT statements and commits; import s runs from the file's first byte to COMPLETED."
    )
    lines.append(
        "   cpu ratio: the same with CPU seconds (this process, all threads, plus the "
        "PostgreSQL backends of the run): steadier than wall time on a shared machine."
    )
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = standalone.parser(
        NAME, "Import N purchases; compare with a bare multi-row INSERT of the same rows."
    )
    parser.add_argument(
        "--rows",
        type=standalone.at_least(1),
        default=str(DEFAULT_ROWS),  # a string, which argparse checks as one given
        metavar="N",
        help=f"lines in the file ($HUB_BENCH_IMPORT_ROWS or {DEFAULT_ROWS:,}; "
        "1000000 for the issue's figure)",
    )
    parser.add_argument(
        "--chunk", type=int, default=Settings().import_chunk_rows, help="rows per chunk"
    )
    parser.add_argument(
        "--subscribed", action="store_true", help="a webhook subscription listens: events too"
    )
    parser.add_argument(
        "--tiers", action="store_true", help="the program has tiers: members move up as it goes"
    )
    return standalone.parsed(parser, argv)


async def main(argv: list[str]) -> int:
    args = parse(argv)
    postgres, backends = await standalone.servers(args)
    outcomes = [
        await measure(
            backend, postgres, args.rows, args.chunk, args.subscribed, args.seed, args.tiers
        )
        for backend in backends
    ]
    options = {k: v for k, v in vars(args).items() if k != "postgres"}
    return finish(NAME, table(outcomes), outcomes, options)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
