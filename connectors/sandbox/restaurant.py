"""A restaurant's partner system: member points, set meals and vouchers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
        async def balance(request: Request) -> Response:
            return await self.balance(request.path_params["ref"], "balance")

        async def spend(request: Request) -> Response:
            return await self.points(
                request, "debit", request.path_params["ref"], "points", -1, "note"
            )

        async def earn(request: Request) -> Response:
            return await self.points(
                request, "credit", request.path_params["ref"], "points", 1, "note"
            )

        async def refund(request: Request) -> Response:
            return await self.void(request, "key")

        async def menu(_: Request) -> Response:
            items = [{**item, "left": self.stock.get(item["sku"])} for item in MENU]
            return JSONResponse({"items": items})

        async def order(request: Request) -> Response:
            data = await self.body(request)
            return await self.book(
                request,
                reward=data.get("sku"),
                slot=None,
                quantity=int(data.get("qty", 1)),
                details={"member": data.get("member"), "note": data.get("note")},
                ref_prefix="JV-",
                ref_field="voucherCode",
            )

        async def cancel(request: Request) -> Response:
            return await self.cancel(request, request.path_params["code"])

        async def history(request: Request) -> Response:
            return await self.movements(
                request,
                lambda moves: {
                    "history": [
                        {
                            "key": m["key"],
                            "member": m["ref"],
                            "change": m["points"],
                            "when": m["at"],
                        }
                        for m in moves
                    ]
                },
            )

        async def status(_: Request) -> Response:
            return JSONResponse({"ok": True})

        return [
            Route("/members/{ref}", balance),
            Route("/members/{ref}/spend", spend, methods=["POST"]),
            Route("/members/{ref}/earn", earn, methods=["POST"]),
            Route("/refunds", refund, methods=["POST"]),
            Route("/menu", menu),
            Route("/orders", order, methods=["POST"]),
            Route("/orders/{code}/cancel", cancel, methods=["POST"]),
            Route("/points/history", history),
            Route("/status", status),
        ]
