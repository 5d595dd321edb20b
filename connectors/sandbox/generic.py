"""A partner that speaks the hub's own partner API (connectors/README.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.core import Sandbox


class GenericSandbox(Sandbox):
    name = "generic"

    def __init__(
        self, *args: Any, rewards: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = rewards or [
            {"ref": "CAR-WASH", "kind": "SERVICE", "title": "Car wash", "price": 300},
        ]
        self.catalog_latency_ms = 0

    def routes(self) -> list[Route]:
        async def balance(request: Request) -> Response:
            return await self.balance(request.path_params["ref"], "balance")

        async def debit(request: Request) -> Response:
            return await self.points(
                request, "debit", request.path_params["ref"], "points", -1, "reference"
            )

        async def credit(request: Request) -> Response:
            return await self.points(
                request, "credit", request.path_params["ref"], "points", 1, "reference"
            )

        async def reversal(request: Request) -> Response:
            return await self.void(request, "originalKey")

        async def rewards(_: Request) -> Response:
            async def listing() -> dict[str, Any]:
                return {"rewards": self.catalog}

            return await self.faulted("rewards", listing)

        async def slots(_: Request) -> Response:
            return JSONResponse({"slots": []})

        async def book(request: Request) -> Response:
            data = await self.body(request)
            return await self.book(
                request,
                reward=data.get("rewardRef"),
                slot=data.get("slotRef"),
                quantity=int(data.get("quantity", 1)),
                details={"member": data.get("memberRef"), "reference": data.get("reference")},
                ref_prefix="B",
                ref_field="bookingRef",
            )

        async def cancel(request: Request) -> Response:
            return await self.cancel(request, request.path_params["ref"])

        async def movements(request: Request) -> Response:
            return await self.movements(
                request,
                lambda moves: {
                    "movements": [
                        {k: m[k] for k in ("key", "ref", "points", "at", "reference", "status")}
                        for m in moves
                    ]
                },
            )

        async def health(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        return [
            Route("/points/{ref}", balance),
            Route("/points/{ref}/debit", debit, methods=["POST"]),
            Route("/points/{ref}/credit", credit, methods=["POST"]),
            Route("/points/reversals", reversal, methods=["POST"]),
            Route("/rewards", rewards),
            Route("/rewards/{ref}/slots", slots),
            Route("/bookings", book, methods=["POST"]),
            Route("/bookings/{ref}/cancel", cancel, methods=["POST"]),
            Route("/movements", movements),
            Route("/health", health),
        ]
