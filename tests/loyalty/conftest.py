"""Tier tests replay a year of purchases: accruals may be dated that far back here."""

from __future__ import annotations

import pytest

from hub.config import Settings
from tests.helpers import ADMIN_KEY


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        bootstrap_admin_key=ADMIN_KEY,
        log_level="WARNING",
        background_jobs=False,
        accrual_backdate_days=400,
    )
