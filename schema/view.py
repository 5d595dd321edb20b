"""The GraphQL endpoint: authenticates the caller, then runs strawberry."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http.async_base_view import HTTPException  # whichever class strawberry raises

from hub.auth import Principal
from hub.enums import Role
from hub.ratelimit import retry_after, too_many
from hub.runtime import Runtime
from hub.validate import NumberTooLong, RepeatedKey, json_int, unique_keys
from schema.context import Context
from schema.loaders import Loaders


def unauthenticated(message: str) -> JSONResponse:
    """HTTP 401 with a GraphQL error coded UNAUTHENTICATED."""
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="hub"'},
    )


def rate_limited(message: str, wait: float) -> JSONResponse:
    """HTTP 429 with a GraphQL error coded RATE_LIMITED and when to retry."""
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": "RATE_LIMITED"}}]},
        status_code=429,
        headers={"Retry-After": retry_after(wait)},
    )


async def principal_of(runtime: Runtime, request: Request) -> Principal | JSONResponse:
    """The caller of a request, or the 401 (429, 503) response that refuses it. An address
    that failed to authenticate too often is refused before its key is even looked at."""
    address = request.client.host if request.client else "unknown"
    limits = runtime.rate_limits
    wait = await limits.address_blocked(address)
    if wait:
        return rate_limited(
            f"Too many failed authentications from this address; retry in {retry_after(wait)} s.",
            wait,
        )
    found = await _authenticate(runtime, request)
    if isinstance(found, JSONResponse) and found.status_code == 401:
        await limits.authentication_failed(address)
    return found


async def _authenticate(runtime: Runtime, request: Request) -> Principal | JSONResponse:
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
    token = (request.headers.get("x-member-token") or "").strip()
    grant = runtime.tokens.read(token) if token else None
    principal = await runtime.caches.principal(secret.strip())
    # A member session ends with the key that minted it (revocations reach the cache within
    # HUB_CACHE_CHECK_SECONDS, as for the key itself).
    minter_live = grant is not None and await runtime.caches.key_is_live(grant.minted_by)
    if principal is None:
        return unauthenticated("The API key is unknown or revoked.")
    await runtime.note_key_use(principal.key_id)
    if token:
        # A storefront acts for the member; a merchant shows the member's consent (linking).
        if principal.role not in (Role.STOREFRONT, Role.MERCHANT):
            return unauthenticated(
                "X-Member-Token is accepted only with a STOREFRONT or MERCHANT key."
            )
        if grant is None:
            return unauthenticated(
                "The member session token is invalid or expired; mint a new one with "
                "createMemberSession."
            )
        if not minter_live:
            return unauthenticated(
                "The key that minted this member session was revoked; mint a new session "
                "with a live key."
            )
        principal = replace(principal, member_id=grant.member_id, session=grant)
    return principal


def _not_json(constant: str) -> Any:
    """Python's decoder reads NaN and Infinity; JSON (RFC 8259) has neither."""
    raise ValueError(f"{constant} is not JSON")


def malformed(content_type: str, body: bytes) -> str | None:
    """Why a POST body is not a GraphQL request (a JSON object with a string `query`,
    and `variables` an object, `operationName` a string, when given); None when it is."""
    usage = 'Send a JSON object such as {"query": "{ viewer { role } }"} as application/json'
    if "application/json" not in content_type.lower():
        return f"{usage}; the Content-Type was {content_type or 'missing'}."
    try:
        data = json.loads(
            body, parse_constant=_not_json, parse_int=json_int, object_pairs_hook=unique_keys
        )
    except (RepeatedKey, NumberTooLong) as unread:
        return f"{usage}; {unread}."
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return f"{usage}; the body is not JSON."
    except RecursionError:  # nested deeper than Python's decoder goes
        return f"{usage}; the body's JSON is nested too deeply."
    if not isinstance(data, dict):
        return f"{usage}; the body is JSON but not an object (one operation per request)."
    if not isinstance(data.get("query"), str):
        return f"{usage}; `query` must be a string."
    if not isinstance(data.get("variables"), dict | None):
        return f"{usage}; `variables` must be an object."
    if not isinstance(data.get("operationName"), str | None):
        return f"{usage}; `operationName` must be a string."
    return None


def bad_request(message: str) -> JSONResponse:
    """HTTP 400 with a GraphQL error coded BAD_REQUEST."""
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]},
        status_code=400,
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The request's body again, for strawberry, which reads it after the check."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


_NOBODY = Principal(key_id="anonymous", role=Role.STOREFRONT)


# The largest operation the API takes: importAccruals' 10,000 rows are about 2 MB. A 30 MB
# body was read and parsed whole before (outside review F12).
MAX_BODY_BYTES = 4 * 1024 * 1024


async def _capped_body(request: Request) -> bytes | None:
    """The body, or None as soon as it is larger than MAX_BODY_BYTES (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> JSONResponse:
    return JSONResponse(
        {
            "data": None,
            "errors": [
                {
                    "message": f"The request body is larger than {MAX_BODY_BYTES // 1024 // 1024} "
                    "MiB; send large imports to POST /imports/accruals.",
                    "extensions": {"code": "BAD_REQUEST"},
                }
            ],
        },
        status_code=413,
    )


class HubGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view behind API-key authentication."""

    def __init__(self, schema: Any, *, graphiql: bool) -> None:
        super().__init__(
            schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "POST" and not self._ide_page(scope):
            await self._not_allowed(scope["method"])(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "POST":
            request = Request(scope, receive)
            runtime: Runtime = request.app.state.runtime
            found = await principal_of(runtime, request)
            if isinstance(found, Response):
                await found(scope, receive, send)
                return
            wait = await runtime.rate_limits.request(found)
            if wait:
                response = rate_limited(too_many(found, wait), wait)
                await response(scope, receive, send)
                return
            try:
                body = await _capped_body(request)
            except ClientDisconnect:
                return  # gone before its whole body came: nothing to run, no one to answer
            if body is None:
                await _too_large()(scope, receive, send)
                return
            problem = malformed(request.headers.get("content-type", ""), body)
            if problem is not None:
                await bad_request(problem)(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = found
            replayed = Request(scope, _replay(body, receive))
            try:
                answer = await self.run(replayed)
            except HTTPException as refused:  # strawberry's own refusals, as JSON like ours
                answer = (
                    bad_request(refused.reason)
                    if refused.status_code == 400
                    else PlainTextResponse(refused.reason, status_code=refused.status_code)
                )
            await answer(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _ide_page(self, scope: Scope) -> bool:
        """A browser's GET of GraphiQL's page, where it is served (not in production)."""
        if self.graphql_ide is None or scope["method"] != "GET":
            return False
        accept = Headers(scope=scope).get("accept", "")
        return "text/html" in accept and b"query=" not in scope["query_string"]

    def _not_allowed(self, method: str) -> JSONResponse:
        """405 as a GraphQL error with a code, like every refusal of the hub's: operations
        are sent with POST only (GraphQL over HTTP's GET is optional, and not taken)."""
        allowed = "GET, POST" if self.graphql_ide else "POST"
        where = " (a GET opens the GraphiQL page)" if self.graphql_ide else ""
        message = (
            f"/graphql runs operations sent with POST, as a JSON body with query and "
            f"variables{where}; {method} is not taken."
        )
        return JSONResponse(
            {"data": None, "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]},
            status_code=405,
            headers={"Allow": allowed},
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request) and isinstance(response, Response)
        runtime: Runtime = request.app.state.runtime
        # Only POST executes operations, and POST always has a principal; a GET
        # (the GraphiQL page) gets a storefront without a member, which may do nothing.
        principal = getattr(request.state, "principal", _NOBODY)
        return Context(
            request=request,
            response=response,
            runtime=runtime,
            principal=principal,
            loaders=Loaders(
                runtime.db, runtime.connectors, principal, runtime.caches, tz=runtime.settings.tz
            ),
        )
