# ruff: noqa: F811  (the page's fixtures are imported by name, and tests take them by name)
"""The reference mall in headless Chromium against a real `hub demo`: a member sees their
tier at the platform's program with its benefits and the way to the next tier, their
credit level, and a limited reward that opens early to Gold and EXCELLENT credit, with
"opens for you at ..." for everyone else."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.async_api import expect

from tests.browser.test_mall_page import Mall, demo, mall  # noqa: F401

pytestmark = pytest.mark.browser
MOONCAKE = '[data-testid="reward-card"][data-reward-id="haowu:MOONCAKE"]'


async def _hub_tier(mall: Mall) -> tuple[str, str]:
    card = mall.page.locator('[data-testid="balance"][data-program="HUB"]')
    tier = card.get_by_test_id("balance-tier")
    await expect(tier).to_be_visible()
    return await tier.get_attribute("data-tier") or "", await tier.get_attribute("data-next") or ""


async def test_a_gold_member_sees_the_tier_and_redeems_the_limited_reward_early(
    mall: Mall,
) -> None:
    page = mall.page
    await mall.sign_in("Zhou Qiang")
    assert await _hub_tier(mall) == ("GOLD", "")
    hub = page.locator('[data-testid="balance"][data-program="HUB"]')
    await expect(hub.get_by_test_id("tier-name")).to_have_text("Gold")
    await expect(hub.get_by_test_id("tier-benefits")).to_contain_text("Personal shopper")
    await expect(hub.get_by_test_id("tier-next")).to_contain_text("Top tier")
    await expect(hub.get_by_test_id("tier-progress")).to_have_count(0)

    await page.get_by_test_id("filter-merchant").select_option("haowu")
    await mall.catalog_loaded()
    card = page.locator(MOONCAKE)
    await expect(card.get_by_test_id("reward-early-access")).to_be_visible()
    await expect(card.get_by_test_id("reward-opens-at")).to_have_count(0)
    # Gold takes 5% off what is paid in HUB: 1,200 less 5%.
    await expect(card.get_by_test_id("reward-price")).to_have_attribute("data-points", "1140")
    await mall.screenshot("mall-tier-gold.png")
    before = await mall.points("HUB")
    await card.get_by_test_id("redeem-button").click()
    await expect(card.get_by_test_id("redeem-success")).to_be_visible()
    await expect(mall.balance("HUB")).to_have_attribute("data-points", str(before - 1140))
    mall.assert_only_checked_in_operations_were_sent()


async def test_a_silver_member_sees_the_way_to_gold_and_when_the_reward_opens(
    mall: Mall,
) -> None:
    page = mall.page
    await mall.sign_in("Sun Li")
    assert await _hub_tier(mall) == ("SILVER", "GOLD")
    hub = page.locator('[data-testid="balance"][data-program="HUB"]')
    await expect(hub.get_by_test_id("tier-name")).to_have_text("Silver")
    await expect(hub.get_by_test_id("tier-benefits")).to_have_text("Free parking")
    await expect(hub.get_by_test_id("tier-qualifying")).to_contain_text("6 purchases")
    await expect(hub.get_by_test_id("tier-next")).to_have_text(
        re.compile(r"5,500\.00 more to Gold and 6 more purchases")
    )
    progress = hub.get_by_test_id("tier-progress")
    assert await progress.get_attribute("value") == "2500"
    assert await progress.get_attribute("max") == "8000"

    await page.get_by_test_id("filter-merchant").select_option("haowu")
    await mall.catalog_loaded()
    card = page.locator(MOONCAKE)
    opens = card.get_by_test_id("reward-opens-at")
    await expect(opens).to_be_visible()
    await expect(opens).to_contain_text("Opens for you at")
    when = dt.datetime.fromisoformat(await opens.get_attribute("data-opens-at") or "")
    assert dt.timedelta(days=2) < when - dt.datetime.now(dt.UTC) <= dt.timedelta(days=3)
    await expect(card.get_by_test_id("redeem-button")).to_be_disabled()
    await card.scroll_into_view_if_needed()
    await mall.screenshot("mall-priority-opens.png")

    # In Chinese too.
    await page.get_by_test_id("lang-zh").click()
    await expect(opens).to_contain_text("向您开放")
    await expect(hub.get_by_test_id("tier-next")).to_contain_text("升级为Gold")
    mall.assert_only_checked_in_operations_were_sent()


async def test_a_member_sees_their_own_excellent_credit_and_its_price(mall: Mall) -> None:
    page = mall.page
    await mall.sign_in("Wu Juan")
    credit = page.get_by_test_id("credit-level")
    await expect(credit).to_have_text("Credit level: Excellent")
    await expect(credit).to_have_attribute("data-level", "EXCELLENT")
    assert await _hub_tier(mall) == ("", "SILVER")
    hub = page.locator('[data-testid="balance"][data-program="HUB"]')
    await expect(hub.get_by_test_id("tier-name")).to_have_text("No tier yet")
    await expect(hub.get_by_test_id("tier-next")).to_have_text(
        re.compile(r"200\.00 more to Silver")
    )

    await page.get_by_test_id("filter-merchant").select_option("haowu")
    await mall.catalog_loaded()
    card = page.locator(MOONCAKE)
    await expect(card.get_by_test_id("reward-early-access")).to_be_visible()
    # EXCELLENT credit pays 10% fewer points at the platform.
    await expect(card.get_by_test_id("reward-price")).to_have_attribute("data-points", "1080")
    await page.locator('[data-testid="balance"][data-program="HUB"]').scroll_into_view_if_needed()
    await mall.screenshot("mall-credit-excellent.png", full_page=True)
    mall.assert_only_checked_in_operations_were_sent()
