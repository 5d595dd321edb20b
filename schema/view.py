"""The GraphQL endpoint: authenticates the caller, then runs strawberry."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from hub.auth import Principal
from hub.enums import Role
from hub.ratelimit import retry_after
from hub.runtime import Runtime
from schema.context import Context
from schema.loaders import Loaders


def unauthenticated(message: str) -> JSONResponse:
    """HTTP 401 with a GraphQL error coded UNAUTHENTICATED."""
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="hub"'},
    )


async def principal_of(runtime: Runtime, request: Request) -> Principal | JSONResponse:
    """The caller of a request, or the 401 (or 503) response that refuses it."""
    try:
        await runtime.prepare()
        await runtime.caches.fresh()  # at most once per HUB_CACHE_CHECK_SECONDS
    except Exception:
        return JSONResponse(
            {
                "data": None,
                "errors": [
                    {
                        "message": "The database is not available; retry shortly.",
                        "extensions": {"code": "UNAVAILABLE"},
                    }
                ],
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
    principal = await runtime.caches.principal(secret.strip())
    if principal is None:
        return unauthenticated("The API key is unknown or revoked.")
    await runtime.note_key_use(principal.key_id)
    token = request.headers.get("x-member-token")
    if token:
        # A storefront acts for the member; a merchant shows the member's consent (linking).
        if principal.role not in (Role.STOREFRONT, Role.MERCHANT):
            return unauthenticated(
                "X-Member-Token is accepted only with a STOREFRONT or MERCHANT key."
            )
        grant = runtime.tokens.read(token.strip())
        if grant is None:
            return unauthenticated(
                "The member session token is invalid or expired; mint a new one with "
                "createMemberSession."
            )
        principal = replace(principal, member_id=grant.member_id, session=grant)
    return principal


_NOBODY = Principal(key_id="anonymous", role=Role.STOREFRONT)


class HubGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view behind API-key authentication."""

    def __init__(self, schema: Any, *, graphiql: bool) -> None:
        super().__init__(
            schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            request = Request(scope, receive)
            runtime: Runtime = request.app.state.runtime
            found = await principal_of(runtime, request)
            if isinstance(found, Response):
                await found(scope, receive, send)
                return
            limiter = runtime.rate_limiter
            wait = limiter.check(found.key_id) if limiter is not None else 0.0
            if wait:
                message = f"Too many requests for this key; retry in {retry_after(wait)} s."
                error = {"message": message, "extensions": {"code": "RATE_LIMITED"}}
                response = JSONResponse(
                    {"data": None, "errors": [error]},
                    status_code=429,
                    headers={"Retry-After": retry_after(wait)},
                )
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = found
        await super().__call__(scope, receive, send)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request) and isinstance(response, Response)
        runtime: Runtime = request.app.state.runtime
        return Context(
            request=request,
            response=response,
            runtime=runtime,
            # Only POST executes operations, and POST always has a principal; a GET
            # (the GraphiQL page) gets a storefront without a member, which may do nothing.
            principal=getattr(request.state, "principal", _NOBODY),
            loaders=Loaders(runtime.db, runtime.connectors, runtime.caches),
        )
