"""The transport every partner connector uses: signed JSON over pooled HTTP.

Each call is signed (HMAC-SHA256 over timestamp and body), carries an
Idempotency-Key when it moves points, has a timeout, and is retried with
jittered backoff only when repeating it is safe (a GET, or a call with an
idempotency key) and only after a failure that means "not answered" (the
connection was refused, or a 502/503/504). Only a call no attempt may have
applied ends as "not sent" (REJECTED, PARTNER_UNAVAILABLE); once one may have,
the outcome is UNKNOWN and the saga asks again with the same key, whose answer
settles it. A breaker per merchant fails calls fast while the partner is down.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from prometheus_client import Histogram
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors import signing
from connectors.base import Outcome, unsaid
from connectors.breaker import CircuitBreaker
from hub.enums import ErrorCode

log = structlog.get_logger(__name__)

PARTNER_LATENCY = Histogram(
    "hub_partner_call_seconds",
    "Partner calls by merchant, operation and outcome",
    ["merchant", "operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_CODES = {code.value for code in ErrorCode}


@dataclass(frozen=True)
class PartnerConfig:
    base_url: str
    secret: str
    timeout_seconds: float = 5.0
    retries: int = 2


@dataclass(frozen=True)
class Reply:
    outcome: Outcome
    status: int | None = None
    body: Any = None
    code: ErrorCode | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # the partner's own words, when it refused

    @property
    def applied(self) -> bool:
        return self.outcome == Outcome.APPLIED


class _Unanswered(Exception):
    """A 502/503/504: the partner did not take the call; safe calls are repeated."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


# Connections of a partner's pool, and calls to it at once (PartnerClient's gate).
POOL_CONNECTIONS = 50


class PartnerClient:
    """Signed calls to one partner, through one breaker and a shared connection pool.

    `gate` lets no more calls at once into the pool than it has connections (the others
    wait their turn on it, within their timeout): httpcore checks every queued request
    against every connection on each event of its pool, so 500 calls queued at once (an
    availableOn page for each of 60 days asks each slotted reward) cost the hub more CPU
    than the calls themselves."""

    def __init__(
        self,
        merchant_id: str,
        config: PartnerConfig,
        client: httpx.AsyncClient,
        breaker: CircuitBreaker,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.merchant_id = merchant_id
        self.config = config
        self.client = client
        self.breaker = breaker
        self.gate = gate or asyncio.Semaphore(POOL_CONNECTIONS)

    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        wait_seconds: float | None = None,
    ) -> Reply:
        """One partner call; never raises for the partner's failures, it says what happened."""
        started = time.perf_counter()
        reply = await self._call(method, path, body, params, idempotency_key, wait_seconds)
        PARTNER_LATENCY.labels(self.merchant_id, operation, reply.outcome.value).observe(
            time.perf_counter() - started
        )
        if reply.outcome != Outcome.APPLIED:
            log.info(
                "partner call not applied",
                merchant=self.merchant_id,
                operation=operation,
                outcome=reply.outcome.value,
                status=reply.status,
                reason=unsaid(reply.message, reply.detail),
            )
        return reply

    async def _call(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, str] | None,
        idempotency_key: str | None,
        wait_seconds: float | None,
    ) -> Reply:
        if not await self.breaker.allow():
            return Reply(
                Outcome.REJECTED,
                code=ErrorCode.PARTNER_UNAVAILABLE,
                message=f"{self.merchant_id} is not answering; try again in a few seconds.",
            )
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        safe = method == "GET" or idempotency_key is not None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + (self.config.retries if safe else 0)),
            wait=wait_exponential_jitter(multiplier=0.05, max=0.5),
            retry=retry_if_exception_type((httpx.ConnectError, _Unanswered)),
            reraise=True,
        )
        # Once an attempt got a 502/503/504 the partner (or a gateway in front of it) may
        # have applied the call: a later refused connection does not make it "not sent".
        maybe_applied = False
        try:
            async for attempt in retrying:
                with attempt:
                    headers = {"Content-Type": "application/json", "Accept": "application/json"}
                    headers.update(signing.headers(self.config.secret, payload))
                    if idempotency_key:
                        headers["Idempotency-Key"] = idempotency_key
                    timeout = wait_seconds or self.config.timeout_seconds
                    try:  # as httpx's own wait for a connection would
                        async with asyncio.timeout(timeout):
                            await self.gate.acquire()
                    except TimeoutError:
                        raise httpx.PoolTimeout("no connection to the partner was free") from None
                    try:
                        response = await self.client.request(
                            method,
                            self.config.base_url.rstrip("/") + path,
                            content=payload if body is not None else None,
                            params=params,
                            headers=headers,
                            timeout=timeout,
                        )
                    finally:
                        self.gate.release()
                    if response.status_code in (502, 503, 504):
                        maybe_applied = True
                        raise _Unanswered(response)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            await self.breaker.failure()
            return Reply(
                Outcome.UNKNOWN if maybe_applied else Outcome.REJECTED,
                code=ErrorCode.PARTNER_UNAVAILABLE,
                message=f"{self.merchant_id} could not be reached ({type(exc).__name__})"
                + (" after an answer that may have applied the call." if maybe_applied else "."),
            )
        except _Unanswered as exc:
            await self.breaker.failure()
            return Reply(
                Outcome.UNKNOWN,
                status=exc.response.status_code,
                code=ErrorCode.PARTNER_UNAVAILABLE,
                message=f"{self.merchant_id} answered {exc.response.status_code}.",
            )
        except httpx.HTTPError as exc:  # read timeout, dropped connection: maybe applied
            await self.breaker.failure()
            return Reply(
                Outcome.UNKNOWN,
                code=ErrorCode.PARTNER_UNAVAILABLE,
                message=f"No answer from {self.merchant_id} ({type(exc).__name__}).",
            )
        return await self._reply(response)

    async def _reply(self, response: httpx.Response) -> Reply:
        try:
            data: Any = response.json() if response.content else None
        except ValueError:
            data = None
        if response.status_code >= 500:
            await self.breaker.failure()
            return Reply(
                Outcome.UNKNOWN,
                status=response.status_code,
                code=ErrorCode.PARTNER_UNAVAILABLE,
                message=f"{self.merchant_id} failed with HTTP {response.status_code}.",
            )
        await self.breaker.success()
        if response.status_code == 429:
            # "Not now": the partner took nothing and asks to be called later. Not sent, as
            # a refused connection is: a read shows what is known, a saga tries again.
            return Reply(
                Outcome.REJECTED,
                status=429,
                code=ErrorCode.PARTNER_UNAVAILABLE,
                message=f"{self.merchant_id} is limiting calls (HTTP 429); try again shortly.",
            )
        if response.status_code >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            error = error if isinstance(error, dict) else {}
            code = error.get("code")
            said = partners_words(data)
            message = said or f"{self.merchant_id} refused the request."
            if response.status_code == 404:
                # An answer, not an outage: the partner does not know what was asked for.
                code = code if code in _CODES else ErrorCode.NOT_FOUND.value
                message = (
                    f"{self.merchant_id} answered 404 ({said or 'not found'}): a refusal by "
                    "the partner, not an outage; nothing was changed."
                )
            return Reply(
                Outcome.REJECTED,
                status=response.status_code,
                body=data,
                code=ErrorCode(code) if code in _CODES else ErrorCode.PARTNER_REJECTED,
                message=message,
                detail=said,
            )
        return Reply(Outcome.APPLIED, status=response.status_code, body=data)


MAX_WORDS = 300  # characters of a partner's own words passed on to a caller


def partners_words(data: Any) -> str:
    """The sentence a partner gave with its refusal, as partners write it: under
    `error.message` (the hub's partner API), or `error` or `message` as text. It reaches a
    member's screen: unprintable characters go, runs of spaces become one, and a page of
    text is cut to MAX_WORDS. (They may name the member: the hub shows them only to
    whoever may see the member, hub.sagas.failure_of, and logs them as
    connectors.base.UNSAID.)"""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    found = error.get("message") if isinstance(error, dict) else error
    if not isinstance(found, str) or not found.strip():
        found = data.get("message")
    if not isinstance(found, str):
        return ""
    found = _ESCAPE.sub("", unicodedata.normalize("NFC", found))  # a terminal's colour codes
    words = " ".join("".join(c for c in found if c.isprintable() or c.isspace()).split())
    return words if len(words) <= MAX_WORDS else words[: MAX_WORDS - 1].rstrip() + "…"


_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")  # ANSI escape sequences
