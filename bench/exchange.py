"""Issue 4: convertPoints between two hosted programs, against two baselines.

1. A raw SQLAlchemy Core transfer transaction on the same database with as many
   concurrent writers: debit one balance, credit another, two entries with two postings
   each, one obligation row. The ratio is what the saga, the rate lookup, the daily-limit
   check, lots, idempotency, the ORM and GraphQL cost on top of the essential writes.
2. pgbench's TPC-B-like transaction (three updates, a select, an insert) on the same
   PostgreSQL server with as many clients, in a scratch database: what this server does
   with a minimal write transaction sent by a C client.

The hub and the raw transaction take turns (harness.alternating) on the same database;
pgbench runs on its own afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal

from sqlalchemy import insert, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import databases, servers
from bench.client import Client, admin, clients
from bench.counters import Probe
from bench.harness import (
    THROUGHPUT_NOTES,
    Measurement,
    Op,
    Options,
    Phase,
    Report,
    Row,
    alternating,
    profile_phase,
    progress,
)
from bench.world import Accounts, accounts, hosted_world, hub_settings, raw_engine
from hub.db import utcnow
from hub.enums import AccountKind, EntryKind, ObligationKind
from hub.errors import InsufficientPoints
from hub.models import Account, Entry, Obligation, Posting

NAME = "exchange"
TITLE = "exchange (issue 4): convertPoints, hosted to hosted"

CONVERT = """mutation Convert($input: ConvertPointsInput!) {
  convertPoints(input: $input) { conversion { status pointsCredited } userErrors { code } }
}"""
POINTS = 10  # per conversion, HUB -> TEA at 1:1
STARTING = 1_000_000  # each member's HUB points: enough for any run
PGBENCH_SECONDS = 10


async def run(options: Options) -> Report:
    report = Report(NAME, TITLE)
    converted: dict[str, Measurement] = {}
    for backend in databases.backends(options.postgres):
        async with databases.scratch(backend, options.postgres) as url:
            converted[backend] = await _backend(report, options, backend, url)
    if options.postgres:
        tpcb = await pgbench(options.postgres, options.clients)
        report.add(Row(tpcb, note=tpcb_note(tpcb)))
        report.add(Row(converted["postgres"], tpcb, note="against pgbench TPC-B"))
    report.notes += THROUGHPUT_NOTES
    return report


async def _backend(report: Report, options: Options, backend: str, url: str) -> Measurement:
    async with servers.hub(hub_settings(url), options.loop) as served:
        async with admin(served.url) as api:
            progress(f"setting up {options.clients} members [{backend}]")
            world = await hosted_world(api, options.clients, starting_points=STARTING)
        async with (
            clients(served.url, options.clients) as cs,
            raw_transfers(url, world.members) as (raw_ops, grouped_ops, raw_probe),
        ):
            counter = itertools.count()
            ops = [_convert(c, m, counter) for c, m in zip(cs, world.members, strict=True)]
            raw, grouped, converted = await alternating(
                [
                    Phase("raw SQL transfer transaction", backend, raw_ops, raw_probe),
                    Phase("raw SQL transfers, group commit", backend, grouped_ops, raw_probe),
                    Phase("convertPoints (HTTP)", backend, ops, served.counters),
                ],
                options,
            )
            await profile_phase(options, served, report, "convert", backend, ops)
    report.add(Row(raw))
    report.add(Row(grouped, raw, note="the ceiling group commit could reach"))
    report.add(Row(converted, raw))
    return converted


def _convert(client: Client, member: str, counter: itertools.count[int]) -> Op:
    return client.writes(
        CONVERT,
        "convertPoints",
        lambda n: (
            {"memberId": member, "from": "HUB", "to": "TEA", "points": POINTS}
            | {"idempotencyKey": f"bench-convert-{n}"}
        ),
        lambda payload: (payload["conversion"] or {}).get("status") == "COMPLETED",
        counter,
    )


@asynccontextmanager
async def raw_transfers(
    url: str, members: list[str]
) -> AsyncIterator[tuple[list[Op], list[Op], Probe]]:
    """One writer per member doing a transfer's writes as Core statements, through an
    engine configured as the hub's: one transaction each, and (the second list) with
    group commit; and their probe."""
    source = await accounts(url, "HUB", members)
    target = await accounts(url, "TEA", members)
    counter = itertools.count()
    async with raw_engine(url) as (engine, raw_probe):

        def transfer(member: str) -> Op:
            async def op() -> None:
                ref = f"raw-{next(counter)}"
                async with engine.begin() as conn:
                    await transfer_writes(conn, member, source, target, ref)

            return op

        group = GroupCommit(engine.begin)

        def grouped(member: str) -> Op:
            async def op() -> None:
                ref = f"raw-{next(counter)}"
                await group.run(lambda conn: transfer_writes(conn, member, source, target, ref))

            return op

        yield [transfer(m) for m in members], [grouped(m) for m in members], raw_probe


class GroupCommit:
    """Group commit, as TigerBeetle and Formance batch: the writes that arrive while a
    transaction is being gathered (a millisecond, or while the one before commits) go
    into one transaction, and each caller is answered after its commit. A failing write
    fails its whole group here (the raw transfers never fail); in the hub each would run
    under a savepoint and be retried alone."""

    WINDOW_SECONDS = 0.001

    def __init__(self, begin: Callable[[], AbstractAsyncContextManager[AsyncConnection]]) -> None:
        self.begin = begin
        self.waiting: list[
            tuple[Callable[[AsyncConnection], Awaitable[None]], asyncio.Future[None]]
        ] = []
        self.committer: asyncio.Task[None] | None = None

    async def run(self, write: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((write, done))
        if self.committer is None or self.committer.done():
            self.committer = asyncio.create_task(self._commit_all())
        await done

    async def _commit_all(self) -> None:
        await asyncio.sleep(self.WINDOW_SECONDS)
        while self.waiting:
            group, self.waiting = self.waiting, []
            try:
                async with self.begin() as conn:
                    for write, _ in group:
                        await write(conn)
            except Exception as error:
                for _, done in group:
                    done.set_exception(error)
            else:
                for _, done in group:
                    done.set_result(None)


async def transfer_writes(
    conn: AsyncConnection, member: str, source: Accounts, target: Accounts, ref: str
) -> None:
    """Debit, credit, two entries of two postings, one obligation: in account-id order."""
    now = utcnow()
    legs = [
        ("HUB", source, -POINTS, EntryKind.CONVERSION_OUT),
        ("TEA", target, POINTS, EntryKind.CONVERSION_IN),
    ]
    legs.sort(key=lambda leg: leg[1].member[member])
    for program, found, amount, kind in legs:
        account = found.member[member]
        balance = await conn.scalar(
            update(Account)
            .where(Account.id == account, Account.balance + amount >= 0)
            .values(balance=Account.balance + amount)
            .returning(Account.balance)
        )
        if balance is None:
            raise InsufficientPoints(f"account {account}")
        entry = await conn.scalar(
            insert(Entry)
            .values(
                kind=kind.value,
                program_code=program,
                member_id=member,
                actor="bench",
                idempotency_key=f"{ref}:{program}",
                occurred_at=now,
                business_date=now.date(),
                reference=ref,
            )
            .returning(Entry.id)
        )
        await conn.execute(
            insert(Posting),
            [
                {"entry_id": entry, "account_id": account, "amount": amount},
                {
                    "entry_id": entry,
                    "account_id": found.system[AccountKind.EXCHANGE],
                    "amount": -amount,
                },
            ],
        )
    await conn.execute(
        insert(Obligation).values(
            kind=ObligationKind.CONVERSION.value,
            debtor_id="haowu",
            creditor_id="teahouse",
            program_code="TEA",
            points=POINTS,
            amount=Decimal(POINTS) * Decimal("0.10"),
            reference=ref,
            occurred_at=now,
            business_date=now.date(),
            created_at=now,
        )
    )


# ---------------------------------------------------------------- pgbench


async def pgbench(admin_url: str, clients: int) -> Measurement:
    """`pgbench -i` then `pgbench -T 10 -c clients` in a scratch database on the same server."""
    binary = shutil.which("pgbench") or "/usr/bin/pgbench"
    async with databases.postgres_database(admin_url) as url:
        args = _connection_args(url.render_as_string(hide_password=False))
        env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
        scale = max(1, clients)  # one branch per client: no single hot branch row
        progress(f"pgbench -i -s {scale} (scratch database {url.database})")
        await _run([binary, "-i", "-q", "-s", str(scale), *args], env)
        threads = min(clients, os.cpu_count() or 1)
        progress(f"pgbench -T {PGBENCH_SECONDS} -c {clients} -j {threads} (TPC-B-like)")
        out = await _run(
            [
                binary,
                "-T",
                str(PGBENCH_SECONDS),
                "-c",
                str(clients),
                "-j",
                str(threads),
                "-P",
                "5",
                *args,
            ],
            env,
        )
    processed = int(_find(r"number of transactions actually processed: (\d+)", out))
    tps = float(_find(r"tps = ([\d.]+) \(without initial connection time\)", out))
    average = float(_find(r"latency average = ([\d.]+) ms", out))
    measured = Measurement(
        label="pgbench TPC-B",
        backend="postgres",
        ops=processed,
        seconds=processed / tps,
        latencies=[],
        extra={"tps": tps, "latency_average_ms": average, "scale": scale, "clients": clients},
    )
    progress(f"   {processed} transactions, {tps:,.0f} tps, latency average {average} ms")
    return measured


def tpcb_note(measured: Measurement) -> str:
    found = measured.extra
    return f"pgbench -s {found['scale']}, latency average {found['latency_average_ms']} ms"


def _connection_args(url: str) -> list[str]:
    parsed = make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    if parsed.username:
        args += ["-U", parsed.username]
    return [*args, str(parsed.database)]


async def _run(command: list[str], env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert process.stdout is not None
    lines = []
    async for raw in process.stdout:
        line = raw.decode().rstrip()
        lines.append(line)
        if line.startswith("progress:"):
            progress(f"   {line}")
    code = await process.wait()
    output = "\n".join(lines)
    if code != 0:
        raise RuntimeError(f"{command[0]} failed ({code}):\n{output}")
    return output


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"pgbench said nothing matching {pattern!r}:\n{text}")
    return match.group(1)
