"""Which connector serves which program: the factory the hub is given at start."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.airline import AirlineDialect
from connectors.base import Connector
from connectors.breaker import Breaker
from connectors.hosted import HostedConnector
from connectors.hotel import HotelDialect
from connectors.http import PartnerClient, PartnerConfig
from connectors.partner import Dialect, PartnerConnector
from connectors.restaurant import RestaurantDialect
from connectors.scenic import ScenicDialect
from hub.config import Settings
from hub.enums import ConnectorKind
from hub.models import Program

DIALECTS: dict[str, type[Dialect]] = {
    ConnectorKind.HTTP.value: Dialect,
    ConnectorKind.AIRLINE.value: AirlineDialect,
    ConnectorKind.HOTEL.value: HotelDialect,
    ConnectorKind.RESTAURANT.value: RestaurantDialect,
    ConnectorKind.SCENIC.value: ScenicDialect,
}


class MissingSecret(RuntimeError):
    pass


class Registry:
    """Hosted connectors are made per transaction; partner connectors are kept per program,
    sharing one pooled HTTP client, each with its merchant's circuit breaker."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._partners: dict[str, PartnerConnector] = {}
        self.breakers: dict[str, Breaker] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                follow_redirects=False,
            )
        return self._client

    def is_local(self, program: Program) -> bool:
        return program.connector == ConnectorKind.HOSTED.value

    def for_program(self, program: Program, session: Any, actor: str) -> Connector:
        if self.is_local(program):
            assert isinstance(session, AsyncSession), "a hosted connector needs the session"
            return HostedConnector(session, program, self.settings, actor)
        connector = self._partners.get(program.code)
        if connector is None:
            connector = self._partner(program)
            self._partners[program.code] = connector
        return connector

    def _partner(self, program: Program) -> PartnerConnector:
        config = json.loads(program.connector_config or "{}")
        ref = str(config.get("secretRef") or program.merchant_id).upper()
        secret = self.settings.partner_secret(ref)
        if secret is None:
            raise MissingSecret(
                f"No secret for {program.merchant_id}: set HUB_PARTNER_SECRET_{ref}."
            )
        breaker = self.breakers.setdefault(
            program.merchant_id,
            Breaker(
                failures_to_open=int(config.get("breakerFailures", 5)),
                cooldown_seconds=float(config.get("breakerCooldownSeconds", 10)),
            ),
        )
        client = PartnerClient(
            program.merchant_id,
            PartnerConfig(
                base_url=str(config["baseUrl"]),
                secret=secret,
                timeout_seconds=float(
                    config.get("timeoutSeconds", self.settings.partner_timeout_seconds)
                ),
                retries=int(config.get("retries", 2)),
            ),
            self.client,
            breaker,
        )
        return PartnerConnector(DIALECTS[program.connector](), client)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
