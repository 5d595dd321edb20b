"""`python -m bench [ledger|exchange|mall ...] [options]`: run, print, store as JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields, replace

from sqlalchemy.engine import make_url

from bench import databases, exchange, ledger, mall
from bench.harness import Options, Report, machine

BENCHMARKS: dict[str, tuple[str, Callable[[Options], Awaitable[Report]]]] = {
    ledger.NAME: (ledger.TITLE, ledger.run),
    exchange.NAME: (exchange.TITLE, exchange.run),
    mall.NAME: (mall.TITLE, mall.run),
}


def parse(argv: list[str]) -> tuple[list[str], Options, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Hot paths of the hub as ratios against baselines measured in the same run.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=" or ".join(BENCHMARKS))
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per throughput phase (5)"
    )
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each (0.5)")
    parser.add_argument(
        "--slices", type=int, default=5, help="turns in which compared phases alternate (5)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--iterations", type=int, default=50, help="rounds per latency phase (50)")
    default_pg = os.environ.get("HUB_TEST_POSTGRES_URL") or databases.LOCAL_POSTGRES
    databases.add_options(parser, "--no-postgres", default_pg)
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop", help="servers' loop (uvloop)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the hub server (one extra phase each) and print its hot spots",
    )
    args = parser.parse_args(argv)
    postgres = None
    if not args.no_postgres:
        postgres = args.postgres or default_pg
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        known = ", ".join(BENCHMARKS)
        parser.error(f"no benchmark named {', '.join(unknown)}; choose from {known}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    # Every field of Options is the option of the same name, but for the server chosen.
    given = {field.name: getattr(args, field.name) for field in fields(Options)}
    options = Options(**{**given, "postgres": postgres})
    return names, options, args.postgres is not None


async def main(argv: list[str]) -> int:
    names, options, asked = parse(argv)
    if options.postgres and not await databases.postgres_answers(options.postgres):
        where = make_url(options.postgres).render_as_string(hide_password=True)
        if asked:
            print(f"PostgreSQL does not answer at {where}.", file=sys.stderr)
            return 2
        print(f"PostgreSQL does not answer at {where}: SQLite only.", flush=True)
        options = replace(options, postgres=None)
    info = machine()
    print(
        f"bench: {', '.join(names)}; {info['cpus']} CPUs (load average "
        f"{', '.join(map(str, info['load_average']))}), Python {info['python']}; "
        f"{'SQLite and PostgreSQL' if options.postgres else 'SQLite'}",
        flush=True,
    )
    for name in names:
        title, run = BENCHMARKS[name]
        print(f"\n>> {title}", flush=True)
        began = time.perf_counter()
        report = await run(options)
        path = report.save(options)
        print(f"\n{report.table()}", flush=True)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"   ({time.perf_counter() - began:.0f} s; load average now {load}; results in {path})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
