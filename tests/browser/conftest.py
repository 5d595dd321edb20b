"""What every browser test shares: this machine's Chromium (HUB_TEST_CHROMIUM, which
tests/conftest.py sets when chromium is on PATH, else /usr/bin/chromium), launched headless
once a module as the `browser` fixture. A test marked `browser` is skipped where there is none."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    candidate = os.environ.get("HUB_TEST_CHROMIUM") or "/usr/bin/chromium"
    found = shutil.which(candidate)
    return found if found and os.access(found, os.X_OK) else None


CHROMIUM = find_chromium()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium, the tests that drive it are skipped (and say how to give them one)."""
    if CHROMIUM is None:
        skip = pytest.mark.skip(reason="no chromium (set HUB_TEST_CHROMIUM)")
        for item in items:
            if item.get_closest_marker("browser"):
                item.add_marker(skip)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
