"""A partner that speaks the hub's own partner API (connectors/README.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox import apis, endpoints
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
        async def rewards(_: Request) -> Response:
            return JSONResponse({"rewards": self.catalog})

        def movements(moves: list[dict[str, Any]]) -> dict[str, Any]:
            parts = ("key", "ref", "points", "at", "reference", "status")
            return {"movements": [{k: m[k] for k in parts} for m in moves]}

        return endpoints.api(
            self,
            apis.GENERIC,
            rewards=rewards,
            slots=endpoints.constant({"slots": []}),
            movements=movements,
        )
