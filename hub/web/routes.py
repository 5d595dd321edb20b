"""The hub's HTTP routes beside /graphql (health, metrics, partner webhooks, statement CSV,
bulk imports, the pages of hub/web/pages.py): module-level handlers that read the running
hub from `request.app.state`. Part of the assembly, like hub/app.py: they authenticate as
/graphql does (`schema.view.principal_of`) and call the domain."""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from connectors import webhooks
from hub import merchants, permissions, validate
from hub.db import utcnow
from hub.enums import ErrorCode, ImportStatus
from hub.errors import DomainError
from hub.imports import rows as import_rows
from hub.imports import service as imports
from hub.runtime import Runtime
from hub.web import pages
from schema.view import principal_of
from settlement import export, statements

log = structlog.get_logger(__name__)


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
    if not permissions.allowed(found, permissions.Action.READ_STATEMENTS):
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
            runtime.settings,
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
            "status": ImportStatus.RUNNING,
            "total": received.total,
            "rejected": received.rejected,
        },
        status_code=202,
    )


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _refusal(code: ErrorCode, message: str, status: int) -> Response:
    return JSONResponse({"error": message, "code": code.value}, status_code=status)


HTTP = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics),
    Route("/webhooks/{merchantId}", webhook, methods=["POST"]),
    Route("/statements/{statementId}.csv", statement_csv),
    Route("/imports/accruals", import_accruals, methods=["POST"]),
    *pages.ROUTES,
]
