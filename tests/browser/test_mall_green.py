# ruff: noqa: F811  (the page's fixtures are imported by name, and tests take them by name)
"""The reference mall in headless Chromium against a real `hub demo`: a member with green
purchases sees their green points, opens the green zone (exactly the rewards HUB_GREEN pays
for) and redeems there; a member redeems the Western restaurant's "50 off 200" voucher, sees
its code, the restaurant's till uses it, and the page shows it used and no longer cancellable."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.test_mall_page import Mall, demo, mall  # noqa: F401

pytestmark = pytest.mark.browser
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$")
GREEN_ZONE = {"haowu:ECO-TOTE", "haowu:LED-BULBS", "clearview:ECO-FRAMES"}
USE = """mutation($c: String!, $o: String!, $a: Decimal!) {
  useVoucher(code: $c, orderRef: $o, orderAmount: $a) {
    voucher { usedAt orderRef } userErrors { code message } } }"""


async def test_green_points_open_the_green_zone_and_pay_there(mall: Mall) -> None:
    page = mall.page
    await mall.sign_in("Li Wei")
    green = page.locator('[data-testid="balance"][data-program="HUB_GREEN"]')
    await expect(green).to_have_attribute("data-kind", "GREEN")
    # Li Wei's lamps, shower head and solar charger: 930 of green lines at 2 points each.
    await expect(mall.balance("HUB_GREEN")).to_have_attribute("data-points", "1860")
    await expect(green.get_by_test_id("balance-green-note")).to_be_visible()
    # Green points are spent in the green zone, never converted.
    convertible = await page.get_by_test_id("convert-from").locator("option").all_inner_texts()
    assert convertible and not any("HUB_GREEN" in o for o in convertible)

    await green.get_by_test_id("green-zone-button").click()
    await expect(page.get_by_test_id("green-zone-banner")).to_contain_text("HUB_GREEN")
    await expect(page.get_by_test_id("filter-price-in")).to_have_value("HUB_GREEN")
    await mall.catalog_loaded()
    await expect(page.get_by_test_id("catalog-status")).to_have_attribute("data-state", "end")
    cards = await mall.cards.all()
    assert {await c.get_attribute("data-reward-id") for c in cards} == GREEN_ZONE
    for card in cards:
        await expect(card.get_by_test_id("reward-green")).to_be_visible()
        await expect(card.get_by_test_id("reward-price")).to_have_attribute(
            "data-program", "HUB_GREEN"
        )
    tote = page.locator('[data-testid="reward-card"][data-reward-id="haowu:ECO-TOTE"]')
    await expect(tote.get_by_test_id("reward-price")).to_have_attribute("data-points", "300")
    await mall.screenshot("mall-green-zone.png")

    await tote.get_by_test_id("redeem-button").click()
    await expect(tote.get_by_test_id("redeem-success")).to_be_visible()
    await expect(mall.balance("HUB_GREEN")).to_have_attribute("data-points", "1560")
    row = page.get_by_test_id("redemption").first
    await expect(row.get_by_test_id("redemption-title")).to_have_text("Recycled-cotton tote bag")
    await expect(row.get_by_test_id("redemption-points")).to_contain_text("HUB_GREEN")

    # In Chinese too; the merchant's words stay as written.
    await page.get_by_test_id("lang-zh").click()
    await expect(page.get_by_test_id("green-zone-banner")).to_contain_text("绿色专区")
    await mall.screenshot("mall-green-zone-zh.png")
    mall.assert_only_checked_in_operations_were_sent()


async def test_a_redeemed_voucher_shows_its_code_and_the_till_uses_it_once(mall: Mall) -> None:
    page = mall.page
    await mall.sign_in("Wang Fang")
    await page.get_by_test_id("filter-merchant").select_option("bistro")
    await mall.catalog_loaded()
    card = page.locator('[data-testid="reward-card"][data-reward-id="bistro:FIFTY-OFF-200"]')
    await expect(card.get_by_test_id("reward-voucher-terms")).to_have_text(
        "50 off a bill of 200 or more · valid 60 days"
    )
    # 1,000 of the bistro's points, at 2 per HUB point: 500 HUB.
    await expect(card.get_by_test_id("reward-price")).to_have_attribute("data-points", "500")
    hub_before = await mall.points("HUB")
    await card.get_by_test_id("redeem-button").click()
    success = card.get_by_test_id("redeem-success")
    await expect(success).to_be_visible()
    code = await success.get_attribute("data-voucher-code") or ""
    assert CODE.fullmatch(code), code
    await expect(success).to_contain_text(code)
    await expect(mall.balance("HUB")).to_have_attribute("data-points", str(hub_before - 500))

    rid = await success.get_attribute("data-redemption-id")
    row = page.locator(f'[data-testid="redemption"][data-redemption-id="{rid}"]')
    voucher = row.get_by_test_id("voucher")
    await expect(voucher.get_by_test_id("voucher-code")).to_have_text(code)
    await expect(voucher.get_by_test_id("voucher-valid-until")).to_be_visible()
    await expect(row.get_by_test_id("cancel-button")).to_be_visible()
    await row.scroll_into_view_if_needed()
    await mall.screenshot("mall-voucher.png")

    # At the restaurant's till: the code, the order, the bill. Once only.
    async with httpx.AsyncClient(base_url=mall.url, timeout=10) as till:
        headers = {"Authorization": "Bearer demo-bistro"}
        used = await till.post(
            "/graphql",
            json={"query": USE, "variables": {"c": code, "o": "TABLE-4", "a": "268.00"}},
            headers=headers,
        )
        assert used.json()["data"]["useVoucher"]["userErrors"] == []
        again = await till.post(
            "/graphql",
            json={"query": USE, "variables": {"c": code, "o": "TABLE-9", "a": "300.00"}},
            headers=headers,
        )
        assert again.json()["data"]["useVoucher"]["userErrors"][0]["code"] == "INVALID_STATE"
    await page.reload()
    await expect(voucher).to_have_attribute("data-used", "true")
    await expect(voucher.get_by_test_id("voucher-used")).to_contain_text("TABLE-4")
    await expect(row.get_by_test_id("cancel-button")).to_have_count(0)
    await row.scroll_into_view_if_needed()
    await mall.screenshot("mall-voucher-used.png")
    mall.assert_only_checked_in_operations_were_sent()
