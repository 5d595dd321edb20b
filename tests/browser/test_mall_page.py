"""The reference mall (/mall) in headless Chromium against a real `hub demo`: a member
signs in, redeems, cancels, converts, and sees the hub's own words when a redemption
fails. The page may only send the checked-in documents of hub/web/mall/operations/."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import (
    Browser,
    Locator,
    Page,
    Request,
    Route,
    expect,
)

from connectors.sandbox.runner import consecutive_free_ports, free_port

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = {
    p.read_text(encoding="utf-8"): p.stem
    for p in (ROOT / "hub" / "web" / "mall" / "operations").glob("*.graphql")
}
SCREENSHOTS = ROOT / "test-output"
PAGE_SIZE = 8  # app.js PAGE_SIZE
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the demo's settlement time zone, and the browser's
pytestmark = pytest.mark.browser


def spawn_demo(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """Start `hub demo` as tests/test_demo.py does; None if it exits before it is ready."""
    workdir.mkdir()
    port, base = free_port(), consecutive_free_ports(3)
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'demo.db'}",
        "HUB_DEMO_STATE_DIR": str(workdir / "partners"),
        "HUB_DEMO_PARTNER_PORT_BASE": str(base),
        "HUB_LOG_LEVEL": "WARNING",
    }
    # A file rather than a pipe: nobody reads the output while the tests run.
    with open(workdir / "demo.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=15)
    return None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh `hub demo` for this module; its base URL."""
    tmp = tmp_path_factory.mktemp("mall-demo")
    # Another process may take a port between choosing and binding it: try again then.
    for attempt in range(3):
        started = spawn_demo(tmp / f"run{attempt}")
        if started is not None:
            break
    else:
        pytest.fail(f"hub demo did not start:\n{(tmp / 'run2' / 'demo.log').read_text()}")
    proc, url = started
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@dataclass
class Mall:
    """The mall page with what it sent to /graphql and any script errors it raised."""

    page: Page
    url: str
    sent: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/graphql"):
            self.sent.append((request.post_data_json or {}, request.headers))

    async def open(self) -> None:
        await self.page.goto(f"{self.url}/mall/")

    async def sign_in(self, name: str) -> None:
        await self.open()
        await self.page.get_by_test_id("demo-member").filter(has_text=name).click()
        await expect(self.page.get_by_test_id("member-name")).to_have_text(re.compile(name))
        await self.cards.first.wait_for()

    @property
    def cards(self) -> Locator:
        return self.page.get_by_test_id("reward-card")

    def balance(self, program: str) -> Locator:
        return self.page.locator(
            f'[data-testid="balance"][data-program="{program}"] [data-testid="balance-points"]'
        )

    async def points(self, program: str) -> int:
        return int(await self.balance(program).get_attribute("data-points") or "")

    async def filter_kind(self, kind: str) -> None:
        await self.page.get_by_test_id("filter-kind").select_option(kind)
        await self.catalog_loaded()
        kinds = {await c.get_attribute("data-kind") for c in await self.cards.all()}
        assert kinds == {kind}

    async def filter_date(self, day: dt.date) -> None:
        await self.page.get_by_test_id("filter-date").fill(day.isoformat())
        await self.catalog_loaded()

    async def catalog_loaded(self) -> None:
        """The first page after a filter change is in (the change clears the list at once)."""
        await self.page.wait_for_function(
            """() => {
                const status = document.querySelector('[data-testid="catalog-status"]');
                return status.dataset.state !== "loading" && +status.dataset.count > 0;
            }"""
        )

    async def slot_days(self) -> set[str]:
        """The local days (YYYY-MM-DD) of every slot offered on the page."""
        days: list[str] = await self.page.eval_on_selector_all(
            '[data-testid="slot-select"] option[data-starts-at]',
            "options => options.map(o => new Date(o.dataset.startsAt).toLocaleDateString('sv'))",
        )
        return set(days)

    async def screenshot(self, name: str, **options: Any) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / name), **options)

    def assert_only_checked_in_operations_were_sent(self) -> None:
        assert self.errors == []
        assert self.sent, "the page sent nothing to /graphql"
        for body, headers in self.sent:
            assert body["query"] in OPERATIONS, f"not a checked-in document: {body['query']}"
            assert body["operationName"] == OPERATIONS[body["query"]]
            assert headers["authorization"] == "Bearer demo-storefront"
            assert headers["x-member-token"]


async def storefront_backend_session(url: str, name: str) -> tuple[dict[str, str], str]:
    """What a storefront's backend does: mint a member session with its MERCHANT key."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        people = (await client.get("/mall/demo/members")).json()
        member = next(p for p in people if name in p["name"])
        minted = await client.post(
            "/graphql",
            json={
                "query": "mutation($id: ID!) { createMemberSession(memberId: $id) { token } }",
                "variables": {"id": member["id"]},
            },
            headers={"Authorization": "Bearer demo-haowu"},
        )
    token: str = minted.json()["data"]["createMemberSession"]["token"]
    return member, token


@pytest.fixture
async def mall(browser: Browser, demo: str) -> AsyncIterator[Mall]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id=SHANGHAI.key
    )
    page = await context.new_page()
    mall = Mall(page, demo)
    page.on("request", mall.record)
    page.on("pageerror", lambda error: mall.errors.append(str(error)))
    try:
        yield mall
    finally:
        # A routed request still in flight must not outlive the context it runs in.
        await page.unroute_all(behavior="ignoreErrors")
        await context.close()


async def test_a_member_redeems_a_ticket_with_hub_points_and_cancels_it_for_a_refund(
    mall: Mall,
) -> None:
    page = mall.page
    await mall.sign_in("Wang Fang")
    await mall.screenshot("mall-catalog.png")
    hub_before = await mall.points("HUB")

    await mall.filter_kind("ATTRACTION_TICKET")
    tomorrow = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=1)
    await mall.filter_date(tomorrow)
    assert await mall.slot_days() == {tomorrow.isoformat()}
    card = mall.cards.first
    price = card.get_by_test_id("reward-price")
    await expect(price).to_have_attribute("data-program", "HUB")
    cost = int(await price.get_attribute("data-points") or "")
    assert 0 < cost <= hub_before
    title = await card.get_by_test_id("reward-title").text_content()
    await card.get_by_test_id("slot-select").select_option(index=1)
    await card.get_by_test_id("redeem-button").click()

    success = card.get_by_test_id("redeem-success")
    await expect(success).to_be_visible()
    await expect(mall.balance("HUB")).to_have_attribute("data-points", str(hub_before - cost))
    redemption_id = await success.get_attribute("data-redemption-id")
    row = page.locator(f'[data-testid="redemption"][data-redemption-id="{redemption_id}"]')
    await expect(row).to_have_attribute("data-status", "CONFIRMED")
    await expect(row.get_by_test_id("redemption-title")).to_have_text(title or "")
    await expect(row.get_by_test_id("redemption-points")).to_have_attribute(
        "data-points", str(cost)
    )
    await mall.screenshot("mall-redeemed.png")

    await row.get_by_test_id("cancel-button").click()
    await expect(row).to_have_attribute("data-status", "CANCELLED")
    await expect(row.get_by_test_id("redemption-refund")).to_have_attribute(
        "data-points", str(cost)
    )
    await expect(row.get_by_test_id("cancel-button")).to_have_count(0)
    await expect(mall.balance("HUB")).to_have_attribute("data-points", str(hub_before))
    await mall.screenshot("mall-cancelled.png")
    mall.assert_only_checked_in_operations_were_sent()


async def test_every_reward_is_priced_in_the_program_the_member_picks(mall: Mall) -> None:
    page = mall.page
    await mall.sign_in("Li Wei")
    prices = mall.page.get_by_test_id("reward-price")
    await expect(prices.first).to_have_attribute("data-program", "HUB")
    in_hub = await prices.first.get_attribute("data-points")

    await page.get_by_test_id("filter-price-in").select_option("CLEAR")
    await mall.catalog_loaded()
    programs = {await p.get_attribute("data-program") for p in await prices.all()}
    assert programs == {"CLEAR"}
    assert await prices.first.get_attribute("data-points") != in_hub
    await expect(mall.cards.first.get_by_test_id("redeem-button")).to_contain_text("CLEAR")
    mall.assert_only_checked_in_operations_were_sent()


async def test_redeeming_beyond_the_balance_shows_the_hubs_message_and_changes_nothing(
    mall: Mall,
) -> None:
    page = mall.page
    await mall.sign_in("Zhang Min")
    await expect(mall.balance("HUB")).to_have_attribute("data-points", "300")

    await mall.filter_kind("AWARD_FLIGHT")
    card = mall.cards.first
    cost = int(await card.get_by_test_id("reward-price").get_attribute("data-points") or "")
    assert cost > 300
    await card.get_by_test_id("slot-select").select_option(index=1)
    await card.get_by_test_id("redeem-button").click()

    beside_button = card.locator(".action-row").get_by_test_id("redeem-error")
    await expect(beside_button).to_be_visible()
    await expect(beside_button).to_have_attribute("data-code", "INSUFFICIENT_POINTS")
    await expect(beside_button).to_contain_text("300")
    await expect(card.get_by_test_id("redeem-success")).to_be_hidden()
    await mall.screenshot("mall-insufficient.png")

    # Fresh from the hub: the balance and the redemptions are as they were.
    await page.reload()
    await expect(mall.balance("HUB")).to_have_attribute("data-points", "300")
    await expect(page.get_by_test_id("redemptions-empty")).to_be_visible()
    await expect(page.get_by_test_id("redemption")).to_have_count(0)
    mall.assert_only_checked_in_operations_were_sent()


async def test_a_quote_counts_down_and_the_conversion_uses_it(mall: Mall) -> None:
    page = mall.page
    await mall.sign_in("Li Wei")
    hub_before, jade_before = await mall.points("HUB"), await mall.points("JADE")

    await page.get_by_test_id("convert-from").select_option("HUB")
    await page.get_by_test_id("convert-to").select_option("JADE")
    await page.get_by_test_id("convert-points").fill("1000")
    await page.get_by_test_id("quote-button").click()

    quote = page.get_by_test_id("quote")
    countdown = page.get_by_test_id("quote-countdown")
    await expect(countdown).to_be_visible()
    await expect(countdown).to_have_text(re.compile(r"\d+:\d\d"))
    first = int(await countdown.get_attribute("data-seconds") or "")
    assert 0 < first <= 60
    await page.wait_for_function(
        "s => +document.querySelector('[data-testid=quote-countdown]').dataset.seconds < s",
        arg=first,
        timeout=3000,
    )
    await mall.screenshot("mall-quote.png")
    receive = int(await quote.get_attribute("data-receive") or "")
    assert receive > 0

    await page.get_by_test_id("convert-button").click()
    await expect(page.get_by_test_id("convert-result")).to_be_visible()
    await expect(quote).to_be_hidden()
    await expect(mall.balance("HUB")).to_have_attribute("data-points", str(hub_before - 1000))
    await expect(mall.balance("JADE")).to_have_attribute("data-points", str(jade_before + receive))
    mall.assert_only_checked_in_operations_were_sent()


async def test_an_expired_quote_can_no_longer_be_converted(mall: Mall) -> None:
    page = mall.page
    # The page's clock runs as usual until the test moves it past the quote's expiry.
    await page.clock.install()
    await mall.sign_in("Chen Jie")
    await page.get_by_test_id("convert-from").select_option("SKYMILES")
    await page.get_by_test_id("convert-to").select_option("HUB")
    await page.get_by_test_id("convert-points").fill("1200")
    await page.get_by_test_id("quote-button").click()
    countdown = page.get_by_test_id("quote-countdown")
    await expect(countdown).to_have_text(re.compile(r"\d+:\d\d"))
    await expect(page.get_by_test_id("convert-button")).to_be_enabled()

    await page.clock.fast_forward(61_000)
    await expect(countdown).to_have_attribute("data-seconds", "0")
    await expect(countdown).to_have_text("The quote has expired; get a new one.")
    await expect(page.get_by_test_id("convert-button")).to_be_disabled()
    await expect(mall.balance("SKYMILES")).to_have_attribute("data-points", "80000")
    mall.assert_only_checked_in_operations_were_sent()


async def test_on_a_phone_the_catalog_loads_the_next_page_when_scrolled_to(
    mall: Mall,
) -> None:
    page = mall.page
    await page.set_viewport_size({"width": 390, "height": 844})
    await mall.sign_in("Chen Jie")
    status = page.get_by_test_id("catalog-status")
    await expect(status).to_have_attribute("data-state", "more")
    await expect(mall.cards).to_have_count(PAGE_SIZE)

    # Each scroll to the end of the list loads the next page, until there is none.
    for _ in range(10):
        shown = await mall.cards.count()
        await page.get_by_test_id("catalog-sentinel").scroll_into_view_if_needed()
        await expect(status).not_to_have_attribute("data-state", "loading")
        if await status.get_attribute("data-state") == "end":
            break
        await expect(mall.cards).not_to_have_count(shown)
    await expect(status).to_have_attribute("data-state", "end")
    assert await mall.cards.count() > PAGE_SIZE
    ids = [await c.get_attribute("data-reward-id") for c in await mall.cards.all()]
    assert len(set(ids)) == len(ids)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "the page scrolls sideways on a phone"
    )

    # Labels switch language; merchant data stays as the merchant wrote it.
    titles = await page.get_by_test_id("reward-title").all_text_contents()
    await page.get_by_test_id("lang-zh").click()
    await expect(page.locator("#catalog-title")).to_have_text("礼品与服务")
    assert await page.get_by_test_id("reward-title").all_text_contents() == titles
    await page.locator("#catalog-title").scroll_into_view_if_needed()
    await mall.screenshot("mall-phone-catalog-zh.png")
    await page.evaluate("window.scrollTo(0, 0)")
    await mall.screenshot("mall-phone-zh.png")
    mall.assert_only_checked_in_operations_were_sent()


async def test_partners_that_do_not_answer_are_named_quietly_and_sold_out_shows(
    mall: Mall,
) -> None:
    # Sky Air and West Lake stop answering and the first reward sells out: the hub's answers
    # are edited on their way to the page, as the hub would send them then.
    sold_out: list[str] = []
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()

    async def partners_down(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        operation = (route.request.post_data_json or {}).get("operationName")
        if operation == "Viewer":
            for account in body["data"]["viewer"]["member"]["accounts"]:
                if account["program"]["code"] == "WESTLAKE":
                    account["balanceAsOf"] = an_hour_ago
        if operation == "Rewards":
            rewards = body["data"]["rewards"]
            rewards["edges"] = [
                e for e in rewards["edges"] if e["node"]["merchant"]["id"] != "skyair"
            ]
            rewards["unavailableMerchants"] = [{"id": "skyair", "name": "Sky Air"}]
            if not sold_out:
                first = rewards["edges"][0]["node"]
                first["available"] = False
                sold_out.append(first["id"])
        await route.fulfill(response=response, json=body)

    page = mall.page
    await page.route("**/graphql", partners_down)
    await mall.sign_in("Li Wei")
    westlake = page.locator('[data-testid="balance"][data-program="WESTLAKE"]')
    await expect(westlake.get_by_test_id("balance-as-of")).to_be_visible()
    hub = page.locator('[data-testid="balance"][data-program="HUB"]')
    await expect(hub.get_by_test_id("balance-as-of")).to_have_count(0)

    banner = page.get_by_test_id("unavailable-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Sky Air")
    await expect(page.get_by_test_id("catalog-error")).to_be_hidden()
    card = page.locator(f'[data-testid="reward-card"][data-reward-id="{sold_out[0]}"]')
    await expect(card.get_by_test_id("out-of-stock")).to_be_visible()
    await expect(card.get_by_test_id("redeem-button")).to_be_disabled()
    await expect(mall.cards.filter(has_text="Sky Air")).to_have_count(0)
    mall.assert_only_checked_in_operations_were_sent()


async def test_without_the_demo_sign_in_the_page_asks_for_a_key_and_a_member_token(
    mall: Mall,
) -> None:
    page = mall.page
    await page.route("**/mall/demo/**", lambda route: route.fulfill(status=404, body="Not Found"))
    await mall.open()
    form = page.get_by_test_id("signin-form")
    await expect(form).to_be_visible()
    await expect(page.get_by_test_id("demo-signin")).to_be_hidden()
    await expect(page.get_by_test_id("manual-intro")).to_contain_text("createMemberSession")
    await mall.screenshot("mall-signin-form.png")

    chen, token = await storefront_backend_session(mall.url, "Chen Jie")
    await page.get_by_test_id("storefront-key").fill("demo-storefront")
    await page.get_by_test_id("member-token").fill("not-a-token")
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("signin-error")).to_be_visible()
    await expect(page.get_by_test_id("mall")).to_be_hidden()

    await page.get_by_test_id("member-token").fill(token)
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("member-name")).to_have_text(chen["name"])
    await expect(mall.balance("SKYMILES")).to_have_attribute("data-points", "80000")
    mall.assert_only_checked_in_operations_were_sent()
