"""The finance console (GET /console) as finance staff use it, in headless Chromium against
`hub demo`: sign in with a FINANCE key, settle today, read the batch, take statements
through the workflow, download a statement's CSV; a wrong key says what to do next."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from connectors.sandbox.runner import free_port

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output"
BAD_KEY = "This key is not valid; ask an administrator for a FINANCE key."
MONEY = re.compile(r"^-?\d+\.\d{2}$")
PAST_BATCHES = 21  # one more than the console's page of 20
HAOWU_LINES = 27  # haowu pays for 26 conversions and a meal: two pages of lines

BATCH = """query($d: Date!) { settlementBatch(businessDate: $d) {
  positions { merchant { id name } net } payments { from { id } to { id } amount }
  statements { id merchant { id } status } } }"""


@dataclass
class Demo:
    url: str
    client: httpx.AsyncClient
    today: dt.date
    partner_base: int = 0  # the demo's sandbox partners: skyair, lotus, westlake from here

    async def gql(self, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data


def _spawn_demo(tmp: Path, port: int, base: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'demo.db'}",
        "HUB_DEMO_STATE_DIR": str(tmp / "partners"),
        "HUB_DEMO_PARTNER_PORT_BASE": str(base),
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_SETTLEMENT_AT": "off",  # the console runs settlement here, not the scheduler
    }
    with open(tmp / "hub.log", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub", "demo", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )


def _log(tmp: Path) -> str:
    return (tmp / "hub.log").read_text(errors="replace")


def _read_csv(path: str | Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(Path(path).read_text("utf-8"))))


async def _wait_ready(proc: subprocess.Popen[bytes], client: httpx.AsyncClient, tmp: Path) -> None:
    for _ in range(600):
        assert proc.poll() is None, _log(tmp)
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"hub demo did not become ready:\n{_log(tmp)}")


async def _activity(demo: Demo) -> None:
    """What a day at the hub leaves behind: conversions and a redemption across merchants,
    and the finance team's earlier (empty) batches."""
    member = (
        await demo.gql(
            '{ memberByRef(program: "HUB", externalRef: "H-1001") { id } }', {}, "demo-admin"
        )
    )["memberByRef"]["id"]
    convert = (
        "mutation($i: ConvertPointsInput!) { convertPoints(input: $i) "
        "{ conversion { id } userErrors { message } } }"
    )
    redeem = (
        "mutation($i: RedeemRewardInput!) { redeemReward(input: $i) "
        "{ redemption { id } userErrors { message } } }"
    )
    moves = [
        ("HUB", "JADE", 500),
        ("HUB", "WESTLAKE", 300),
        ("SKYMILES", "LOTUS", 2000),
        *[("HUB", "JADE", 10)] * 24,  # enough lines for haowu's statement to span two pages
    ]
    for n, (source, target, points) in enumerate(moves):
        data = await demo.gql(
            convert,
            {
                "i": {
                    "memberId": member,
                    "from": source,
                    "to": target,
                    "points": points,
                    "idempotencyKey": f"console-test-{n}",
                }
            },
            "demo-admin",
        )
        assert data["convertPoints"]["userErrors"] == []
    data = await demo.gql(
        redeem,
        {
            "i": {
                "memberId": member,
                "rewardId": "jade:SET-MEAL",
                "payWith": "HUB",
                "idempotencyKey": "console-test-meal",
            }
        },
        "demo-admin",
    )
    assert data["redeemReward"]["userErrors"] == []
    run = "mutation($d: Date!) { runSettlement(businessDate: $d) { userErrors { message } } }"
    for days in range(1, PAST_BATCHES + 1):
        day = (demo.today - dt.timedelta(days=days)).isoformat()
        data = await demo.gql(run, {"d": day}, "demo-finance")
        assert data["runSettlement"]["userErrors"] == []


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    """`hub demo` on free ports in a temporary directory, with a day of activity."""
    tmp = tmp_path_factory.mktemp("console")
    port, base = free_port(), free_port()
    proc = _spawn_demo(tmp, port, base)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await _wait_ready(proc, client, tmp)
            today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
            found = Demo(url=url, client=client, today=today, partner_base=base)
            await _activity(found)
            yield found
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        viewport={"width": 1366, "height": 900}, accept_downloads=True
    )
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert errors == [], errors


def by(page: Page, testid: str, **data: str) -> Locator:
    """The element with this data-testid (and these data-* attributes)."""
    selector = f'[data-testid="{testid}"]' + "".join(f'[data-{k}="{v}"]' for k, v in data.items())
    return page.locator(selector)


async def amounts(locator: Locator) -> list[Decimal]:
    values = await locator.evaluate_all("(cells) => cells.map((c) => c.dataset.amount)")
    assert all(MONEY.match(v) for v in values), values
    return [Decimal(v) for v in values]


async def sign_in(page: Page, url: str, key: str) -> None:
    await page.goto(f"{url}/console")
    await by(page, "signin-key").fill(key)
    await by(page, "signin-submit").click()


async def test_a_wrong_key_says_to_ask_for_a_finance_key(demo: Demo, page: Page) -> None:
    await sign_in(page, demo.url, "demo-finance-typo")
    await expect(by(page, "signin-error")).to_have_text(BAD_KEY)
    await expect(by(page, "console")).to_be_hidden()

    await by(page, "signin-key").fill("demo-storefront")
    await by(page, "signin-submit").click()
    await expect(by(page, "signin-error")).to_contain_text("This is a STOREFRONT key")
    await expect(by(page, "signin-error")).to_contain_text("needs a FINANCE key")

    # A key kept in the tab that the hub no longer accepts (revoked) sends staff back to sign in.
    await page.evaluate("sessionStorage.setItem('console.financeKey', 'revoked-key')")
    await page.reload()
    await expect(by(page, "signin-error")).to_have_text(BAD_KEY)
    assert await page.evaluate("sessionStorage.getItem('console.financeKey')") is None


async def test_finance_settles_today_and_takes_statements_through_the_workflow(
    demo: Demo, page: Page
) -> None:
    today = demo.today.isoformat()
    SCREENSHOTS.mkdir(exist_ok=True)
    await sign_in(page, demo.url, "demo-finance")
    await expect(by(page, "who")).to_be_visible()

    # Batches come a page at a time, newest first; the demo's week of history has content.
    await expect(by(page, "batch-item")).to_have_count(20)
    for days in range(1, 8):
        day = (demo.today - dt.timedelta(days=days)).isoformat()
        count = by(page, "batch-item", date=day).locator(".count")
        await expect(count).to_have_text(re.compile(r"^[1-9]\d* obligations$"))
    await by(page, "batches-more").click()
    await expect(by(page, "batch-item")).to_have_count(PAST_BATCHES)
    await expect(by(page, "batches-more")).to_be_hidden()

    # Run settlement for today (the default date), confirming first.
    await expect(by(page, "run-date")).to_have_value(today)
    await by(page, "run-button").click()
    await expect(by(page, "run-confirm-text")).to_contain_text(f"Settle {today}?")
    await by(page, "run-confirm-button").click()
    # 28 moves of today's activity, and the adjustment of the dispute the demo's week of
    # history ended on (lotus's statement of yesterday, accepted by finance).
    await expect(by(page, "run-result")).to_contain_text(f"Settled {today}: 29 obligations")
    await expect(by(page, "batch-date")).to_have_text(today)
    await expect(by(page, "batch-item").first).to_have_attribute("data-date", today)

    # The positions and payment instructions are the hub's, and the nets sum to zero.
    api = (await demo.gql(BATCH, {"d": today}, "demo-finance"))["settlementBatch"]
    await expect(by(page, "position-row")).to_have_count(len(api["positions"]))
    nets = await amounts(by(page, "position-net"))
    assert sum(nets) == 0
    await expect(by(page, "positions-net-total")).to_have_attribute("data-amount", "0.00")
    await expect(by(page, "positions-balanced")).to_contain_text("nets sum to zero")
    for position in api["positions"]:
        cell = by(page, "position-row", merchant=position["merchant"]["id"]).locator(
            '[data-testid="position-net"]'
        )
        await expect(cell).to_have_attribute("data-amount", position["net"])
    await expect(by(page, "payment-row")).to_have_count(len(api["payments"]))
    shown = await amounts(by(page, "payment-amount"))
    assert sorted(shown) == sorted(Decimal(p["amount"]) for p in api["payments"])
    await expect(by(page, "statement-row")).to_have_count(5)
    # The trend: the last 30 batches (today's among them) drawn as net positions per
    # merchant and gross per day, by the charting library the hub serves itself.
    await expect(by(page, "trend-batches")).to_have_text("22")
    await expect(by(page, "trend-disputes")).to_have_text("0")
    await expect(by(page, "trend-net").locator("canvas")).to_have_count(1)
    await expect(by(page, "trend-gross").locator("canvas")).to_have_count(1)
    legend = by(page, "trend-net").locator(".u-legend")
    for position in api["positions"]:
        await expect(legend).to_contain_text(position["merchant"]["name"])
    await page.screenshot(path=SCREENSHOTS / "console-batch.png", full_page=True)

    # Running a settled date again changes nothing, and says so.
    await by(page, "run-button").click()
    await expect(by(page, "run-result")).to_contain_text(f"{today} is already settled")
    await expect(by(page, "run-confirm")).to_be_hidden()

    # haowu's statement: counterparties, and lines over two pages that sum to its net.
    await by(page, "statement-row", merchant="haowu").get_by_test_id("open-statement").click()
    await expect(by(page, "statement-status")).to_have_text("DRAFT")
    await expect(by(page, "statement-merchant")).to_contain_text("Haowu Platform")
    await expect(by(page, "counterparty-row")).to_have_count(2)
    await expect(by(page, "counterparty-row", counterparty="jade")).to_be_visible()
    await expect(by(page, "counterparty-row", counterparty="westlake")).to_be_visible()
    await expect(by(page, "line-row")).to_have_count(25)
    lines = await amounts(by(page, "line-amount"))
    await by(page, "lines-next").click()
    await expect(by(page, "lines-range")).to_have_text(f"Lines 26–{HAOWU_LINES} (end)")
    lines += await amounts(by(page, "line-amount"))
    [net] = await amounts(by(page, "statement-net"))
    assert len(lines) == HAOWU_LINES
    assert sum(lines) == net < 0
    await by(page, "lines-prev").click()
    await expect(by(page, "line-row")).to_have_count(25)
    await expect(by(page, "pay-button")).to_be_disabled()

    # Approve with a note, then mark paid with the transfer's reference.
    await by(page, "approve-note").fill("Checked against the partner report")
    await by(page, "approve-button").click()
    await expect(by(page, "action-result")).to_have_text("Approved. The statement is now APPROVED.")
    await expect(by(page, "statement-status")).to_have_text("APPROVED")
    await by(page, "pay-reference").fill("CMB-20261125-0001")
    await by(page, "pay-button").click()
    await expect(by(page, "action-result")).to_have_text("Marked paid. The statement is now PAID.")
    await expect(by(page, "statement-status")).to_have_text("PAID")
    await expect(by(page, "statement-meta")).to_contain_text("CMB-20261125-0001")
    await expect(by(page, "approve-button")).to_be_disabled()
    await expect(by(page, "dispute-button")).to_be_disabled()
    await page.screenshot(path=SCREENSHOTS / "console-statement.png", full_page=True)

    # The CSV comes with the key and is saved as a file.
    async with page.expect_download() as download_info:
        await by(page, "csv-download").click()
    download = await download_info.value
    assert download.suggested_filename == f"statement-haowu-{today}.csv"
    await expect(by(page, "csv-result")).to_contain_text(f"statement-haowu-{today}.csv")
    rows = _read_csv(await download.path())
    assert rows[0][:3] == ["line_id", "business_date", "kind"] and "amount" in rows[0]
    column = rows[0].index("amount")
    assert len(rows) == 1 + HAOWU_LINES + 1  # header, lines, total
    assert all(MONEY.match(row[column]) for row in rows[1:])
    assert rows[-1][0] == "TOTAL" and Decimal(rows[-1][column]) == net
    haowu = next(s for s in api["statements"] if s["merchant"]["id"] == "haowu")
    plain_link = await demo.client.get(f"/statements/{haowu['id']}.csv")
    assert plain_link.status_code == 401  # why the page fetches it with the key

    # jade disputes a meal price: the reason shows and payment is no longer offered.
    await by(page, "back-to-batch").click()
    await expect(by(page, "statement-row", merchant="haowu")).to_have_attribute(
        "data-status", "PAID"
    )
    await by(page, "statement-row", merchant="jade").get_by_test_id("open-statement").click()
    await expect(by(page, "statement-merchant")).to_contain_text("Jade Garden")
    await by(page, "dispute-button").click()  # no reason yet: the browser asks for one
    assert await by(page, "dispute-reason").evaluate("(input) => input.validity.valueMissing")
    await expect(by(page, "statement-status")).to_have_text("DRAFT")
    await by(page, "dispute-reason").fill("Set meal priced at 25.00, contract says 20.00")
    await by(page, "dispute-button").click()
    await expect(by(page, "statement-status")).to_have_text("DISPUTED")
    await expect(by(page, "action-result")).to_have_text("Disputed. The statement is now DISPUTED.")
    await expect(by(page, "statement-dispute")).to_contain_text("contract says 20.00")
    await expect(by(page, "trend-disputes")).to_have_text("1")
    await expect(by(page, "open-dispute")).to_contain_text("Jade Garden")
    await expect(by(page, "pay-button")).to_be_disabled()
    await expect(by(page, "approve-button")).to_be_disabled()  # answered by resolveDispute

    # Finance accepts the dispute with an adjustment: the statement returns to APPROVED with
    # its resolution, and the adjustment waits for the next batch (a closed one never moves).
    await expect(by(page, "resolve-form")).to_be_visible()
    await by(page, "resolve-note").fill("Contract price confirmed: 20.00")
    await by(page, "adjustment-add").click()
    await by(page, "adjustment-amount-input").fill("-5.00")
    await by(page, "adjustment-reason").fill("Set meal at the contract price")
    await by(page, "resolve-button").click()
    await expect(by(page, "statement-status")).to_have_text("APPROVED")
    await expect(by(page, "resolve-form")).to_be_hidden()
    await expect(by(page, "statement-resolution")).to_contain_text("ACCEPTED: Contract price")
    await expect(by(page, "adjustment-row")).to_have_count(1)
    await expect(by(page, "adjustment-amount")).to_contain_text("5.00")
    await expect(by(page, "adjustment-carried")).to_have_text("the next batch")
    await expect(by(page, "trend-disputes")).to_have_text("0")
    await page.screenshot(path=SCREENSHOTS / "console-dispute-resolved.png", full_page=True)

    # A refused transition shows the hub's message and the statement's real status:
    # lotus's statement is approved elsewhere while this page still shows it as a draft.
    await by(page, "back-to-batch").click()
    await by(page, "statement-row", merchant="lotus").get_by_test_id("open-statement").click()
    await expect(by(page, "statement-status")).to_have_text("DRAFT")
    lotus = next(s for s in api["statements"] if s["merchant"]["id"] == "lotus")
    approved = await demo.gql(
        "mutation($id: ID!) { approveStatement(id: $id) { userErrors { message } } }",
        {"id": lotus["id"]},
        "demo-finance",
    )
    assert approved["approveStatement"]["userErrors"] == []
    await by(page, "approve-button").click()
    await expect(by(page, "action-error")).to_contain_text("The statement is APPROVED")
    await expect(by(page, "action-error")).to_have_attribute("data-code", "INVALID_STATE")
    await expect(by(page, "statement-status")).to_have_text("APPROVED")
    await expect(by(page, "pay-button")).to_be_enabled()

    # Back on the batch, every statement shows where it stands.
    await by(page, "back-to-batch").click()
    statuses = {
        "haowu": "PAID",
        "jade": "APPROVED",
        "lotus": "APPROVED",
        "skyair": "DRAFT",
        "westlake": "DRAFT",
    }
    for merchant, status in statuses.items():
        await expect(by(page, "statement-row", merchant=merchant)).to_have_attribute(
            "data-status", status
        )

    # The key lasts for the tab (a reload keeps you in) and signing out forgets it.
    await page.reload()
    await expect(by(page, "batch-date")).to_have_text(today)
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(by(page, "position-row")).to_have_count(len(api["positions"]))
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, "the page scrolls sideways on a phone"
    await page.screenshot(path=SCREENSHOTS / "console-narrow.png", full_page=True)
    await by(page, "sign-out").click()
    await expect(by(page, "signin")).to_be_visible()
    await expect(by(page, "console")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('console.financeKey')") is None


async def test_a_batch_shows_the_partner_reconciliation_of_its_date(demo: Demo, page: Page) -> None:
    today = demo.today.isoformat()
    run = "mutation($d: Date!) { runSettlement(businessDate: $d) { userErrors { message } } }"
    await demo.gql(run, {"d": today}, "demo-finance")
    member = await demo.gql(
        '{ memberByRef(program: "HUB", externalRef: "H-1001") '
        "{ accounts { program { code } externalRef } } }",
        {},
        "demo-admin",
    )
    ref = next(
        a["externalRef"]
        for a in member["memberByRef"]["accounts"]
        if a["program"]["code"] == "LOTUS"
    )
    # The hotel records a movement the hub never asked for: a break.
    lotus = f"http://127.0.0.1:{demo.partner_base + 1}"
    planted = await demo.client.post(
        f"{lotus}/sandbox/movements",
        json={"key": "cnv_planted:credit", "ref": ref, "points": 250},
    )
    assert planted.status_code == 200
    reconcile = (
        "query($m: ID!, $d: Date!) { reconciliation(merchant: $m, businessDate: $d) { status } }"
    )
    for merchant, status in (("skyair", "MATCHED"), ("lotus", "BREAKS"), ("westlake", "MATCHED")):
        data = await demo.gql(reconcile, {"m": merchant, "d": today}, "demo-finance")
        assert data["reconciliation"]["status"] == status, (merchant, data)

    await sign_in(page, demo.url, "demo-finance")
    await expect(by(page, "who")).to_be_visible()
    await page.goto(f"{demo.url}/console#/batches/{today}")
    await expect(by(page, "batch-date")).to_have_text(today)
    await expect(by(page, "reconciliation-row")).to_have_count(3)
    await expect(by(page, "reconciliation-row", merchant="lotus")).to_have_attribute(
        "data-status", "BREAKS"
    )
    await expect(by(page, "reconciliation-row", merchant="skyair")).to_have_attribute(
        "data-status", "MATCHED"
    )
    row = by(page, "reconciliation-break", reference="cnv_planted:credit")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("only at the partner")
    await expect(row).to_contain_text("250")
