"""A partner that speaks the hub's own partner API (connectors/README.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.sandbox import endpoints
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
        balance = endpoints.balance(self, "balance")
        debit = endpoints.points(self, "debit", "points", "reference")
        credit = endpoints.points(self, "credit", "points", "reference")
        reversal = endpoints.reversal(self, "originalKey")

        async def rewards(_: Request) -> Response:
            async def listing() -> dict[str, Any]:
                return {"rewards": self.catalog}

            return await self.faulted("rewards", listing)

        slots = endpoints.constant({"slots": []})

        book = endpoints.booking(
            self,
            reward="rewardRef",
            slot="slotRef",
            quantity="quantity",
            details={"member": "memberRef", "reference": "reference"},
            ref_prefix="B",
            ref_field="bookingRef",
        )
        cancel = endpoints.cancel(self)

        movements = endpoints.movements(
            self,
            "movements",
            lambda m: {k: m[k] for k in ("key", "ref", "points", "at", "reference", "status")},
        )

        health = endpoints.constant({"status": "ok"})

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
