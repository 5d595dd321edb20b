"""Which connector serves which program: the factory the hub is given at start."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import certifi
import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Connector
from connectors.breaker import Breaker, BreakerStore, CircuitBreaker, SharedBreaker
from connectors.dialects import DIALECTS
from connectors.hosted import HostedConnector
from connectors.http import POOL_CONNECTIONS, PartnerClient, PartnerConfig
from connectors.partner import PartnerConnector, Unconfigured
from hub import partner_urls
from hub.config import Settings
from hub.enums import ConnectorKind
from hub.models import Program

log = structlog.get_logger(__name__)


class Registry:
    """Hosted connectors are made per transaction; partner connectors are kept per program,
    sharing one pooled HTTP client, each with its merchant's circuit breaker: in Redis,
    shared by every worker and replica, when HUB_REDIS_URL is set; else in this process."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._shared = client
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}  # each pool's (PartnerClient)
        self._tls: ssl.SSLContext | None = None
        self._partners: dict[str, Connector] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self._store: BreakerStore | None = None
        if settings.redis_url:
            self._store = BreakerStore(settings.redis_url, settings.redis_prefix + "breaker:")

    def _client(self, merchant_id: str) -> httpx.AsyncClient:
        """Each partner its own connection pool: a slow partner holds only its own
        connections (a bulkhead), and a pool stays small. httpcore scans every connection
        of a pool on each request and each response; one pool shared by 20 partners cost
        the mall's cold page more CPU than its SQL (bench/README.md, issue 16)."""
        if self._shared is not None:
            return self._shared
        client = self._clients.get(merchant_id)
        if client is None:
            if self._tls is None:  # made once: loading the CA bundle costs ~20 ms a client
                self._tls = ssl.create_default_context(cafile=certifi.where())  # as httpx
            client = self._clients[merchant_id] = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=10),
                follow_redirects=False,
                verify=self._tls,
            )
        return client

    def is_local(self, program: Program) -> bool:
        return program.connector == ConnectorKind.HOSTED

    def for_program(self, program: Program, session: AsyncSession | None, actor: str) -> Connector:
        if self.is_local(program):
            assert session is not None, "a hosted connector needs the session"
            return HostedConnector(session, program, self.settings, actor)
        connector = self._partners.get(program.code)
        if connector is None:
            connector = self._partner(program)
            self._partners[program.code] = connector
        return connector

    def _partner(self, program: Program) -> Connector:
        config = json.loads(program.connector_config or "{}")
        why = partner_urls.problem(
            str(config.get("baseUrl")), allow_private=self.settings.allow_private_partners
        )
        if why:  # stored while allowed, e.g. by the demo; not called now
            log.error("partner URL refused", merchant=program.merchant_id, reason=why)
            return Unconfigured(
                ConnectorKind(program.connector),
                f"The hub does not call {program.merchant_id}: {why}",
            )
        ref = str(config.get("secretRef") or program.merchant_id).upper()
        secret = self.settings.partner_secret(ref)
        if secret is None:
            message = (
                f"The hub is not configured for {program.merchant_id}: set "
                f"HUB_PARTNER_SECRET_{ref} and restart."
            )
            log.error("partner not configured", merchant=program.merchant_id, secret_ref=ref)
            return Unconfigured(ConnectorKind(program.connector), message)
        partner = PartnerConfig(
            base_url=str(config["baseUrl"]),
            secret=secret,
            timeout_seconds=float(
                config.get("timeoutSeconds", self.settings.partner_timeout_seconds)
            ),
            retries=int(config.get("retries", 2)),
        )
        breaker = self.breakers.get(program.merchant_id)
        if breaker is None:
            breaker = self.breakers[program.merchant_id] = self._breaker(
                program.merchant_id, config, partner
            )
        # A gate per pool (one for every partner when they share the client).
        pool = "" if self._shared is not None else program.merchant_id
        gate = self._gates.setdefault(pool, asyncio.Semaphore(POOL_CONNECTIONS))
        client = PartnerClient(
            program.merchant_id, partner, self._client(program.merchant_id), breaker, gate
        )
        return PartnerConnector(DIALECTS[program.connector](), client)

    def _breaker(
        self, merchant_id: str, config: dict[str, Any], partner: PartnerConfig
    ) -> CircuitBreaker:
        failures = int(config.get("breakerFailures", 5))
        cooldown = float(config.get("breakerCooldownSeconds", 10))
        if self._store is None:
            return Breaker(failures_to_open=failures, cooldown_seconds=cooldown)
        # The probe holds the half-open breaker at most as long as its call can take
        # (every attempt timing out, with the backoff between them), then frees it.
        probe = partner.timeout_seconds * (partner.retries + 1) + 0.5 * partner.retries + 1
        return SharedBreaker(self._store, merchant_id, failures, cooldown, probe)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
