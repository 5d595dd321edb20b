"""What every sandbox partner shares: its ledger, its switches, signatures, admin routes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors import signing

# Sandbox partners keep their books in China Standard Time, like the hub's default
# settlement zone: a movement's business date is its local date there.
LOCAL = dt.timezone(dt.timedelta(hours=8))


class PartnerError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": self.code, "message": self.message}}, status_code=self.status
        )


# The partner's calls the switches can name (`Faults.operations`): what `faulted` runs.
OPERATIONS = frozenset(
    {"debit", "credit", "reverse", "book", "cancel", "movements", "rewards", "slots", "balance"}
)
# Calls the switches hit only when `operations` names them: the reads (a member's balance
# is read on every page of a storefront, the catalog and its slots on every mall page):
# switches meant for the moves leave them alone.
NAMED_ONLY = frozenset({"balance", "rewards", "slots"})


@dataclass
class Faults:
    """Switches; `operations` limits them to some calls (e.g. ["debit"]), else all moves."""

    latency_ms: int = 0
    error_rate: float = 0.0  # this share of calls gets 503 before anything is applied
    timeout_before_apply: bool = False  # hang past the caller's timeout, apply nothing
    lose_response: bool = False  # apply, then hang so the answer never arrives in time
    hang_seconds: float = 8.0
    # Answer instead, applying nothing: {"status": 429} or {"status": 200, "text": "<html>"}
    # or {"status": 200, "json": {"miles": -5}} (a partner that answers nonsense).
    answer_with: dict[str, Any] | None = None
    operations: list[str] | None = None

    def hits(self, operation: str) -> bool:
        if self.operations is None:
            return operation not in NAMED_ONLY
        return operation in self.operations


@dataclass
class Ledger:
    """The partner's own members and their balances; moves are idempotent by key."""

    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    moves: dict[str, dict[str, Any]] = field(default_factory=dict)
    tombstones: list[str] = field(default_factory=list)

    def member(self, ref: str) -> dict[str, Any]:
        found = self.members.get(ref)
        if found is None:
            raise PartnerError(404, "NOT_FOUND", f"No member {ref}.")
        return found

    def move(
        self, key: str, operation: str, ref: str, delta: int, reference: str | None
    ) -> dict[str, Any]:
        if key in self.moves:
            return dict(self.moves[key]["response"])  # the same answer for the same key
        if key in self.tombstones:
            raise PartnerError(409, "PARTNER_REJECTED", f"{key} was voided before it arrived.")
        if delta == 0:
            raise PartnerError(422, "INVALID_INPUT", "The amount must be positive.")
        member = self.member(ref)
        if member["balance"] + delta < 0:
            raise PartnerError(422, "INSUFFICIENT_POINTS", f"{ref} has {member['balance']} points.")
        member["balance"] += delta
        txn = "T" + secrets.token_hex(6).upper()
        response = {"transactionId": txn, "balance": member["balance"]}
        self.moves[key] = {
            "operation": operation,
            "ref": ref,
            "delta": delta,
            "reference": reference,
            "status": "APPLIED",
            "response": response,
            "at": now_iso(),
        }
        return response

    def void(self, key: str, original: str) -> dict[str, Any]:
        if key in self.moves:
            return dict(self.moves[key]["response"])
        move = self.moves.get(original)
        returned = 0  # the points this void gave back (or took back) at the partner
        if move is None:
            # Never arrived (or not yet): remember it, so that a late arrival is refused.
            self.tombstones.append(original)
            response = {"transactionId": None, "voided": False}
        elif move["status"] == "VOIDED":
            response = {"transactionId": move.get("voidedBy"), "voided": True}
        else:
            returned = -move["delta"]
            member = self.member(move["ref"])
            member["balance"] -= move["delta"]
            move["status"] = "VOIDED"
            move["voidedBy"] = "V" + secrets.token_hex(6).upper()
            response = {
                "transactionId": move["voidedBy"],
                "voided": True,
                "balance": member["balance"],
            }
        self.moves[key] = {
            "operation": "void",
            "ref": move["ref"] if move else None,
            "delta": 0,
            "points": returned,
            "original": original,
            "status": "APPLIED",
            "response": response,
            "at": now_iso(),
        }
        return response

    def movements_on(self, day: dt.date) -> list[dict[str, Any]]:
        """Every movement applied on `day` (the partner's local date), in the order made:
        key (the hub's Idempotency-Key), member ref, signed points, time, what it was."""
        found = []
        for key, move in self.moves.items():
            at = move.get("at")
            if at is None or dt.datetime.fromisoformat(at).astimezone(LOCAL).date() != day:
                continue
            found.append(
                {
                    "key": key,
                    "ref": move["ref"],
                    "points": int(move.get("points", move["delta"])),
                    "operation": move["operation"],
                    "reference": move.get("reference"),
                    "status": move["status"],
                    "at": at,
                }
            )
        return found


class Sandbox:
    """One partner: state, switches, signature checks, and its Starlette app."""

    name = "partner"

    def __init__(
        self,
        merchant_id: str,
        secret: str,
        *,
        hub_url: str | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.merchant_id = merchant_id
        self.secret = secret
        self.hub_url = hub_url
        self.state_file = state_file
        self.ledger = Ledger()
        self.bookings: dict[str, dict[str, Any]] = {}
        self.stock: dict[str, int] = {}  # reward -> units left (absent: unlimited)
        self.capacity: dict[str, int] = {}  # slot -> places left (absent: the default)
        self.faults = Faults()
        self.stats: Counter[str] = Counter()
        self.lock = asyncio.Lock()
        self.load()

    # ------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        return {
            "ledger": asdict(self.ledger),
            "bookings": self.bookings,
            "stock": self.stock,
            "capacity": self.capacity,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.ledger = Ledger(**data["ledger"])
        self.bookings = data["bookings"]
        self.stock = data.get("stock", {})
        self.capacity = data.get("capacity", {})

    # ------------------------------------------------------------ inventory and bookings
    def slot_capacity(self, slot_ref: str) -> int:
        """Places a slot has before any booking; verticals say how many."""
        return 10

    def left_in(self, slot_ref: str) -> int:
        return self.capacity.get(slot_ref, self.slot_capacity(slot_ref))

    async def book(
        self,
        request: Request,
        *,
        reward: Any,
        slot: Any,
        quantity: int,
        details: dict[str, Any],
        ref_prefix: str,
        ref_field: str,
    ) -> Response:
        key = self.key(request)

        async def apply() -> dict[str, Any]:
            for ref, booking in self.bookings.items():
                if booking["key"] == key:
                    return {ref_field: ref}
            if quantity < 1:
                raise PartnerError(422, "INVALID_INPUT", "quantity must be at least 1.")
            if reward in self.stock and self.stock[reward] < quantity:
                raise PartnerError(409, "OUT_OF_STOCK", f"{reward} is sold out.")
            if slot is not None and self.left_in(slot) < quantity:
                raise PartnerError(409, "SLOT_UNAVAILABLE", f"{slot} is full.")
            if reward in self.stock:
                self.stock[reward] -= quantity
            if slot is not None:
                self.capacity[slot] = self.left_in(slot) - quantity
            ref = ref_prefix + secrets.token_hex(3).upper()
            self.bookings[ref] = {
                "key": key,
                "reward": reward,
                "slot": slot,
                "quantity": quantity,
                "status": "CONFIRMED",
                **details,
            }
            return {ref_field: ref}

        return await self.faulted("book", apply)

    async def cancel(self, request: Request, ref: str) -> Response:
        self.key(request)

        async def apply() -> dict[str, Any]:
            booking = self.bookings.get(ref)
            if booking is None:
                raise PartnerError(404, "NOT_FOUND", f"No booking {ref}.")
            if booking["status"] != "CANCELLED":
                booking["status"] = "CANCELLED"
                if booking["reward"] in self.stock:
                    self.stock[booking["reward"]] += booking["quantity"]
                if booking["slot"] is not None:
                    self.capacity[booking["slot"]] = (
                        self.left_in(booking["slot"]) + booking["quantity"]
                    )
            return {"bookingRef": ref, "status": "CANCELLED"}

        return await self.faulted("cancel", apply)

    def load(self) -> None:
        if self.state_file and self.state_file.exists():
            self.restore(json.loads(self.state_file.read_text()))

    def save(self) -> None:
        if self.state_file:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.snapshot()))
            tmp.replace(self.state_file)

    # ------------------------------------------------------------ requests
    async def body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        return json.loads(raw) if raw else {}

    def key(self, request: Request) -> str:
        key = request.headers.get("idempotency-key")
        if not key:
            raise PartnerError(400, "INVALID_INPUT", "Idempotency-Key header is required.")
        return key

    async def faulted(
        self,
        operation: str,
        apply: Callable[[], Awaitable[dict[str, Any] | Response]],
        *,
        writes: bool = True,
    ) -> Response:
        """Run `apply` under the switches, as a flaky partner would (`writes`: it changes
        the partner's state, which is then saved). Its answer is a JSON body, or the
        response itself (an endpoint run under the switches: endpoints.switched)."""
        assert operation in OPERATIONS, f"{operation!r} is not in OPERATIONS"
        self.stats[operation] += 1
        faults = self.faults
        if faults.hits(operation):
            if faults.answer_with is not None:
                return _answer(faults.answer_with)
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.error_rate and random.random() < faults.error_rate:
                return JSONResponse(
                    {"error": {"code": "UNAVAILABLE", "message": "try later"}}, status_code=503
                )
            if faults.timeout_before_apply:
                await asyncio.sleep(faults.hang_seconds)
                return JSONResponse(
                    {"error": {"code": "TIMEOUT", "message": "gave up"}}, status_code=504
                )
        try:
            async with self.lock:
                result = await apply()
                if writes:
                    self.save()
        except PartnerError as exc:
            return exc.response()
        if faults.hits(operation) and faults.lose_response:
            await asyncio.sleep(faults.hang_seconds)
        return result if isinstance(result, Response) else JSONResponse(result)

    async def points(
        self,
        request: Request,
        operation: str,
        ref: str,
        field: str,
        sign: int,
        reference_field: str,
    ) -> Response:
        data = await self.body(request)
        key = self.key(request)
        amount = int(data.get(field, 0))

        async def apply() -> dict[str, Any]:
            if amount <= 0:
                raise PartnerError(422, "INVALID_INPUT", f"{field} must be positive.")
            return self.ledger.move(key, operation, ref, sign * amount, data.get(reference_field))

        return await self.faulted(operation, apply)

    async def void(self, request: Request, field: str) -> Response:
        data = await self.body(request)
        key = self.key(request)

        async def apply() -> dict[str, Any]:
            original = data.get(field)
            if not original:
                raise PartnerError(422, "INVALID_INPUT", f"{field} is required.")
            return self.ledger.void(key, str(original))

        return await self.faulted("reverse", apply)

    async def movements(
        self,
        request: Request,
        render: Callable[[list[dict[str, Any]]], dict[str, Any]],
        *,
        name: str = "date",
        fmt: str = "%Y-%m-%d",
    ) -> Response:
        """The movements of one business date, in the vertical's own shape (`render`)."""
        try:
            day = query_date(request, name, fmt)
        except PartnerError as exc:
            return exc.response()

        async def listing() -> dict[str, Any]:
            return render(self.ledger.movements_on(day))

        return await self.faulted("movements", listing)

    async def balance(self, ref: str, field: str) -> Response:
        """The member's balance, and the name the number is held under when known (the hub
        checks it before it links the number to a member)."""

        async def read() -> dict[str, Any]:
            member = self.ledger.member(ref)
            answer: dict[str, Any] = {field: member["balance"]}
            if member.get("name"):
                answer["name"] = member["name"]
            return answer

        return await self.faulted("balance", read, writes=False)

    # ------------------------------------------------------------ webhooks to the hub
    async def notify(self, event: dict[str, Any]) -> int:
        """Send a signed event to the hub; the HTTP status it answered."""
        assert self.hub_url, "this sandbox has no hub to notify"
        event = {"eventId": "E" + secrets.token_hex(8), **event}
        body = json.dumps(event).encode()
        headers = signing.headers(self.secret, body, prefix="Partner")
        headers["X-Partner-Event-Id"] = event["eventId"]
        headers["Content-Type"] = "application/json"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{self.hub_url.rstrip('/')}/webhooks/{self.merchant_id}",
                content=body,
                headers=headers,
            )
        self.stats["webhooks"] += 1
        return response.status_code

    # ------------------------------------------------------------ the app
    def routes(self) -> list[Route]:
        """The partner's own API; each vertical defines its own."""
        raise NotImplementedError

    def admin_routes(self) -> list[Route]:
        async def set_faults(request: Request) -> Response:
            body = await self.body(request)
            known = {f.name for f in fields(Faults)}
            unknown = sorted(set(body) - known) if isinstance(body, dict) else ["(not an object)"]
            if unknown:
                message = f"Unknown fault switches {unknown}; the switches are {sorted(known)}."
                return PartnerError(400, "INVALID_INPUT", message).response()
            named = body.get("operations")
            if named is not None and (
                not isinstance(named, list) or set(map(str, named)) - OPERATIONS
            ):
                message = (
                    f"operations {named!r} names a call the sandbox partners do not have; "
                    f"their calls are {sorted(OPERATIONS)}."
                )
                return PartnerError(400, "INVALID_INPUT", message).response()
            answer = body.get("answer_with")
            if answer is not None and (
                not isinstance(answer, dict) or not isinstance(answer.get("status", 200), int)
            ):
                message = (
                    f"answer_with {answer!r} is not an answer: give an object such as "
                    '{"status": 429} or {"status": 200, "text": "..."} or {"json": {...}}.'
                )
                return PartnerError(400, "INVALID_INPUT", message).response()
            self.faults = Faults(**body)
            return JSONResponse(asdict(self.faults))

        async def put_member(request: Request) -> Response:
            data = await self.body(request)
            async with self.lock:
                member = self.ledger.members.setdefault(
                    data["ref"], {"name": data.get("name", ""), "balance": 0}
                )
                member["balance"] = int(data.get("balance", member["balance"]))
                self.save()
            return JSONResponse({"ref": data["ref"], **member})

        async def get_member(request: Request) -> Response:
            ref = request.path_params["ref"]
            return JSONResponse(self.ledger.members.get(ref) or {}, status_code=200)

        async def stats(_: Request) -> Response:
            return JSONResponse(dict(self.stats))

        async def plant(request: Request) -> Response:
            """A movement the partner records on its own (or with other points than the hub
            asked): how tests plant a reconciliation break."""
            data = await self.body(request)
            key, points = str(data["key"]), int(data["points"])
            async with self.lock:
                move = self.ledger.moves.get(key)
                if move is None:
                    self.ledger.move(key, "manual", str(data["ref"]), points, data.get("reference"))
                else:
                    member = self.ledger.member(move["ref"])
                    old = int(move.get("points", move["delta"]))
                    member["balance"] += points - old
                    move["points" if "points" in move else "delta"] = points
                self.save()
            return JSONResponse({"key": key, "points": points})

        return [
            Route("/sandbox/faults", set_faults, methods=["POST"]),
            Route("/sandbox/members", put_member, methods=["POST"]),
            Route("/sandbox/members/{ref}", get_member),
            Route("/sandbox/stats", stats),
            Route("/sandbox/movements", plant, methods=["POST"]),
        ]

    def app(self) -> Starlette:
        sandbox = self

        class Signed:
            """Every call but the sandbox's own controls must carry the hub's signature."""

            def __init__(self, inner: Any) -> None:
                self.inner = inner

            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] != "http" or scope["path"].startswith("/sandbox/"):
                    await self.inner(scope, receive, send)
                    return
                request = Request(scope, receive)
                body = await request.body()
                problem = signing.verify(
                    sandbox.secret,
                    request.headers.get("x-hub-timestamp"),
                    request.headers.get("x-hub-signature"),
                    body,
                )
                if problem:
                    sandbox.stats["bad_signatures"] += 1
                    response = JSONResponse(
                        {"error": {"code": "UNAUTHENTICATED", "message": problem}}, status_code=401
                    )
                    await response(scope, receive, send)
                    return
                sandbox.stats["verified"] += 1

                async def replay() -> dict[str, Any]:
                    return {"type": "http.request", "body": body, "more_body": False}

                await self.inner(scope, replay, send)

        app = Starlette(routes=[*self.routes(), *self.admin_routes()])
        app.add_middleware(Signed)
        return app


def _answer(answer: dict[str, Any]) -> Response:
    """The answer a switch gives instead of the partner's own (Faults.answer_with)."""
    status = int(answer.get("status", 200))
    if "text" in answer:
        return Response(str(answer["text"]), status_code=status, media_type="text/html")
    return JSONResponse(answer.get("json"), status_code=status)


def now_iso() -> str:
    return dt.datetime.now(LOCAL).isoformat()


def query_date(request: Request, name: str = "date", fmt: str = "%Y-%m-%d") -> dt.date:
    """The business date a movements call asks for; a bad one is refused."""
    raw = request.query_params.get(name, "")
    try:
        return dt.datetime.strptime(raw, fmt).date()
    except ValueError:
        raise PartnerError(422, "INVALID_INPUT", f"{name} must be a date ({fmt}).") from None


def now_ms() -> int:
    return int(time.time() * 1000)
