"""Issue 3: the ledger's hot paths over HTTP, each against a baseline in the same run.

1. `member(id) { accounts { balance } }` per second, against `query { hello }` on a
   plain strawberry schema served the same way (uvicorn on loopback, its own process,
   the same clients). The ratio is what the hub's auth, loaders and database reads
   cost on top of strawberry and HTTP.
2. accruePoints per second, against a raw SQLAlchemy Core transaction making the same
   writes (an idempotency row, an entry, two postings, a balance update, a lot) on the
   same database with as many concurrent writers. The ratio is what validation, the
   idempotency and duplicate-order checks, the ORM and GraphQL cost on top of the writes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import databases, servers
from bench.client import Client, WrongAnswer, admin, clients
from bench.counters import Probe
from bench.harness import (
    THROUGHPUT_NOTES,
    Op,
    Options,
    Phase,
    Report,
    Row,
    alternating,
    profile_phase,
    progress,
)
from bench.world import accounts, hosted_world, hub_settings, raw_engine
from hub.db import utcnow
from hub.enums import AccountKind, EntryKind
from hub.ledger.points import expiry_of
from hub.models import Account, Entry, IdempotencyRecord, Lot, Posting

NAME = "ledger"
TITLE = "ledger (issue 3): member balances and accruePoints over HTTP"

MEMBER = "query Balances($id: ID!) { member(id: $id) { accounts { balance } } }"
HELLO = "query { hello }"
ACCRUE = """mutation Accrue($input: AccruePointsInput!) {
  accruePoints(input: $input) { points userErrors { code } }
}"""
POINTS = 10  # per accrual: amount 10.00 at 1 point per unit


async def run(options: Options) -> Report:
    report = Report(NAME, TITLE)
    async with (
        servers.trivial(options.loop) as trivial,
        clients(trivial.url, options.clients) as cs,
    ):
        hello = [_hello(c) for c in cs]
        for backend in databases.backends(options.postgres):
            baseline = Phase("trivial strawberry query", backend, hello, trivial.counters)
            async with databases.scratch(backend, options.postgres) as url:
                await _backend(report, options, backend, url, baseline)
    report.notes += [
        "the trivial query reads no database: it is measured in turns with the member query "
        "of each database, so each ratio compares figures taken in the same seconds.",
        *THROUGHPUT_NOTES,
    ]
    return report


async def _backend(report: Report, options: Options, backend: str, url: str, hello: Phase) -> None:
    async with servers.hub(hub_settings(url), options.loop) as served:
        async with admin(served.url) as api:
            progress(f"setting up {options.clients} members [{backend}]")
            world = await hosted_world(api, options.clients)
        async with (
            clients(served.url, options.clients) as cs,
            raw_accruals(url, world.members) as (raw_ops, raw_probe),
        ):
            pairs = list(zip(cs, world.members, strict=True))
            reads = [_member(c, m) for c, m in pairs]
            phase = Phase("member balances (HTTP)", backend, reads, served.counters)
            trivial, query = await alternating([hello, phase], options)
            report.add(Row(trivial))
            report.add(Row(query, trivial))
            await profile_phase(options, served, report, "member", backend, reads)

            counter = itertools.count()
            writes = [_accrue(c, m, counter) for c, m in pairs]
            raw, accrued = await alternating(
                [
                    Phase("raw SQL accrual transaction", backend, raw_ops, raw_probe),
                    Phase("accruePoints (HTTP)", backend, writes, served.counters),
                ],
                options,
            )
            report.add(Row(raw))
            report.add(Row(accrued, raw))
            await profile_phase(options, served, report, "accrue", backend, writes)


def _hello(client: Client) -> Op:
    async def op() -> None:
        data = await client.data(HELLO)
        if data != {"hello": "world"}:
            raise WrongAnswer(str(data))

    return op


def _member(client: Client, member: str) -> Op:
    variables = {"id": member}

    async def op() -> None:
        data = await client.data(MEMBER, variables)
        if len(data["member"]["accounts"]) != 3:
            raise WrongAnswer(str(data))

    return op


def _accrue(client: Client, member: str, counter: itertools.count[int]) -> Op:
    return client.writes(
        ACCRUE,
        "accruePoints",
        lambda n: (
            {"memberId": member, "program": "HUB", "amount": f"{POINTS}.00"}
            | {"orderRef": f"bench-{n}", "idempotencyKey": f"bench-accrue-{n}"}
        ),
        lambda payload: bool(payload["points"] == POINTS),
        counter,
    )


@asynccontextmanager
async def raw_accruals(url: str, members: list[str]) -> AsyncIterator[tuple[list[Op], Probe]]:
    """One writer per member doing an accrual's writes as Core statements, one
    transaction each, through an engine configured as the hub's; and its probe."""
    found = await accounts(url, "HUB", members)
    issued = found.system[AccountKind.ISSUED]
    counter = itertools.count()
    async with raw_engine(url) as (engine, raw_probe):

        def writer(member: str) -> Op:
            account = found.member[member]

            async def op() -> None:
                n = next(counter)
                async with engine.begin() as conn:
                    await accrual_writes(conn, member, account, issued, f"raw-{n}")

            return op

        yield [writer(m) for m in members], raw_probe


async def accrual_writes(
    conn: AsyncConnection, member: str, account: int, issued: int, ref: str
) -> None:
    """An idempotency row, an entry, two postings, a balance update and a lot."""
    now = utcnow()
    result = json.dumps({"entry_id": None, "points": POINTS})
    await conn.execute(
        insert(IdempotencyRecord).values(
            scope="bench",
            key=ref,
            operation="accruePoints",
            request_hash=hashlib.sha256(ref.encode()).hexdigest(),
            result=result,
            created_at=now,
        )
    )
    entry = await conn.scalar(
        insert(Entry)
        .values(
            kind=EntryKind.ACCRUAL.value,
            program_code="HUB",
            member_id=member,
            actor="bench",
            idempotency_key=ref,
            occurred_at=now,
            business_date=now.date(),
            reference=ref,
        )
        .returning(Entry.id)
    )
    balance = await conn.scalar(
        update(Account)
        .where(Account.id == account, Account.balance + POINTS >= 0)
        .values(balance=Account.balance + POINTS)
        .returning(Account.balance)
    )
    await conn.execute(
        insert(Posting),
        [
            {"entry_id": entry, "account_id": account, "amount": POINTS, "balance_after": balance},
            {"entry_id": entry, "account_id": issued, "amount": -POINTS, "balance_after": None},
        ],
    )
    await conn.execute(
        insert(Lot).values(
            account_id=account,
            entry_id=entry,
            points=POINTS,
            remaining=POINTS,
            expires_at=expiry_of(now, None),
            created_at=now,
        )
    )
