"""The assembly: the Starlette app that mounts GraphQL, health, metrics and the pages."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors.registry import Registry
from hub import idempotency, logs
from hub.accesslog import AccessLog
from hub.config import Settings
from hub.enums import CancellationReason
from hub.exchange import saga
from hub.headers import SecurityHeaders
from hub.ledger import jobs as ledger_jobs
from hub.mall import saga as mall_saga
from hub.mall.partner_cancellations import cancellation_handler
from hub.partner_events import Events, Handler
from hub.periodic import Job, Scheduler
from hub.runtime import Runtime
from hub.tiers.review import review_tiers
from hub.web import routes as web_routes
from hub.webhooks.expiring import announce_expiring
from schema import build_schema
from schema.view import HubGraphQL
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

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, Registry(settings))
        app.state.runtime = runtime
        runtime.events = Events(runtime.db, handlers=event_handlers(runtime))
        scheduler = background_jobs(runtime)
        if settings.background_jobs:
            scheduler.start()
        log.info("hub started", env=settings.env, database=runtime.db.dialect)
        # What is made by now (modules, the schema, the caches) lives as long as the
        # process: moved out of the collector's reach, a full collection no longer walks it.
        gc.collect()
        gc.freeze()
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
        Route("/graphql", graphql),  # every method: the view answers those it does not take
        *web_routes.HTTP,
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
    scheduler.add(Job("idle-lanes", settings.sweep_interval_seconds, db.shed_idle_lanes))
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
