"""A restaurant's partner system: member points, set meals and vouchers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox import apis, endpoints
from connectors.sandbox.core import Sandbox

MENU: list[dict[str, Any]] = [
    {
        "sku": "SET-LUNCH",
        "category": "MEAL",
        "name": "Set lunch for one",
        "points": 200,
        "desc": "A 25-yuan set meal: rice, two dishes, soup.",
    },
    {"sku": "DUCK-FOR-TWO", "category": "MEAL", "name": "Roast duck for two", "points": 1500},
    {"sku": "VOUCHER-50", "category": "VOUCHER", "name": "50-yuan dining voucher", "points": 400},
]


class RestaurantSandbox(Sandbox):
    name = "restaurant"

    def routes(self) -> list[Route]:
        async def menu(_: Request) -> Response:
            items = [{**item, "left": self.stock.get(item["sku"])} for item in MENU]
            return JSONResponse({"items": items})

        def history(moves: list[dict[str, Any]]) -> dict[str, Any]:
            rows = [
                {"key": m["key"], "member": m["ref"], "change": m["points"], "when": m["at"]}
                for m in moves
            ]
            return {"history": rows}

        return endpoints.api(self, apis.RESTAURANT, rewards=menu, movements=history)
