"""A partner that speaks the hub's own partner API (connectors/README.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.dialects import Dialect
from connectors.sandbox import endpoints
from connectors.sandbox.core import Sandbox

DIALECT = Dialect()


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
        async def rewards(_: Request) -> Response:
            async def listing() -> dict[str, Any]:
                return {"rewards": self.catalog}

            return await self.faulted("rewards", listing)

        return endpoints.api(
            self,
            DIALECT,
            rewards=rewards,
            slots=endpoints.constant({"slots": []}),
            movements=endpoints.listed(DIALECT.movement_fields, "reference", "status"),
            health={"status": "ok"},
            booking_prefix="B",
        )
