"""Lotus Hotels' partner system: guest points; rooms, upgrades and services by date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox import endpoints
from connectors.sandbox.core import Sandbox

CST = dt.timezone(dt.timedelta(hours=8))
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
        points = endpoints.balance(self, "points")
        deduct = endpoints.points(self, "debit", "amount", "reference")
        add = endpoints.points(self, "credit", "amount", "reference")
        reversal = endpoints.reversal(self, "key")

        async def offers(_: Request) -> Response:
            return JSONResponse(
                {"offers": [{k: v for k, v in o.items() if k != "window"} for o in OFFERS]}
            )

        async def availability(request: Request) -> Response:
            offer = next((o for o in OFFERS if o["code"] == request.path_params["offer"]), None)
            if offer is None:
                return JSONResponse({"dates": []})
            raw = request.query_params.get("date")
            start = dt.date.fromisoformat(raw) if raw else dt.datetime.now(CST).date()
            days = [start] if raw else [start + dt.timedelta(days=n) for n in range(1, 8)]
            begin, end, nights = offer["window"]
            dates = []
            for day in days:
                slot = f"{offer['code']}@{day.isoformat()}"
                check_in = dt.datetime.combine(day, dt.time.fromisoformat(begin), CST)
                check_out = dt.datetime.combine(
                    day + dt.timedelta(days=nights), dt.time.fromisoformat(end), CST
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

        reserve = endpoints.booking(
            self,
            reward="offer",
            slot="availabilityId",
            quantity="rooms",
            details={"guest": "guestId", "reference": "reference"},
            ref_prefix="LTS-",
            ref_field="confirmation",
        )
        cancel = endpoints.cancel(self)

        ledger = endpoints.movements(
            self,
            "entries",
            lambda m: {
                "requestKey": m["key"],
                "guestId": m["ref"],
                "amount": abs(m["points"]),
                "direction": "DEDUCT" if m["points"] < 0 else "ADD",
                "time": m["at"],
            },
            name="day",
        )

        ping = endpoints.constant({"pong": True})

        return [
            Route("/api/guests/{ref}/points", points),
            Route("/api/guests/{ref}/points/deduct", deduct, methods=["POST"]),
            Route("/api/guests/{ref}/points/add", add, methods=["POST"]),
            Route("/api/points/reversals", reversal, methods=["POST"]),
            Route("/api/offers", offers),
            Route("/api/offers/{offer}/availability", availability),
            Route("/api/reservations", reserve, methods=["POST"]),
            Route("/api/reservations/{ref}/cancel", cancel, methods=["POST"]),
            Route("/api/points/ledger", ledger),
            Route("/api/ping", ping),
        ]
