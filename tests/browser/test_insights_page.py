# ruff: noqa: F811  (the page's fixtures are imported by name, and tests take them by name)
"""Merchant insights (/insights) in headless Chromium against a real `hub demo`: the
platform merchant signs in with its MERCHANT key and sees the figures merchantInsights
answers for the period, drawn as charts (uPlot, served by the hub), its members by
tier, its most redeemed rewards and its rising members with masked names; another
period redraws them; a key of another role is told what the page needs."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.test_mall_page import SCREENSHOTS, SHANGHAI, demo  # noqa: F401

pytestmark = pytest.mark.browser
KEY = "demo-haowu"
FIGURES = {
    "points-issued": "pointsIssued",
    "points-redeemed": "pointsRedeemed",
    "points-expired": "pointsExpired",
    "green-points-issued": "greenPointsIssued",
    "active-members": "activeMembers",
}
QUERY = """query($m: ID!, $f: Date!, $t: Date!) { merchantInsights(merchant: $m, from: $f, to: $t) {
  pointsIssued pointsRedeemed pointsExpired greenPointsIssued activeMembers
  membersByTier { tier { code } members } topRewards { reward { id } redemptions }
  risingMembers { id displayName } } }"""


REDEEM = """mutation($i: RedeemRewardInput!) {
  redeemReward(input: $i) { redemption { status } userErrors { message } } }"""


async def _redeem_at_haowu(url: str) -> None:
    """A member redeems two car washes and a thermos with Haowu points: the rewards chart."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def gql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": "Bearer demo-admin"},
            )
            body = response.json()
            assert not body.get("errors"), body
            data: dict[str, Any] = body["data"]
            return data

        member = (await gql('{ memberByRef(program: "HUB", externalRef: "H-1001") { id } }', {}))[
            "memberByRef"
        ]["id"]
        for n, reward in enumerate(["haowu:CAR-WASH", "haowu:THERMOS", "haowu:CAR-WASH"]):
            done = await gql(
                REDEEM,
                {
                    "i": {
                        "memberId": member,
                        "rewardId": reward,
                        "payWith": "HUB",
                        "idempotencyKey": f"insights-page-{n}",
                    }
                },
            )
            assert done["redeemReward"]["userErrors"] == [], done


@dataclass
class Insights:
    page: Page
    url: str
    errors: list[str] = field(default_factory=list)

    async def open(self) -> None:
        await self.page.goto(f"{self.url}/insights/")
        await self.page.wait_for_selector("body[data-ready]")

    async def sign_in(self, key: str) -> None:
        await self.page.get_by_test_id("signin-key").fill(key)
        await self.page.get_by_test_id("signin-submit").click()

    async def loaded(self, first: dt.date, last: dt.date) -> None:
        await expect(self.page.get_by_test_id("dashboard")).to_have_attribute(
            "data-loaded", f"{first}..{last}"
        )

    async def answer(self, first: dt.date, last: dt.date) -> dict[str, Any]:
        """What the API says to the same key for the same period."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.post(
                "/graphql",
                json={"query": QUERY, "variables": {"m": "haowu", "f": str(first), "t": str(last)}},
                headers={"Authorization": f"Bearer {KEY}"},
            )
        body = response.json()
        assert not body.get("errors"), body
        found: dict[str, Any] = body["data"]["merchantInsights"]
        return found

    async def shows(self, found: dict[str, Any]) -> None:
        """The page's figures, tiers, rewards and rising members are the API's."""
        page = self.page
        for testid, name in FIGURES.items():
            await expect(page.get_by_test_id(testid)).to_have_attribute(
                "data-value", str(found[name])
            )
        tiers = page.get_by_test_id("tier-row")
        await expect(tiers).to_have_count(len(found["membersByTier"]))
        for row, expected in zip(await tiers.all(), found["membersByTier"], strict=True):
            assert await row.get_attribute("data-tier") == (
                expected["tier"]["code"] if expected["tier"] else ""
            )
            members = await row.get_by_test_id("tier-members").text_content()
            assert members == f"{expected['members']:,}"
        rewards = page.get_by_test_id("reward-row")
        await expect(rewards).to_have_count(len(found["topRewards"]))
        ids = [await r.get_attribute("data-reward") for r in await rewards.all()]
        assert ids == [r["reward"]["id"] for r in found["topRewards"]]
        rising = page.get_by_test_id("rising-member")
        await expect(rising).to_have_count(len(found["risingMembers"]))
        names = [await r.text_content() for r in await rising.all()]
        assert names == [m["displayName"] for m in found["risingMembers"]]


@pytest.fixture
async def insights(browser: Browser, demo: str) -> AsyncIterator[Insights]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 1000}, locale="en-US", timezone_id=SHANGHAI.key
    )
    page = await context.new_page()
    found = Insights(page, demo)
    page.on("pageerror", lambda error: found.errors.append(str(error)))
    page.on(
        "console",
        lambda message: found.errors.append(message.text) if message.type == "error" else None,
    )
    try:
        yield found
    finally:
        await context.close()


async def test_a_merchant_sees_its_figures_with_charts_for_the_period(
    insights: Insights,
) -> None:
    page = insights.page
    today = dt.datetime.now(SHANGHAI).date()
    await _redeem_at_haowu(insights.url)
    await insights.open()
    await insights.sign_in(KEY)
    await expect(page.get_by_test_id("merchant-name")).to_have_text("Haowu Platform")
    month = today - dt.timedelta(days=29)
    await insights.loaded(month, today)
    found = await insights.answer(month, today)
    await insights.shows(found)
    # The demo's platform program has tiers and members who buy more than before.
    assert [t["tier"] and t["tier"]["code"] for t in found["membersByTier"]] == [
        None,
        "SILVER",
        "GOLD",
    ]
    assert found["risingMembers"], "the demo has members whose spend rose"
    assert found["greenPointsIssued"] > 0, "the demo's green-tagged purchases earn HUB_GREEN"
    assert all("*" in m["displayName"] for m in found["risingMembers"])
    assert [(r["reward"]["id"], r["redemptions"]) for r in found["topRewards"]][:2] == [
        ("haowu:CAR-WASH", 2),
        ("haowu:THERMOS", 1),
    ]
    # Each chart is drawn (uPlot draws on a canvas), with its legend for the daily one.
    for chart in ("chart-daily", "chart-tiers", "chart-rewards"):
        await expect(page.get_by_test_id(chart).locator("canvas")).to_have_count(1)
    await expect(page.get_by_test_id("chart-daily").locator(".u-legend")).to_contain_text("Issued")
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "insights.png"), full_page=True)

    # Twelve months: the seeded year of purchases counts, and the page redraws.
    await page.get_by_test_id("preset").filter(has_text="12 months").click()
    year = today - dt.timedelta(days=364)
    await insights.loaded(year, today)
    found_year = await insights.answer(year, today)
    await insights.shows(found_year)
    assert found_year["pointsIssued"] > found["pointsIssued"]
    await page.screenshot(path=str(SCREENSHOTS / "insights-year.png"), full_page=True)

    # A period typed by hand, ending before it starts, is refused on the page.
    await page.get_by_test_id("period-from").fill(str(today))
    await page.get_by_test_id("period-to").fill(str(today - dt.timedelta(days=1)))
    await page.get_by_test_id("period-submit").click()
    await expect(page.get_by_test_id("view-error")).to_have_attribute("data-code", "INVALID_INPUT")
    assert insights.errors == []


async def test_another_role_or_a_wrong_key_is_told_what_the_page_needs(
    insights: Insights,
) -> None:
    page = insights.page
    await insights.open()
    await insights.sign_in("demo-finance")
    error = page.get_by_test_id("signin-error")
    await expect(error).to_have_text(
        "This is a FINANCE key; merchant insights need a MERCHANT key, which shows one "
        "merchant's own figures."
    )
    await insights.sign_in("not-a-key")
    await expect(error).to_have_text(
        "This key is not valid; ask the hub's administrator for your MERCHANT key."
    )
    await expect(page.get_by_test_id("dashboard")).to_be_hidden()
    # Signed in, then out: the key is forgotten.
    await insights.sign_in(KEY)
    await expect(page.get_by_test_id("dashboard")).to_be_visible()
    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("signin-message")).to_contain_text("You signed out")
    assert await page.evaluate("sessionStorage.length") == 0
