"""One structured log line per HTTP request: method, path, status, duration, key id.

Bodies and query strings are never logged: they carry names and phone numbers.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from hub.middleware import HttpMiddleware

log = structlog.get_logger("hub.access")
CLIENT_GONE = 499  # as nginx logs a request its client closed before the answer


class AccessLog(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        # Until an answer starts: 499 (the client closed the request before one) unless
        # the app fails, 500.
        status = CLIENT_GONE

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            # A route reading a body its client never finished: no one to answer, nothing
            # of the hub's failed (uvicorn would log an exception and a 500 for it).
            pass
        except BaseException:
            if status == CLIENT_GONE:
                status = 500
            raise
        finally:
            principal: Any = scope.get("state", {}).get("principal")
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
                key=getattr(principal, "key_id", None),
                request_id=request_id,
            )
