"""Sky Air's partner system: miles, award seats by route and date, PNR bookings, and
flight cancellations that it reports to the hub by signed webhook."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox import apis, endpoints
from connectors.sandbox.core import LOCAL, Sandbox

AWARDS: list[dict[str, Any]] = [
    {
        "awardId": "AW-PVG-PEK-Y",
        "route": "PVG-PEK",
        "flight": "SA101",
        "cabin": "ECONOMY",
        "miles": 12000,
        "cashValue": "960.00",
        "depart": "08:00",
        "minutes": 135,
        "description": "Shanghai Pudong to Beijing Capital, one way",
    },
    {
        "awardId": "AW-PVG-CTU-Y",
        "route": "PVG-CTU",
        "flight": "SA305",
        "cabin": "ECONOMY",
        "miles": 15000,
        "cashValue": "1200.00",
        "depart": "13:30",
        "minutes": 200,
        "description": "Shanghai Pudong to Chengdu Tianfu, one way",
    },
    {
        "awardId": "AW-PEK-HGH-J",
        "route": "PEK-HGH",
        "flight": "SA512",
        "cabin": "BUSINESS",
        "miles": 30000,
        "cashValue": "2400.00",
        "depart": "18:45",
        "minutes": 140,
        "description": "Beijing to Hangzhou in business class",
    },
    {
        "awardId": "LOUNGE-PVG",
        "type": "LOUNGE",
        "name": "Sky Lounge at Pudong T2 (one visit)",
        "miles": 3000,
        "cashValue": "240.00",
        "description": "Showers, noodles, quiet.",
    },
]


class AirlineSandbox(Sandbox):
    name = "airline"
    seats_per_flight = 4

    def slot_capacity(self, slot_ref: str) -> int:
        return self.seats_per_flight

    def _seat(self, award: dict[str, Any], date: dt.date) -> dict[str, Any]:
        hour, minute = (int(x) for x in award["depart"].split(":"))
        departure = dt.datetime.combine(date, dt.time(hour, minute), LOCAL)
        seat_id = f"{award['flight']}-{date.isoformat()}"
        return {
            "seatId": seat_id,
            "flight": award["flight"],
            "departure": departure.isoformat(),
            "arrival": (departure + dt.timedelta(minutes=award["minutes"])).isoformat(),
            "available": self.left_in(seat_id),
        }

    def routes(self) -> list[Route]:
        async def seats(request: Request) -> Response:
            award = next((a for a in AWARDS if a["awardId"] == request.path_params["reward"]), None)
            if award is None or award.get("type") == "LOUNGE":
                return JSONResponse({"seats": []})
            days = endpoints.slot_days(request, 7)
            return JSONResponse({"seats": [self._seat(award, day) for day in days]})

        async def book(request: Request) -> Response:
            """A lounge visit books no seat; a flight's booking keeps its flight and date."""
            data = await self.body(request)
            seat = data.get("seatId")
            award = data.get("awardId")
            lounge = any(a["awardId"] == award and a.get("type") == "LOUNGE" for a in AWARDS)
            return await self.book(
                request,
                reward=award,
                slot=None if lounge else seat,
                quantity=int(data.get("passengers", 1)),
                details={
                    "ffp": data.get("ffp"),
                    "passenger": data.get("passengerName"),
                    "reference": data.get("reference"),
                    "flight": seat.rsplit("-", 3)[0] if seat else None,
                    "date": "-".join(seat.split("-")[1:]) if seat else None,
                },
                ref_prefix="",
                ref_field="pnr",
            )

        kinds = {"debit": "REDEEM", "credit": "ACCRUE", "void": "VOID", "manual": "MANUAL"}

        def transactions(moves: list[dict[str, Any]]) -> dict[str, Any]:
            rows = [
                {
                    "idempotencyKey": m["key"],
                    "ffp": m["ref"],
                    "miles": m["points"],
                    "type": kinds.get(m["operation"], "OTHER"),
                    "postedAt": m["at"],
                }
                for m in moves
            ]
            return {"transactions": rows}

        async def cancel_flight(request: Request) -> Response:
            """Sandbox control: the airline cancels a flight and tells the hub."""
            flight = request.path_params["flight"]
            date = (await self.body(request)).get("date")
            hit = []
            async with self.lock:
                for pnr, booking in self.bookings.items():
                    if (
                        booking.get("flight") == flight
                        and booking.get("date") == date
                        and booking["status"] == "CONFIRMED"
                    ):
                        booking["status"] = "CANCELLED_BY_AIRLINE"
                        hit.append({"pnr": pnr, "reference": booking.get("reference")})
                self.save()
            status = None
            if hit and self.hub_url:
                status = await self.notify(
                    {"type": "flight.cancelled", "flight": flight, "date": date, "bookings": hit}
                )
            return JSONResponse({"cancelled": hit, "hubStatus": status})

        return [
            *endpoints.api(
                self,
                apis.AIRLINE,
                rewards=endpoints.constant({"awards": AWARDS}),
                slots=seats,
                movements=transactions,
                book=book,
            ),
            Route("/sandbox/flights/{flight}/cancel", cancel_flight, methods=["POST"]),
        ]
