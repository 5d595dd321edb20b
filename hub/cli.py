"""The operator's command line: hub serve, demo, migrate, settle, keys, verify."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from hub.config import Settings
from hub.enums import Role

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from hub.db import Database

T = TypeVar("T")

# No locals in tracebacks: they would print the settings and the database URL.
app = typer.Typer(
    help="Points Exchange Hub",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="API keys", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(keys_app, name="keys")
import_app = typer.Typer(
    help="Bulk imports", no_args_is_help=True, pretty_exceptions_show_locals=False
)
app.add_typer(import_app, name="import")


def _settings() -> Settings:
    from hub import logs

    try:
        settings = Settings()
    except Exception as exc:  # pydantic's message names the variable
        typer.secho(f"Configuration error: {logs.redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(2) from exc
    logs.configure(settings)
    return settings


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The configured database for one command, its connections closed after."""
    from hub.db import Database

    db = Database.configured(settings)
    try:
        yield db
    finally:
        await db.dispose()


def _run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`work` in one transaction of the configured database; a refusal is printed in red
    and the command exits 1."""
    from hub.errors import DomainError

    settings = _settings()

    async def run() -> T:
        async with _database(settings) as db:
            return await db.transaction(work)

    try:
        return _run(run())
    except DomainError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(1) from exc


def _day(text: str) -> dt.date:
    """--date as a date; anything else is a usage error (exit 2)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        typer.secho(f"--date must be YYYY-MM-DD, not {text!r}.", fg="red", err=True)
        raise typer.Exit(2) from exc


def _migrate(settings: Settings) -> None:
    from hub.migrate import upgrade

    try:
        _run(upgrade(settings.database_url))
    except Exception as exc:
        from hub.logs import redact, safe_url

        typer.secho(
            f"Could not migrate {safe_url(settings.database_url)}: {redact(str(exc))}\n"
            "Check HUB_DATABASE_URL and that the database server is running.",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from exc


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    settings = _settings()
    _migrate(settings)
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the API with uvicorn; migrates the database first."""
    from hub.serve import ServeOptions
    from hub.serve import serve as run_workers

    settings = _settings()
    _migrate(settings)
    options = ServeOptions("hub.app:create_app", host, port, settings.log_level.lower())
    run_workers(options, workers)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    reset: Annotated[bool, typer.Option(help="wipe the demo database first")] = False,
) -> None:
    """Seed the demo world if the database is empty, then serve it."""
    import uvicorn

    from demo import world as demo_world

    settings = _settings()
    if reset:
        demo_world.wipe(settings)
    _migrate(settings)
    _run(demo_world.seed(settings, progress=typer.echo))
    demo_world.print_keys(typer.echo, port)
    os.environ.setdefault("HUB_CORS_ORIGINS", f"http://127.0.0.1:{port},http://localhost:{port}")
    os.environ["HUB_DEMO_PORT"] = str(port)
    uvicorn.run(
        "demo.world:create_demo_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
    )


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="ADMIN, MERCHANT, FINANCE or STOREFRONT")],
    label: Annotated[str, typer.Option(help="who uses the key")],
    merchant: Annotated[str | None, typer.Option(help="merchant id, for MERCHANT keys")] = None,
) -> None:
    """Print a new API key once; only its hash is stored."""
    from hub.auth import create_api_key

    key, secret = _transaction(
        lambda s: create_api_key(s, role=role, label=label, merchant_id=merchant, created_by="cli")
    )
    typer.echo(f"{key.id}\t{secret}")


@keys_app.command("list")
def keys_list() -> None:
    """List every key: id, role, merchant, label, created, last used, revoked. Never a secret."""

    from hub.auth import list_api_keys

    settings = _settings()

    async def work() -> list[str]:
        async with _database(settings) as db, db.read() as session:
            rows = await list_api_keys(session)

        def when(moment: dt.datetime | None) -> str:
            return moment.isoformat(timespec="seconds") if moment else "-"

        return [
            "\t".join(
                (
                    k.id,
                    k.role,
                    k.merchant_id or "-",
                    k.label,
                    f"created {when(k.created_at)}",
                    f"last used {when(k.last_used_at)}",
                    f"revoked {when(k.revoked_at)}" if k.revoked_at else "live",
                )
            )
            for k in rows
        ]

    for line in _run(work()):
        typer.echo(line)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (key_...)")]) -> None:
    """Revoke a key: every worker refuses it from its next request on."""
    from hub.auth import revoke_api_key

    key = _transaction(lambda s: revoke_api_key(s, key_id))
    assert key.revoked_at is not None
    typer.echo(f"{key.id} revoked at {key.revoked_at.isoformat(timespec='seconds')}")


@import_app.command("accruals")
def import_accruals(
    file: Annotated[
        Path, typer.Argument(help="CSV with a header line, or NDJSON (.ndjson, .jsonl)")
    ],
    program: Annotated[str, typer.Option("--program", help="the hosted program's code")],
) -> None:
    """Import a file of purchases as accruals, with a progress bar; prints each rejected
    line, then the accepted and rejected counts."""
    from hub.imports.command import import_accruals as run_import

    settings = _settings()
    if not file.is_file():
        typer.secho(f"No file {str(file)!r}.", fg="red", err=True)
        raise typer.Exit(2)
    with file.open("rb") as handle:
        size = file.stat().st_size
        status = _run(run_import(settings, file.name, handle, size, program, typer.echo))
    if status:
        raise typer.Exit(status)


@app.command()
def verify() -> None:
    """Check the ledger as a bank would; print each violation, exit non-zero if any."""
    from hub.verify import checks
    from hub.verify import verify as run_checks

    settings = _settings()

    async def work() -> list[str]:
        async with _database(settings) as db, db.read() as session:
            return [str(v) for v in await run_checks(session)]

    violations = _run(work())
    for line in violations:
        typer.secho(line, fg="red")
    if violations:
        typer.secho(f"{len(violations)} violation(s)", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"ledger sound: {len(checks())} checks passed")


@app.command()
def expire() -> None:
    """Move what is left of expired lots to each program's expired account."""
    from hub.ledger.jobs import run_expiry

    settings = _settings()

    async def work() -> tuple[int, int]:
        async with _database(settings) as db:
            with typer.progressbar(length=1, label="expiring lots") as bar:

                def progress(done: int, total: int) -> None:
                    bar.length = max(total, 1)
                    bar.update(done - bar.pos)

                result = await run_expiry(db, settings, progress=progress)
        return result.accounts, result.points

    accounts, points = _run(work())
    typer.echo(f"expired {points:,} points in {accounts:,} accounts")


@app.command("review-tiers")
def review_tiers() -> None:
    """Run today's tier review now (also nightly in `hub serve`): members who no longer
    qualify move down, with a TIER_CHANGED event; a program reviewed today is skipped."""
    from hub.tiers.review import review_tiers as review

    settings = _settings()

    async def work() -> tuple[int, int, int, int]:
        async with _database(settings) as db:
            done = await review(db, settings)
        return done.programs, done.members, done.moved_down, done.moved_up

    programs, members, down, up = _run(work())
    typer.echo(f"reviewed {members:,} members in {programs} programs: {down:,} down, {up:,} up")


@app.command()
def settle(
    date: Annotated[str, typer.Option("--date", help="business date, YYYY-MM-DD")],
) -> None:
    """Run settlement for one business date and print the batch summary."""

    from hub.errors import DomainError
    from settlement.runs import require_begun, run_date
    from settlement.statements import payments, positions

    settings = _settings()
    day = _day(date)
    try:
        require_begun(settings, day)
    except DomainError as refused:
        typer.secho(refused.message, fg="red", err=True)
        raise typer.Exit(2) from None

    async def work() -> None:
        async with _database(settings) as db:
            with typer.progressbar(length=100, label=f"settling {day}") as bar:

                def progress(step: str, done: int, total: int) -> None:
                    bar.label = step
                    bar.update(int(100 * done / max(total, 1)) - bar.pos)

                result = await run_date(db, settings, day, actor="cli", progress=progress)
            if result is None:
                typer.secho(
                    f"{day} is being settled by another process; try again later.",
                    fg="yellow",
                    err=True,
                )
                raise typer.Exit(1)
            batch = result.batch
            verb = "settled" if result.created else "already settled (unchanged)"
            typer.echo(f"{day} {verb}: batch {batch.id}")
            typer.echo(
                f"  obligations {batch.obligation_count:,}   gross "
                f"{batch.gross_amount:,.2f} {batch.currency}"
            )
            async with db.read() as session:
                for p in await positions(session, batch.id):
                    typer.echo(
                        f"  {p.merchant_id:<12} receivable {p.receivable:>14,.2f}  "
                        f"payable {p.payable:>14,.2f}  fees {p.fees:>10,.2f}  "
                        f"net {p.net:>14,.2f}"
                    )
                for t in await payments(session, batch.id):
                    typer.echo(f"  pay {t.from_merchant} -> {t.to_merchant}: {t.amount:,.2f}")

    _run(work())


@app.command()
def reconcile(
    merchant: Annotated[str, typer.Option("--merchant", help="a connected merchant's id")],
    date: Annotated[str, typer.Option("--date", help="business date, YYYY-MM-DD")],
) -> None:
    """Compare the hub's movements at a connected partner with the partner's own; print
    each break, exit 1 if there is any (2 if the partner could not be asked)."""

    from connectors.registry import Registry
    from hub import reconciliation
    from hub.enums import ReconciliationStatus
    from hub.models import Merchant

    settings = _settings()
    day = _day(date)

    async def work() -> reconciliation.Report | str | None:
        registry = Registry(settings)
        try:
            async with _database(settings) as db:
                async with db.read() as session:
                    if await session.get(Merchant, merchant) is None:
                        return f"No merchant {merchant!r}."
                return await reconciliation.reconcile(db, settings, registry, merchant, day)
        finally:
            await registry.close()

    report = _run(work())
    if isinstance(report, str):
        typer.secho(report, fg="red", err=True)
        raise typer.Exit(2)
    if report is None:
        typer.echo(f"{merchant}'s programs are hosted by the hub: nothing to reconcile.")
        return
    if report.status == ReconciliationStatus.PARTNER_UNAVAILABLE:
        typer.secho(
            f"{merchant} {day}: PARTNER_UNAVAILABLE (the partner did not list its movements)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    for b in report.breaks:
        hub = "-" if b.hub_points is None else f"{b.hub_points:+}"
        partner = "-" if b.partner_points is None else f"{b.partner_points:+}"
        what = (
            "only at the hub"
            if b.partner_points is None
            else "only at the partner"
            if b.hub_points is None
            else "other points"
        )
        typer.secho(
            f"BREAK {b.reference} member {b.external_ref}: hub {hub} partner {partner} ({what})",
            fg="red",
        )
    typer.echo(
        f"{merchant} {day}: {report.status.value}, {report.matched} matched, "
        f"{len(report.breaks)} break(s)"
    )
    if report.breaks:
        raise typer.Exit(1)


@app.command("print-schema")
def print_schema() -> None:
    """Print the GraphQL schema (SDL), as checked in at schema/schema.graphql."""
    from schema import print_sdl

    sys.stdout.write(print_sdl())


def main() -> None:
    app()


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]
