"""Security headers on every response: the pages run only the hub's own scripts and
styles and cannot be framed (clickjacking); nothing is sniffed into another type."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from hub.middleware import HttpMiddleware

# What /mall, /console and /insights load: their own module scripts, stylesheets and GraphQL at
# /graphql; the favicon is a data: URL. No inline script or style (tests/web check it).
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# GraphiQL (development only) loads its bundle from a CDN with inline scripts: it gets
# only the framing rule.
GRAPHIQL_POLICY = "frame-ancestors 'none'"


class SecurityHeaders(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if headers.get("content-type", "").startswith("text/html"):
                    policy = GRAPHIQL_POLICY if path.startswith("/graphql") else PAGE_POLICY
                    headers.setdefault("Content-Security-Policy", policy)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, sending)
