"""Fixtures for connector tests: live sandbox partners and a hub that knows their secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hub.config import Settings
from tests.helpers import Api, running_app
from tests.partners import Partners, partners


@pytest.fixture
async def live_partners() -> AsyncIterator[Partners]:
    async with partners() as found:
        await found.start("skyair", "AIRLINE")
        await found.start("lotus", "HOTEL")
        await found.start("westlake", "SCENIC")
        await found.start("dimsum", "RESTAURANT")
        await found.start("carwash", "HTTP")
        yield found


@pytest.fixture
def partner_settings(settings: Settings, live_partners: Partners) -> Settings:
    return settings.model_copy(
        update={"partner_secrets": live_partners.secrets(), "allow_private_partners": True}
    )


@pytest.fixture
async def hub(partner_settings: Settings) -> AsyncIterator[Api]:
    async with running_app(partner_settings) as client:
        yield client
