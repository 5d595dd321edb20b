"""`python -m tests.simulation --seed N --ops N [--backend sqlite|postgres] [--all]`:
one seeded run on a fresh database; prints the summary, or the failure and how to replay it."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.migrate import upgrade
from tests.simulation.sim import KNOWN_BUGS, SimulationFailure, simulate


async def _postgres(base: str, name: str, create: bool) -> str:
    engine = create_async_engine(make_url(base), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        if create:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def main(seed: int, ops: int, backend: str, avoid: frozenset[int]) -> int:
    with tempfile.TemporaryDirectory(prefix="hub-sim-") as tmp:
        if backend == "postgres":
            base = os.environ.get("HUB_TEST_POSTGRES_URL")
            if not base:
                print("set HUB_TEST_POSTGRES_URL for --backend postgres", file=sys.stderr)
                return 2
            name = f"hub_sim_{os.getpid()}_{secrets.token_hex(3)}"
            url = await _postgres(base, name, create=True)
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'sim.db'}"
        try:
            await upgrade(url)
            summary = await simulate(seed, ops, url, avoid=avoid)
        except SimulationFailure as failure:
            print(f"FAILED on {backend}: {failure}", file=sys.stderr)
            return 1
        finally:
            if backend == "postgres":
                await _postgres(base, name, create=False)
    print(f"{backend}: {summary.line()}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.simulation")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument(
        "--all", action="store_true", help="draw what triggers the known bugs of issue 15 too"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    avoid = frozenset() if args.all else KNOWN_BUGS
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    codes = [asyncio.run(main(seed, args.ops, backend, avoid)) for backend in backends]
    sys.exit(max(codes))
