"""HTTP clients of a served GraphQL endpoint: one connection per simulated client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx

from tests.helpers import ADMIN_KEY, Api


class WrongAnswer(AssertionError):
    """A benchmarked request did not do what it should: the run stops."""


class Client:
    """POST /graphql over one keep-alive connection; the data, or WrongAnswer."""

    def __init__(self, http: httpx.AsyncClient, key: str | None) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise WrongAnswer(f"HTTP {response.status_code}: {body}")
        data: dict[str, Any] = body["data"]
        return data

    async def payload(self, mutation: str, field: str, input: dict[str, Any]) -> dict[str, Any]:
        """The payload of `mutation(input: $input)` at `field`, or WrongAnswer when it
        carries userErrors: a benchmarked write that was refused did not happen."""
        payload: dict[str, Any] = (await self.data(mutation, {"input": input}))[field]
        if payload["userErrors"]:
            raise WrongAnswer(str(payload))
        return payload

    def writes(
        self,
        mutation: str,
        field: str,
        input_for: Callable[[int], dict[str, Any]],
        done: Callable[[dict[str, Any]], bool],
        counter: Iterator[int],
    ) -> Callable[[], Awaitable[None]]:
        """An operation that sends `mutation` with the input for the counter's next number
        (a new idempotency key each time), WrongAnswer when its payload is not `done`."""

        async def op() -> None:
            payload = await self.payload(mutation, field, input_for(next(counter)))
            if not done(payload):
                raise WrongAnswer(str(payload))

        return op


@asynccontextmanager
async def clients(url: str, count: int, key: str | None = ADMIN_KEY) -> AsyncIterator[list[Client]]:
    """`count` clients of the server at `url`, each with its own connection."""
    async with AsyncExitStack() as stack:
        found = []
        for _ in range(count):
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1))
            )
            found.append(Client(http, key))
        yield found


@asynccontextmanager
async def admin(url: str) -> AsyncIterator[Api]:
    """The test helpers' API client, for setting up a world through the API."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield Api(http, app=None)
