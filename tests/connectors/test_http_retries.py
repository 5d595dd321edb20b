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


async def test_calls_beyond_the_pool_wait_at_the_gate_not_in_the_pool() -> None:
    """More calls at once than a partner's pool has connections wait their turn before the
    pool: httpcore checks each request queued in it against each connection on every event,
    which made 500 slot calls at once cost more CPU than the calls. Each is still answered,
    and one that cannot get a connection within its timeout is a timeout, as in httpx."""
    port = free_port()
    release = asyncio.Event()

    handlers: list[asyncio.Task[None] | None] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    limits = httpx.Limits(max_connections=4)
    async with server, httpx.AsyncClient(limits=limits) as client:
        config = PartnerConfig(base_url=f"http://127.0.0.1:{port}", secret="s", retries=0)
        partner = PartnerClient("p", config, client, Breaker(), asyncio.Semaphore(4))
        calls = [asyncio.create_task(partner.call("slots", "GET", "/slots")) for _ in range(12)]
        await asyncio.sleep(0.3)
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 4
        assert [r for r in pool._requests if r.is_queued()] == []  # the other 8 at the gate
        release.set()
        assert {r.outcome for r in await asyncio.gather(*calls)} == {Outcome.APPLIED}
        # A call that waits at the gate longer than its timeout gets none of the pool.
        release.clear()
        quick = PartnerConfig(base_url=config.base_url, secret="s", retries=0, timeout_seconds=0.2)
        partner = PartnerClient("p", quick, client, Breaker(), asyncio.Semaphore(1))
        first = asyncio.create_task(partner.call("slots", "GET", "/slots"))
        second = await partner.call("slots", "GET", "/slots")
        assert (second.outcome, second.code) == (Outcome.UNKNOWN, ErrorCode.PARTNER_UNAVAILABLE)
        release.set()
        await first
    await asyncio.gather(*(h for h in handlers if h), return_exceptions=True)
