"""Tier tests replay a year of purchases: accruals may be dated that far back here."""

from __future__ import annotations

import pytest

from hub.config import Settings
from tests.helpers import quiet_settings


@pytest.fixture
def settings(db_url: str) -> Settings:
    return quiet_settings(db_url, accrual_backdate_days=400)
