"""`python -m bench.ab BEFORE AFTER`: two versions of the hub served side by side, the same
requests to each in interleaved one-second slices, and the server CPU each request cost.

BEFORE and AFTER are source trees (a directory, or a git revision, checked out into a
temporary worktree). Each is served by its own `hub serve` process over a database of its
own, with the same world: the platform's program and twenty hosted shops with a reward
each (the rewards page), three hosted programs and a member per client (convertPoints).
Slices alternate which version goes first, so a noisy moment on the machine costs both
alike; the answer is each version's median CPU per request (from /proc: the server and its
children) and the median of AFTER / BEFORE slice by slice, the figure to trust on a
machine whose speed drifts by more than the change measured.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import databases, load
from bench.client import Client, clients
from bench.exchange import _convert
from bench.world import hosted_world
from tests.helpers import CANCEL, Api, create_key, member_session, register, set_rate, upsert_reward

ROOT = Path(__file__).resolve().parent.parent
SHOPS = 20
PAGE = """query Page {
  rewards(first: 100) {
    edges { node { id kind title price priceIn(program: "HUB") merchant { id } } }
  }
}"""
OPERATIONS = ("page", "trivial", "balance", "convert", "redeem", "cancel")
# A storefront acting for the member's session, as most of bench.load's requests are.
STOREFRONT = "storefront"


@dataclass
class Served:
    label: str
    pid: int
    url: str

    def cpu_seconds(self) -> float:
        """CPU time of the server and its children (uvicorn's workers), from /proc."""
        pids = [self.pid]
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        pids += [int(p) for p in children.read_text().split()]
        ticks = 0
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(stat[11]) + int(stat[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def source_tree(given: str) -> Iterator[Path]:
    """A directory as it is, or a git revision checked out into a temporary worktree."""
    if Path(given).is_dir():
        yield Path(given).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="hub-ab-") as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), given], check=True, capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False)


@dataclass(frozen=True)
class Shopper:
    """The member, and the storefront key and session token that act for them."""

    member: str
    key: str
    token: str


async def _world(url: str) -> Shopper:
    """The shops and their rewards, and the converting and redeeming member."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        api = Api(http, None)
        world = await hosted_world(api, members=1, starting_points=1_000_000)
        for i in range(SHOPS):
            await register(api, f"shop{i:02d}", f"S{i:02d}", category="RETAIL")
            await set_rate(api, "HUB", f"S{i:02d}", "1")
            await upsert_reward(
                api,
                merchantId=f"shop{i:02d}",
                ref=f"R{i}",
                kind="GOODS",
                title=f"Item {i}",
                price=100,
                settlementPrice="1.00",
            )
        (member,) = world.members
        key = await create_key(api, "STOREFRONT")
        return Shopper(member, key, await member_session(api, member))


def _operation(
    name: str, client: Client, shopper: Shopper, redeemed: list[str]
) -> Callable[[], Awaitable[None]]:
    """One request of `name`. balance: the member's storefront reads their accounts
    (bench.load's query); redeem: the member's storefront redeems shop 00's reward with
    HUB (bench.load's document); cancel: cancels one of those (redeeming one first when none
    is left), so that a run of redeem then cancel measures each."""
    if name == "convert":
        return _convert(client, shopper.member, itertools.count())
    storefront = Client(client.http, shopper.key)
    storefront.headers["X-Member-Token"] = shopper.token
    if name == "balance":

        async def balance() -> None:
            await storefront.data(load.BALANCE, {"id": shopper.member})

        return balance
    if name in ("redeem", "cancel"):
        keys = itertools.count()

        async def redeem() -> str:
            payload = await storefront.payload(
                load.REDEEM,
                "redeemReward",
                {"memberId": shopper.member, "rewardId": "shop00:R0", "payWith": "HUB"}
                | {"quantity": 1, "idempotencyKey": f"ab-redeem-{next(keys)}"},
            )
            return str(payload["redemption"]["id"])

        async def redeem_one() -> None:
            redeemed.append(await redeem())

        async def cancel() -> None:
            found = redeemed.pop() if redeemed else await redeem()
            await storefront.payload(
                CANCEL,
                "cancelRedemption",
                {"redemptionId": found, "reason": "MEMBER_REQUEST"}
                | {"idempotencyKey": f"ab-cancel-{next(keys)}"},
            )

        return redeem_one if name == "redeem" else cancel
    query = PAGE if name == "page" else "query Trivial { __typename }"

    async def op() -> None:
        await client.data(query)

    return op


async def compare(trees: list[str], operations: list[str], slices: int, backend: str) -> None:
    async with AsyncExitStack() as stack:
        servers, ops = [], {}
        for index, given in enumerate(trees):
            tree = stack.enter_context(source_tree(given))
            # Migrated by the version's own `hub serve`, to its own head.
            url = await stack.enter_async_context(
                databases.scratch(backend, databases.LOCAL_POSTGRES, migrate=False)
            )
            quiet = stack.enter_context(open(os.devnull, "wb"))  # noqa: ASYNC230, SIM115
            base, pid = await stack.enter_async_context(
                load.served(url, quiet, workers=1, tree=tree)
            )
            server = Served(f"{index}:{given}", pid, base)
            shopper = await _world(server.url)
            (client,) = await stack.enter_async_context(clients(server.url, 1))
            servers.append(server)
            redeemed: list[str] = []
            ops[server.label] = {
                name: _operation(name, client, shopper, redeemed) for name in operations
            }
        for name in operations:
            await _measure(name, servers, ops, slices)


async def _measure(
    name: str,
    servers: list[Served],
    ops: dict[str, dict[str, Callable[[], Awaitable[None]]]],
    slices: int,
) -> None:
    for server in servers:
        for _ in range(50):  # warm: caches, the document's validation, the pool
            await ops[server.label][name]()
    cost: dict[str, list[float]] = {server.label: [] for server in servers}
    for turn in range(slices):
        for server in servers if turn % 2 == 0 else servers[::-1]:
            op = ops[server.label][name]
            before, done, began = server.cpu_seconds(), 0, time.perf_counter()
            while time.perf_counter() - began < 1.0:
                await op()
                done += 1
            cost[server.label].append((server.cpu_seconds() - before) / done * 1000)
    for label, values in cost.items():
        print(f"{name:8s} {label:40s} {statistics.median(values):7.3f} ms CPU a request")
    if len(servers) == 2:
        first, second = cost.values()
        ratio = statistics.median(b / a for a, b in zip(first, second, strict=True))
        print(f"{name:8s} {'second / first, median of slices':40s} {ratio:7.3f}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("trees", nargs="+", help="directories or git revisions (1 or 2)")
    parser.add_argument("--operations", default=",".join(OPERATIONS))
    parser.add_argument("--slices", type=int, default=20, help="one-second slices each (20)")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL, not SQLite")
    args = parser.parse_args(argv)
    operations = args.operations.split(",")
    if unknown := set(operations) - set(OPERATIONS):
        parser.error(f"no operation {', '.join(sorted(unknown))}; choose from {OPERATIONS}")
    backend = "postgres" if args.postgres else "sqlite"
    asyncio.run(compare(args.trees, operations, args.slices, backend))


if __name__ == "__main__":
    main(sys.argv[1:])
