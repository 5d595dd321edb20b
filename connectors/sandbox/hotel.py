"""Lotus Hotels' partner system: guest points; rooms, upgrades and services by date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox import apis, endpoints
from connectors.sandbox.core import LOCAL, Sandbox

OFFERS: list[dict[str, Any]] = [
    {
        "code": "DLX-NIGHT",
        "type": "ROOM",
        "name": "Deluxe King room, one night",
        "points": 8000,
        "details": "Lake view, breakfast for two.",
        "window": ("14:00", "12:00", 1),
    },
    {
        "code": "UPG-SUITE",
        "type": "UPGRADE",
        "name": "Upgrade to the Lotus Suite",
        "points": 3000,
        "details": "On arrival, subject to the night you booked.",
        "window": ("14:00", "12:00", 1),
    },
    {
        "code": "LATE-CHECKOUT",
        "type": "SERVICE",
        "name": "Late checkout until 16:00",
        "points": 800,
        "details": "Any room type.",
        "window": ("12:00", "16:00", 0),
    },
    {
        "code": "AIRPORT-PICKUP",
        "type": "SERVICE",
        "name": "Airport pickup (Hangzhou Xiaoshan)",
        "points": 1500,
        "details": "Sedan for up to three guests.",
        "window": ("08:00", "22:00", 0),
    },
]


class HotelSandbox(Sandbox):
    name = "hotel"

    def slot_capacity(self, slot_ref: str) -> int:
        return 5

    def routes(self) -> list[Route]:
        async def offers(_: Request) -> Response:
            return JSONResponse(
                {"offers": [{k: v for k, v in o.items() if k != "window"} for o in OFFERS]}
            )

        async def availability(request: Request) -> Response:
            offer = next((o for o in OFFERS if o["code"] == request.path_params["reward"]), None)
            if offer is None:
                return JSONResponse({"dates": []})
            begin, end, nights = offer["window"]
            dates = []
            for day in endpoints.slot_days(request, 7):
                slot = f"{offer['code']}@{day.isoformat()}"
                check_in = dt.datetime.combine(day, dt.time.fromisoformat(begin), LOCAL)
                check_out = dt.datetime.combine(
                    day + dt.timedelta(days=nights), dt.time.fromisoformat(end), LOCAL
                )
                dates.append(
                    {
                        "id": slot,
                        "checkIn": check_in.isoformat(),
                        "checkOut": check_out.isoformat(),
                        "left": self.left_in(slot),
                    }
                )
            return JSONResponse({"dates": dates})

        def ledger(moves: list[dict[str, Any]]) -> dict[str, Any]:
            """The ledger sends an amount and its direction apart."""
            rows = [
                {
                    "requestKey": m["key"],
                    "guestId": m["ref"],
                    "amount": abs(m["points"]),
                    "direction": "DEDUCT" if m["points"] < 0 else "ADD",
                    "time": m["at"],
                }
                for m in moves
            ]
            return {"entries": rows}

        return endpoints.api(
            self,
            apis.HOTEL,
            rewards=offers,
            slots=availability,
            movements=ledger,
        )
