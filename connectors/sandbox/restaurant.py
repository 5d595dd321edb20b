"""A restaurant's partner system: member points, set meals and vouchers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox import endpoints
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
        balance = endpoints.balance(self, "balance")
        spend = endpoints.points(self, "debit", "points", "note")
        earn = endpoints.points(self, "credit", "points", "note")
        refund = endpoints.reversal(self, "key")

        async def menu(_: Request) -> Response:
            items = [{**item, "left": self.stock.get(item["sku"])} for item in MENU]
            return JSONResponse({"items": items})

        order = endpoints.booking(
            self,
            reward="sku",
            slot=None,
            quantity="qty",
            details={"member": "member", "note": "note"},
            ref_prefix="JV-",
            ref_field="voucherCode",
        )
        cancel = endpoints.cancel(self)

        history = endpoints.movements(
            self,
            "history",
            lambda m: {"key": m["key"], "member": m["ref"], "change": m["points"], "when": m["at"]},
        )

        status = endpoints.constant({"ok": True})

        return [
            Route("/members/{ref}", balance),
            Route("/members/{ref}/spend", spend, methods=["POST"]),
            Route("/members/{ref}/earn", earn, methods=["POST"]),
            Route("/refunds", refund, methods=["POST"]),
            Route("/menu", menu),
            Route("/orders", order, methods=["POST"]),
            Route("/orders/{ref}/cancel", cancel, methods=["POST"]),
            Route("/points/history", history),
            Route("/status", status),
        ]
