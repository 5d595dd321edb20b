"""Live sandbox partners for tests: real HTTP servers on loopback, one per merchant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.sandbox.airline import AirlineSandbox
from connectors.sandbox.core import Sandbox
from connectors.sandbox.generic import GenericSandbox
from connectors.sandbox.hotel import HotelSandbox
from connectors.sandbox.restaurant import RestaurantSandbox
from connectors.sandbox.runner import Running, serve
from connectors.sandbox.scenic import ScenicSandbox
from tests.helpers import Api, register

KINDS: dict[str, tuple[type[Sandbox], str, str]] = {
    "AIRLINE": (AirlineSandbox, "AIRLINE", "AIRLINE"),
    "HOTEL": (HotelSandbox, "HOTEL", "HOTEL"),
    "RESTAURANT": (RestaurantSandbox, "RESTAURANT", "RESTAURANT"),
    "SCENIC": (ScenicSandbox, "SCENIC_SPOT", "SCENIC"),
    "HTTP": (GenericSandbox, "RETAIL", "HTTP"),
}


@dataclass
class Partners:
    running: dict[str, Running] = field(default_factory=dict)

    def secrets(self) -> dict[str, str]:
        return {mid.upper(): r.sandbox.secret for mid, r in self.running.items()}

    def url(self, merchant_id: str) -> str:
        return self.running[merchant_id].url

    def sandbox(self, merchant_id: str) -> Sandbox:
        return self.running[merchant_id].sandbox

    async def start(self, merchant_id: str, kind: str, **kwargs: Any) -> Running:
        cls = KINDS[kind][0]
        sandbox = cls(merchant_id, f"secret-{merchant_id}", **kwargs)
        running = await serve(sandbox)
        self.running[merchant_id] = running
        return running

    async def stop(self, merchant_id: str) -> None:
        await self.running[merchant_id].stop()

    async def restart(self, merchant_id: str) -> None:
        old = self.running[merchant_id]
        self.running[merchant_id] = await serve(old.sandbox, old.port)

    async def control(self, merchant_id: str, path: str, body: dict[str, Any]) -> Any:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{self.url(merchant_id)}/sandbox/{path}", json=body)
            response.raise_for_status()
            return response.json()

    async def faults(self, merchant_id: str, **switches: Any) -> None:
        await self.control(merchant_id, "faults", switches)

    async def member(self, merchant_id: str, ref: str, balance: int, name: str = "") -> None:
        """The partner's own member; with no name, the partner does not report one."""
        await self.control(merchant_id, "members", {"ref": ref, "name": name, "balance": balance})

    def balance(self, merchant_id: str, ref: str) -> int:
        return int(self.sandbox(merchant_id).ledger.members[ref]["balance"])

    async def close(self) -> None:
        """Stop every partner still serving, at once (uvicorn takes 0.1 to 0.2 s to stop a
        server, mostly its main loop's tick: one after another, five partners made a
        test's teardown 0.85 s)."""
        await asyncio.gather(
            *(running.stop() for running in self.running.values() if not running.task.done())
        )


@asynccontextmanager
async def partners() -> AsyncIterator[Partners]:
    found = Partners()
    try:
        yield found
    finally:
        await found.close()


async def register_connected(
    api: Api, partners: Partners, merchant_id: str, code: str, kind: str, **extra: Any
) -> None:
    """Register a merchant whose program is served by its live sandbox partner."""
    _, category, connector = KINDS[kind]
    config = {
        "baseUrl": partners.url(merchant_id),
        "secretRef": merchant_id.upper(),
        "timeoutSeconds": extra.pop("timeoutSeconds", 0.5),
        "breakerFailures": extra.pop("breakerFailures", 5),
        "breakerCooldownSeconds": extra.pop("breakerCooldownSeconds", 30),
        "retries": extra.pop("retries", 1),
    }
    await register(
        api,
        merchant_id,
        code,
        category=category,
        connector=connector,
        connectorConfig=json.dumps(config),
        **extra,
    )
