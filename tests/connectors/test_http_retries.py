"""Retry classification: once any attempt may have applied, the outcome stays unknown."""

from __future__ import annotations

import asyncio

import httpx

from connectors.base import Outcome
from connectors.breaker import Breaker
from connectors.http import PartnerClient, PartnerConfig
from connectors.sandbox.runner import free_port
from hub.enums import ErrorCode


async def _gateway_that_answers_once(status: int) -> tuple[str, asyncio.Event]:
    """A real loopback server: the first request gets `status`, then it stops listening
    (as a gateway answers 504 for a partner that then goes down: refused connections)."""
    port = free_port()
    served = asyncio.Event()
    server: asyncio.Server | None = None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        assert server is not None
        server.close()  # refuse every later connection
        writer.write(
            f"HTTP/1.1 {status} Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        served.set()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return f"http://127.0.0.1:{port}", served


async def _call(url: str, retries: int = 2) -> tuple[Outcome, ErrorCode | None]:
    async with httpx.AsyncClient() as client:
        partner = PartnerClient(
            "p", PartnerConfig(base_url=url, secret="s", retries=retries), client, Breaker()
        )
        reply = await partner.call(
            "credit", "POST", "/points/P-1/credit", body={"points": 5}, idempotency_key="cnv_x:c"
        )
        return reply.outcome, reply.code


async def test_a_504_then_a_refused_connection_is_unknown_not_unsent() -> None:
    url, served = await _gateway_that_answers_once(504)
    outcome, code = await _call(url)
    assert served.is_set()
    assert outcome == Outcome.UNKNOWN  # the first attempt may have been applied
    assert code == ErrorCode.PARTNER_UNAVAILABLE


async def test_a_refused_connection_on_every_attempt_is_unsent() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    outcome, code = await _call(url)
    assert (outcome, code) == (Outcome.REJECTED, ErrorCode.PARTNER_UNAVAILABLE)
