"""The partner API every sandbox plays, made from the hub's Dialect of that partner.

A member's balance, a debit, a credit, a reversal, a booking and its cancellation do
the same at every partner (Sandbox does the work); partners differ only in their
paths and field names, which the partner's Dialect (connectors/dialects.py) names once
for the connector and its sandbox. A vertical gives `api` what it does its own way
(its catalog, its slots, the shape of its movements, its health answer) and writes an
endpoint of its own only where it does something else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.dialects import Dialect
from connectors.fields import BookingFields, MovementFields
from connectors.sandbox.core import LOCAL, Sandbox

Endpoint = Callable[[Request], Awaitable[Response]]
# A day's movements as the ledger keeps them (Ledger.movements_on), in the partner's shape.
Listing = Callable[[list[dict[str, Any]]], dict[str, Any]]

SIGNS = {"debit": -1, "credit": 1}


def api(
    sandbox: Sandbox,
    dialect: Dialect,
    *,
    rewards: Endpoint,
    slots: Endpoint | None = None,
    movements: Listing | None = None,
    health: dict[str, Any],
    booking_prefix: str = "",
    book: Endpoint | None = None,
) -> list[Route]:
    """The routes of the partner's API, at the dialect's paths: the common calls made
    here from its field names, the rest as the vertical gives them: `slots` where the
    dialect has slots, `movements` where they are not simply `listed`, `book` where the
    vertical books its own way."""
    d = dialect
    made = [
        (d.balance, balance(sandbox, d.balance_field, d.name_field)),
        (d.debit, points(sandbox, "debit", d.amount_field, d.reference_field)),
        (d.credit, points(sandbox, "credit", d.amount_field, d.reference_field)),
        (d.reverse, reversal(sandbox, d.reverse_field)),
        (d.rewards, rewards),
    ]
    if d.slots is not None:
        assert slots is not None, f"{d.kind} books by slot: its sandbox lists them"
        made.append((d.slots, slots))
    made += [
        (d.book, book or booking(sandbox, d.booking_fields, booking_prefix)),
        (d.cancel, cancel(sandbox)),
        (d.movements, listing(sandbox, d.movement_fields, movements or listed(d.movement_fields))),
        (d.health, constant(health)),
    ]
    return [Route(call.path, endpoint, methods=[call.method]) for call, endpoint in made]


def balance(sandbox: Sandbox, field: str, name_field: str) -> Endpoint:
    """The member's balance, under `field` (and the name, under `name_field`, if known)."""

    async def endpoint(request: Request) -> Response:
        return await sandbox.balance(request.path_params["ref"], field, name_field)

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


def booking(sandbox: Sandbox, fields: BookingFields, ref_prefix: str) -> Endpoint:
    """A booking, under the partner's names for its parts; it keeps the member and the
    reference under those names too, and answers a reference made with `ref_prefix`."""

    async def endpoint(request: Request) -> Response:
        data = await sandbox.body(request)
        return await sandbox.book(
            request,
            reward=data.get(fields.reward),
            slot=None if fields.slot is None else data.get(fields.slot),
            quantity=int(data.get(fields.quantity, 1)),
            details={name: data.get(name) for name in (fields.member, fields.reference)},
            ref_prefix=ref_prefix,
            ref_field=fields.booking_ref,
        )

    return endpoint


def cancel(sandbox: Sandbox) -> Endpoint:
    """The cancellation of the booking the path names."""

    async def endpoint(request: Request) -> Response:
        return await sandbox.cancel(request, request.path_params["booking"])

    return endpoint


def listing(sandbox: Sandbox, fields: MovementFields, render: Listing) -> Endpoint:
    """The movements of the business date the query names (as the dialect asks for it),
    each written by `render`."""

    async def endpoint(request: Request) -> Response:
        return await sandbox.movements(request, render, name=fields.date, fmt=fields.date_format)

    return endpoint


def listed(fields: MovementFields, *extra: str) -> Listing:
    """Movements listed under the dialect's names: each one's key, member, points and
    time, and the parts named in `extra` as the ledger names them."""

    def render(moves: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            fields.listing: [
                {
                    fields.key: m["key"],
                    fields.ref: m["ref"],
                    fields.points: m["points"],
                    fields.at: m["at"],
                    **{name: m[name] for name in extra},
                }
                for m in moves
            ]
        }

    return render


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
