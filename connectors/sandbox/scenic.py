"""West Lake's partner system: points and tickets by entry time slot.

Cash and points tickets are sold from one inventory of entry windows, so a
ticket for points offers exactly the windows of a paid ticket.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox import apis, endpoints
from connectors.sandbox.core import LOCAL, Sandbox

TICKETS: list[dict[str, Any]] = [
    {
        "id": "WL-BOAT",
        "name": "West Lake boat tour",
        "points": 600,
        "cashPrice": "55.00",
        "desc": "Forty minutes on the lake, Three Pools Mirroring the Moon.",
    },
    {
        "id": "LEIFENG",
        "name": "Leifeng Pagoda entry",
        "points": 400,
        "cashPrice": "40.00",
        "desc": "Entry by time slot.",
    },
]
WINDOWS = [("08:00", "10:00"), ("10:00", "12:00"), ("13:00", "15:00"), ("15:00", "17:00")]


class ScenicSandbox(Sandbox):
    name = "scenic"

    def slot_capacity(self, slot_ref: str) -> int:
        return 50

    def windows(self, ticket: str, day: dt.date) -> list[dict[str, Any]]:
        slots = []
        for start, end in WINDOWS:
            slot = f"{ticket}@{day.isoformat()}T{start}"
            slots.append(
                {
                    "id": slot,
                    "enter_from": dt.datetime.combine(
                        day, dt.time.fromisoformat(start), LOCAL
                    ).isoformat(),
                    "enter_until": dt.datetime.combine(
                        day, dt.time.fromisoformat(end), LOCAL
                    ).isoformat(),
                    "capacity_left": self.left_in(slot),
                }
            )
        return slots

    def routes(self) -> list[Route]:
        async def timeslots(request: Request) -> Response:
            ticket = request.path_params["reward"]
            if not any(t["id"] == ticket for t in TICKETS):
                return JSONResponse({"timeslots": []})
            channel = request.query_params.get("channel", "cash")
            if channel not in ("cash", "points"):
                return JSONResponse({"error": {"code": "INVALID_INPUT", "message": channel}}, 422)
            days = endpoints.slot_days(request, 3)

            # Both channels read the same windows: the channel changes nothing here.
            return JSONResponse({"timeslots": [s for d in days for s in self.windows(ticket, d)]})

        def transactions(moves: list[dict[str, Any]]) -> dict[str, Any]:
            """Every answer comes in an envelope; a movement's time is in milliseconds."""
            rows = [
                {
                    "key": m["key"],
                    "account": m["ref"],
                    "pointsDelta": m["points"],
                    "createTime": int(dt.datetime.fromisoformat(m["at"]).timestamp() * 1000),
                }
                for m in moves
            ]
            return {"code": 0, "data": {"total": len(rows), "list": rows}}

        return endpoints.api(
            self,
            apis.SCENIC,
            rewards=endpoints.constant({"tickets": TICKETS}),
            slots=timeslots,
            movements=transactions,
        )
