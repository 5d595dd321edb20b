"""What a running hub holds once per process: settings, database, token signer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from connectors.base import ConnectorFactory
from hub import auth
from hub.caches import Caches
from hub.config import Settings
from hub.db import KEPT, Database, utcnow
from hub.imports.worker import ImportWorker
from hub.mall.partners import PartnerCatalog
from hub.partner_events import Events
from hub.ratelimit import RateLimits, rate_limits
from hub.webhooks.delivery import Dispatcher

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    connectors: ConnectorFactory
    rate_limits: RateLimits
    events: Events | None = None  # set by the assembly, which knows the handlers
    webhooks: Dispatcher | None = None  # outbound deliveries to merchants
    imports: ImportWorker | None = None  # bulk accrual imports
    key_usage: auth.KeyUsage = field(default_factory=auth.KeyUsage)
    caches: Caches = field(init=False)
    catalog: PartnerCatalog = field(init=False)
    _tokens: auth.SessionTokens | None = None

    def __post_init__(self) -> None:
        self.caches = Caches(self.db, self.settings.cache_check_seconds)
        self.db.kept[KEPT] = self.caches  # every session reads programs from it
        self.catalog = PartnerCatalog(self.db, self.connectors, self.settings, self.caches)

    @classmethod
    async def start(cls, settings: Settings, connectors: ConnectorFactory) -> Runtime:
        """Open the database and prepare; a database that is down does not stop the start,
        so that /healthz answers and /readyz says 503 until it is back."""
        db = Database.configured(settings)
        runtime = cls(
            settings=settings,
            db=db,
            connectors=connectors,
            rate_limits=rate_limits(settings),
            webhooks=Dispatcher(db, settings),
            imports=ImportWorker(db, settings),
        )
        try:
            await runtime.prepare()
        except Exception as exc:
            log.warning("database not ready at start; will retry", error=str(exc))
        return runtime

    async def prepare(self) -> None:
        """Bootstrap the admin key and load the session signing key (once)."""
        if self._tokens is not None:
            return
        settings = self.settings

        async def work(session: Any) -> str:
            if settings.bootstrap_admin_key and not await auth.has_admin_key(session):
                created = await auth.ensure_admin_key(
                    session,
                    settings.bootstrap_admin_key,
                    label="bootstrap (HUB_BOOTSTRAP_ADMIN_KEY)",
                )
                if created:
                    log.info("bootstrap admin key created")
                else:  # a revoked secret stays revoked, restart or not
                    log.warning(
                        "HUB_BOOTSTRAP_ADMIN_KEY is revoked and no ADMIN key is live; "
                        "create one with `hub keys create --role ADMIN --label ...`"
                    )
            return await auth.signing_key(session, settings.secret_key)

        try:
            key = await self.db.transaction(work)
        except IntegrityError:
            # Another worker of the same `hub serve` bootstrapped first; read what it wrote.
            key = await self.db.transaction(work)
        self._tokens = auth.SessionTokens(key, settings.member_session_ttl_seconds)

    async def note_key_use(self, key_id: str) -> None:
        """Keep the key's last use, written at most once a minute per key and process;
        a failure to write it never fails the request."""
        now = utcnow()
        if not self.key_usage.due(key_id, now):
            return
        try:
            await self.db.transaction(lambda s: auth.touch(s, key_id, now), attempts=1)
        except Exception as exc:  # bookkeeping only; the request goes on
            log.warning("could not record key use", key=key_id, error=type(exc).__name__)

    @property
    def tokens(self) -> auth.SessionTokens:
        assert self._tokens is not None, "Runtime.prepare() runs before any request is served"
        return self._tokens

    async def close(self) -> None:
        if self.imports is not None:
            await self.imports.close()
        if self.webhooks is not None:
            await self.webhooks.close()
        await self.catalog.close()
        await self.rate_limits.close()
        close = getattr(self.connectors, "close", None)
        if close is not None:
            await close()
        await self.db.dispose()
