"""What the benchmarks that run on their own (`python -m bench.settlement`, `.insights`,
`.imports`) share: their command line, the hosted merchants they load, their runs on each
database, a database opened for one step and disposed after it, the printed table (a title,
then one row per database: its name, then a list of columns), and the end of `main` (print,
save, exit code). Each says only what it measures; every report reads and is stored alike."""

from __future__ import annotations

import argparse
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from bench import databases
from bench.harness import heading, save_results
from hub.db import Database
from hub.enums import ConnectorKind, MerchantCategory
from hub.merchants import NewMerchant


class Outcome(Protocol):
    """One database's run: the database it ran on, its named checks, and its figures as
    stored in JSON."""

    backend: str
    checks: dict[str, bool]

    def summary(self) -> dict[str, Any]: ...


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The command line of `python -m bench.<name>`, before its own options."""
    return argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)


def at_least(low: int) -> Callable[[str], int]:
    """An option's type: a whole number not below `low` (argparse says so, exit 2)."""

    def number(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:,}")
        return value

    return number


def count(
    parser: argparse.ArgumentParser, flag: str, default: int, metavar: str = "N", low: int = 1
) -> None:
    """An option saying how many of something the run loads: a whole number of at least
    `low`, its default shown as its help."""
    parser.add_argument(
        flag, type=at_least(low), default=default, metavar=metavar, help=f"({default:,})"
    )


def parsed(
    parser: argparse.ArgumentParser, argv: list[str], seed: bool = True
) -> argparse.Namespace:
    """`argv` parsed after the options every such benchmark takes are added last: where
    its databases are (`--postgres URL`, `--sqlite`) and, for the random ones, `--seed`."""
    databases.add_options(parser)
    if seed:
        parser.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    return parser.parse_args(argv)


async def servers(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The PostgreSQL admin URL (None: SQLite only) and the backends to run on; exit 2 (the
    reason said on stderr) when the PostgreSQL asked for does not answer."""
    if (chosen := await databases.chosen(args)) is None:
        raise SystemExit(2)
    return chosen


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


async def on_each_database(
    args: argparse.Namespace, says: str, run: Callable[[str, str | None], Awaitable[OutcomeT]]
) -> tuple[str | None, list[OutcomeT]]:
    """`run(backend, postgres)` on each database asked for, one after the other, once a line
    has said what runs (`says`) and where; the PostgreSQL admin URL and the outcomes."""
    postgres, backends = await servers(args)
    print(f"{says}; {' and '.join(backends)}", flush=True)
    return postgres, [await run(backend, postgres) for backend in backends]


def hosted_merchant(
    *,
    id: str,
    name: str,
    category: MerchantCategory,
    program_code: str,
    point_value: Decimal,
    expiry_months: int | None,
) -> NewMerchant:
    """A merchant whose points live in the hub's own ledger, as these benchmarks load it
    straight into the database: its program named after its code, one point per unit
    spent, 10% compensation."""
    return NewMerchant(
        id=id,
        name=name,
        category=category,
        program_code=program_code,
        program_name=f"{program_code} points",
        unit_name="point",
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=point_value,
        accrual_rate=Decimal(1),
        expiry_months=expiry_months,
        compensation_percent=Decimal(10),
    )


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    """The hub's `Database` on `url` for one step, its pool disposed however the step ends
    (a scratch database cannot be dropped while a pool holds connections to it)."""
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


T = TypeVar("T")


@dataclass(frozen=True)
class TableColumn(Generic[T]):
    """One column of a printed table: its title, the format of its cells (alignment and
    width first, as `>10.2f`), and the figure it shows of one run. The title takes the
    cells' alignment and width, so that a header and its rows cannot drift apart."""

    title: str
    spec: str
    value: Callable[[T], Any]

    @property
    def width(self) -> str:
        """The alignment and width of `spec` (a sign option dropped): `>+6.1f` -> `>6`."""
        found = re.match(r"([<>^])[-+ ]?(\d+)", self.spec)
        assert found is not None, f"{self.title}: no alignment and width in {self.spec!r}"
        return found[1] + found[2]


def table(
    title: str, columns: Sequence[TableColumn[OutcomeT]], runs: Sequence[OutcomeT]
) -> list[str]:
    """The table's lines: its title, the column titles, a rule as wide, a row per run, each
    row first naming the database the run was on."""
    shown = [TableColumn[OutcomeT]("db", "<9", lambda o: o.backend), *columns]
    header = " ".join(f"{c.title:{c.width}}" for c in shown)
    rows = [" ".join(f"{c.value(run):{c.spec}}" for c in shown) for run in runs]
    return [*heading(title, header), *rows]


def finish(name: str, table: str, outcomes: Sequence[Outcome], options: dict[str, Any]) -> int:
    """Print the table, store the runs as bench/results/<name>-<time>.json, and answer the
    exit code: 0 when every check of every database held, else 1."""
    print(f"\n{table}", flush=True)
    path = save_results(name, [o.summary() for o in outcomes], options)
    print(f"   results in {path}", flush=True)
    return 0 if all(all(o.checks.values()) for o in outcomes) else 1
