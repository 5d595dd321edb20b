"""Which connector serves which program: the factory the hub is given at start."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Connector
from connectors.hosted import HostedConnector
from hub.config import Settings
from hub.enums import ConnectorKind
from hub.models import Program


class Registry:
    """Builds hosted connectors per transaction; partner connectors are added in
    connectors.partners and kept per program (they pool HTTP connections)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._partners: dict[str, Connector] = {}

    def is_local(self, program: Program) -> bool:
        return program.connector == ConnectorKind.HOSTED.value

    def for_program(self, program: Program, session: Any, actor: str) -> Connector:
        if self.is_local(program):
            assert isinstance(session, AsyncSession), "a hosted connector needs the session"
            return HostedConnector(session, program, self.settings, actor)
        raise NotImplementedError(f"no connector for {program.connector} yet")

    async def close(self) -> None:
        for connector in self._partners.values():
            close = getattr(connector, "close", None)
            if close is not None:
                await close()
