"""The assembly: the Starlette app that mounts GraphQL, health, metrics and the pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors import webhooks
from connectors.registry import Registry
from hub import idempotency, logs, merchants, permissions, validate
from hub.accesslog import AccessLog
from hub.config import Settings
from hub.db import utcnow
from hub.enums import CancellationReason, ErrorCode, ImportStatus, Role
from hub.errors import DomainError
from hub.exchange import saga
from hub.headers import SecurityHeaders
from hub.imports import rows as import_rows
from hub.imports import service as imports
from hub.ledger import jobs as ledger_jobs
from hub.mall import saga as mall_saga
from hub.mall.partner_cancellations import cancellation_handler
from hub.partner_events import Events, Handler
from hub.periodic import Job, Scheduler
from hub.runtime import Runtime
from hub.tiers.review import review_tiers
from hub.webhooks.expiring import announce_expiring
from schema import build_schema
from schema.view import HubGraphQL, principal_of
from settlement import export, statements
from settlement.runs import nightly

log = structlog.get_logger(__name__)
WEB = Path(__file__).parent / "web"


def create_app(
    settings: Settings | None = None, extra_routes: list[Route] | None = None
) -> Starlette:
    """The hub as an ASGI app; the runtime opens in the lifespan."""
    settings = settings or Settings()
    logs.configure(settings)
    schema = build_schema(settings)
    graphql = HubGraphQL(schema, graphiql=not settings.is_production)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        try:
            await asyncio.wait_for(runtime.db.ping(), timeout=2.0)
        except Exception as exc:  # any failure means not ready; say which
            log.warning("readiness check failed", error=type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "up"})

    async def webhook(request: Request) -> Response:
        """A partner's signed event: verified, stored once, then acted on."""
        runtime: Runtime = request.app.state.runtime
        merchant_id = request.path_params["merchantId"]
        async with runtime.db.read() as session:
            ref = await merchants.partner_secret_ref(session, merchant_id)
        secret = runtime.settings.partner_secret(ref) if ref else None
        if secret is None:
            return JSONResponse({"error": f"{merchant_id} sends no webhooks here"}, 404)
        try:
            body = await webhooks.read_body(request.stream())
            event = webhooks.parse(secret, request.headers, body)
        except webhooks.WebhookRejected as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        events = runtime.events
        assert events is not None, "the lifespan sets the event handlers"
        row_id = await events.record(merchant_id, event)
        if row_id is None:
            return JSONResponse({"error": f"event {event.event_id} was already received"}, 409)
        outcome = await events.handle(row_id, merchant_id, event)
        return JSONResponse({"received": event.event_id, "outcome": outcome})

    async def statement_csv(request: Request) -> Response:
        """A statement as CSV, streamed; the same credentials and rules as GraphQL."""
        runtime: Runtime = request.app.state.runtime
        found = await principal_of(runtime, request)
        if isinstance(found, Response):
            return found
        if found.role not in (Role.ADMIN, Role.FINANCE, Role.MERCHANT):
            return JSONResponse({"error": "statements are for FINANCE, ADMIN and merchants"}, 403)
        async with runtime.db.read() as session:
            statement = await statements.visible_statement(
                session, found, request.path_params["statementId"]
            )
        if statement is None:
            return JSONResponse({"error": "no such statement for this key"}, status_code=404)
        filename = f"statement-{statement.merchant_id}-{statement.business_date}.csv"
        return StreamingResponse(
            export.statement_csv(runtime.db, statement),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def import_accruals(request: Request) -> Response:
        """A CSV or NDJSON body of purchases, staged as it streams in; answers the job's id
        (202) while the worker applies it. MERCHANT keys for their own program, or ADMIN."""
        runtime: Runtime = request.app.state.runtime
        found = await principal_of(runtime, request)
        if isinstance(found, Response):
            return found
        if not permissions.allowed(found, permissions.Action.IMPORT_ACCRUALS):
            return _refusal(ErrorCode.FORBIDDEN, "Imports are for MERCHANT keys and ADMIN.", 403)
        program = request.query_params.get("program", "").strip()
        if not program:
            return _refusal(ErrorCode.INVALID_INPUT, "Name the program: ?program=CODE.", 400)
        reader = import_rows.reader_for(
            request.headers.get("content-type", ""),
            validate.PurchaseWindow(utcnow(), runtime.settings.accrual_backdate_days),
        )
        if reader is None:
            return _refusal(
                ErrorCode.INVALID_INPUT,
                "Send text/csv (a header line first) or application/x-ndjson.",
                415,
            )
        worker = runtime.imports
        assert worker is not None, "the runtime has an import worker"
        try:
            received = await imports.receive(
                runtime.db,
                settings,
                found,
                program,
                reader,
                request.stream(),
                "http",
                worker.holder,
                arrived=worker.kick,  # apply what has arrived while the rest uploads
            )
        except DomainError as exc:
            status = {
                ErrorCode.NOT_FOUND: 404,
                ErrorCode.FORBIDDEN: 403,
                ErrorCode.INVALID_STATE: 409,  # a connected program, or the job stopped
            }.get(exc.code, 400)
            return _refusal(exc.code, exc.message, status)
        if received.job_id is None:
            return _refusal(ErrorCode.INVALID_INPUT, "The body has no lines to import.", 400)
        worker.kick(received.job_id)
        return JSONResponse(
            {
                "id": received.job_id,
                "status": ImportStatus.RUNNING.value,
                "total": received.total,
                "rejected": received.rejected,
            },
            status_code=202,
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, Registry(settings))
        app.state.runtime = runtime
        runtime.events = Events(runtime.db, handlers=event_handlers(runtime))
        scheduler = background_jobs(runtime)
        if settings.background_jobs:
            scheduler.start()
        log.info("hub started", env=settings.env, database=runtime.db.dialect)
        try:
            yield
        finally:
            await scheduler.stop()
            await runtime.close()

    middleware = [
        Middleware(AccessLog),
        Middleware(SecurityHeaders),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Member-Token"],
            max_age=600,
        ),
    ]
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/webhooks/{merchantId}", webhook, methods=["POST"]),
        Route("/statements/{statementId}.csv", statement_csv),
        Route("/imports/accruals", import_accruals, methods=["POST"]),
        *(extra_routes or []),
        Mount("/mall", StaticFiles(directory=WEB / "mall", html=True), name="mall"),
        Mount("/console", StaticFiles(directory=WEB / "console", html=True), name="console"),
        Mount("/insights", StaticFiles(directory=WEB / "insights", html=True), name="insights"),
        Mount("/assets", StaticFiles(directory=WEB / "common"), name="assets"),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def background_jobs(runtime: Runtime) -> Scheduler:
    """The periodic jobs of a running hub."""
    settings, db = runtime.settings, runtime.db
    scheduler = Scheduler()
    scheduler.add(
        Job(
            "expiry", settings.expiry_interval_seconds, lambda: ledger_jobs.run_expiry(db, settings)
        )
    )
    scheduler.add(
        Job(
            "hold-sweeper",
            settings.sweep_interval_seconds,
            lambda: ledger_jobs.sweep_holds(db, settings),
        )
    )

    scheduler.add(
        Job(
            "conversion-saga",
            settings.sweep_interval_seconds,
            lambda: saga.resume_due(db, settings, runtime.connectors),
        )
    )

    scheduler.add(
        Job(
            "redemption-saga",
            settings.sweep_interval_seconds,
            lambda: mall_saga.resume_due(db, settings, runtime.connectors),
        )
    )
    scheduler.add(
        Job("partner-catalogs", settings.catalog_cache_seconds, runtime.catalog.refresh_all)
    )
    if settings.settlement_time is not None:
        scheduler.add(
            Job("nightly-settlement", 60, lambda: nightly(db, settings, runtime.connectors))
        )
    assert runtime.events is not None
    scheduler.add(Job("partner-events", 60, runtime.events.retry_unprocessed, run_at_start=False))

    async def purge() -> int:
        return await db.transaction(
            lambda s: idempotency.purge(s, settings.idempotency_retention_days)
        )

    scheduler.add(Job("idempotency-purge", 3600, purge))
    if runtime.imports is not None:  # at start too: a job a stopped process left resumes
        scheduler.add(
            Job("accrual-imports", settings.import_interval_seconds, runtime.imports.resume_due)
        )
    scheduler.add(Job("points-expiring", 3600, lambda: announce_expiring(db, settings)))
    # Hourly, but each program is reviewed once per business date: the first hour of the day.
    scheduler.add(Job("tier-review", 3600, lambda: review_tiers(db, settings)))
    if runtime.webhooks is not None:
        scheduler.add(
            Job("webhook-deliveries", settings.webhook_interval_seconds, runtime.webhooks.run_once)
        )
    return scheduler


def _refusal(code: ErrorCode, message: str, status: int) -> Response:
    return JSONResponse({"error": message, "code": code.value}, status_code=status)


def event_handlers(runtime: Runtime) -> dict[str, Handler]:
    """Partner events the hub acts on: cancellations become refunds with compensation."""
    return {
        kind: cancellation_handler(runtime.db, runtime.settings, runtime.connectors, reason)
        for kind, reason in (
            ("FLIGHT_CANCELLED", CancellationReason.FLIGHT_CANCELLED),
            ("EVENT_CANCELLED", CancellationReason.EVENT_CANCELLED),
            ("MERCHANT_CANCELLED", CancellationReason.MERCHANT_CANCELLED),
        )
    }
