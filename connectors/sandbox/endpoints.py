"""The partner API every sandbox plays, made from the partner's own statement of it.

A member's balance, a debit, a credit, a reversal, a booking and its cancellation do
the same at every partner (Sandbox does the work); partners differ only in their
paths and field names, which each states in apis.py. A vertical gives `api` what it
does its own way (its catalog, its slots, the shape of its movements) and writes an
endpoint of its own only where it does something else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.apis import Api, Booking
from connectors.sandbox.core import LOCAL, Sandbox

Endpoint = Callable[[Request], Awaitable[Response]]
# A day's movements as the ledger keeps them (Ledger.movements_on), in the partner's shape.
Listing = Callable[[list[dict[str, Any]]], dict[str, Any]]

SIGNS = {"debit": -1, "credit": 1}


def api(
    sandbox: Sandbox,
    stated: Api,
    *,
    rewards: Endpoint,
    slots: Endpoint | None = None,
    movements: Listing,
    book: Endpoint | None = None,
) -> list[Route]:
    """The routes of the partner's API at its paths: the common calls made here from its
    field names, the rest as the vertical gives them (`slots` where the partner has
    slots, `book` where it books its own way)."""
    a = stated
    made = [
        ("GET", a.balance, balance(sandbox, a.balance_field)),
        ("POST", a.debit, points(sandbox, "debit", a.amount_field, a.reference_field)),
        ("POST", a.credit, points(sandbox, "credit", a.amount_field, a.reference_field)),
        ("POST", a.reverse, reversal(sandbox, a.reverse_field)),
        ("GET", a.rewards, switched(sandbox, "rewards", rewards)),
    ]
    if a.slots is not None:
        assert slots is not None, f"{a.slots}: the sandbox lists its slots"
        made.append(("GET", a.slots, switched(sandbox, "slots", slots)))
    if book is None:
        assert a.booking is not None, f"{a.book}: the sandbox books its own way"
        book = booking(sandbox, a.booking)
    made += [
        ("POST", a.book, book),
        ("POST", a.cancel, cancel(sandbox)),
        ("GET", a.movements, listing(sandbox, a, movements)),
        ("GET", a.health, constant(a.health_answer)),
    ]
    return [Route(path, endpoint, methods=[method]) for method, path, endpoint in made]


def switched(sandbox: Sandbox, operation: str, endpoint: Endpoint) -> Endpoint:
    """A read the vertical writes (its catalog, its slots) under the switches that name
    `operation`, as the common calls are."""

    async def read(request: Request) -> Response:
        return await sandbox.faulted(operation, lambda: endpoint(request), writes=False)

    return read


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


def booking(sandbox: Sandbox, fields: Booking) -> Endpoint:
    """A booking, under the partner's names for its parts."""

    async def endpoint(request: Request) -> Response:
        data = await sandbox.body(request)
        return await sandbox.book(
            request,
            reward=data.get(fields.reward),
            slot=None if fields.slot is None else data.get(fields.slot),
            quantity=int(data.get(fields.quantity, 1)),
            details={name: data.get(source) for name, source in fields.keeps.items()},
            ref_prefix=fields.ref_prefix,
            ref_field=fields.ref_field,
        )

    return endpoint


def cancel(sandbox: Sandbox) -> Endpoint:
    """The cancellation of the booking the path names."""

    async def endpoint(request: Request) -> Response:
        return await sandbox.cancel(request, request.path_params["booking"])

    return endpoint


def listing(sandbox: Sandbox, stated: Api, render: Listing) -> Endpoint:
    """The movements of the business date the query names, each written by `render`."""

    async def endpoint(request: Request) -> Response:
        name, fmt = stated.movements_date, stated.movements_date_format
        return await sandbox.movements(request, render, name=name, fmt=fmt)

    return endpoint


def slot_days(request: Request, ahead: int) -> list[dt.date]:
    """The days a slots listing covers: the date the query asks for, else the next
    `ahead` days (the partner's local dates)."""
    raw = request.query_params.get("date")
    if raw:
        return [dt.date.fromisoformat(raw)]
    today = dt.datetime.now(LOCAL).date()
    return [today + dt.timedelta(days=n) for n in range(1, ahead + 1)]


def constant(body: dict[str, Any]) -> Endpoint:
    """The same answer every time: a partner's health check."""

    async def endpoint(_: Request) -> Response:
        return JSONResponse(body)

    return endpoint
