"""The endpoints every sandbox partner has, made from the words it uses for them.

A member's balance, a debit, a credit, a reversal, a booking and its cancellation do
the same at every partner (Sandbox does the work); partners differ only in their
paths and field names. A vertical lists its routes with these endpoints and writes
its own only where it does something else. A path's one parameter is `{ref}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.sandbox.core import Sandbox

Endpoint = Callable[[Request], Awaitable[Response]]

SIGNS = {"debit": -1, "credit": 1}


def balance(sandbox: Sandbox, field: str) -> Endpoint:
    """The member's balance, under `field`."""

    async def endpoint(request: Request) -> Response:
        return await sandbox.balance(request.path_params["ref"], field)

    return endpoint


def points(sandbox: Sandbox, operation: str, field: str, reference_field: str) -> Endpoint:
    """A debit or a credit of the member's points: the amount in `field`."""

    async def endpoint(request: Request) -> Response:
        ref = request.path_params["ref"]
        sign = SIGNS[operation]
        return await sandbox.points(request, operation, ref, field, sign, reference_field)

    return endpoint


def reversal(sandbox: Sandbox, field: str) -> Endpoint:
    """The reversal of a movement, named by its key in `field`."""

    async def endpoint(request: Request) -> Response:
        return await sandbox.void(request, field)

    return endpoint


def booking(
    sandbox: Sandbox,
    *,
    reward: str,
    slot: str | None,
    quantity: str,
    details: Mapping[str, str],
    ref_prefix: str,
    ref_field: str,
) -> Endpoint:
    """A booking; the partner keeps `details` (its name for each: the request's field)."""

    async def endpoint(request: Request) -> Response:
        data = await sandbox.body(request)
        return await sandbox.book(
            request,
            reward=data.get(reward),
            slot=None if slot is None else data.get(slot),
            quantity=int(data.get(quantity, 1)),
            details={name: data.get(source) for name, source in details.items()},
            ref_prefix=ref_prefix,
            ref_field=ref_field,
        )

    return endpoint


def cancel(sandbox: Sandbox) -> Endpoint:
    """The cancellation of the booking the path names."""

    async def endpoint(request: Request) -> Response:
        return await sandbox.cancel(request, request.path_params["ref"])

    return endpoint


def movements(
    sandbox: Sandbox,
    listing: str,
    row: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    name: str = "date",
    fmt: str = "%Y-%m-%d",
) -> Endpoint:
    """A business date's movements (the query's `name`, as `fmt`) under `listing`, each
    written by `row`."""

    def render(moves: list[dict[str, Any]]) -> dict[str, Any]:
        return {listing: [row(m) for m in moves]}

    async def endpoint(request: Request) -> Response:
        return await sandbox.movements(request, render, name=name, fmt=fmt)

    return endpoint


def constant(body: dict[str, Any]) -> Endpoint:
    """The same answer every time: a partner's health check."""

    async def endpoint(_: Request) -> Response:
        return JSONResponse(body)

    return endpoint
