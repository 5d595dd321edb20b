"""Partner catalogs and slots that fail or go silent: a page keeps one time budget, and a
partner that failed or went silent is not waited for by the pages that follow (outside
attacks helper-75 and -76)."""

from __future__ import annotations

import datetime as dt
import time

from hub.config import Settings
from tests.helpers import Api, live_app, register
from tests.mall.test_mall_partners import CST, PAGE, _budgeted, hub, live, westlake_listed
from tests.partners import Partners, register_connected

__all__ = ["hub", "live"]  # the fixtures these tests share with the mall's partner tests


async def test_a_partner_whose_listing_fails_is_not_asked_again_by_every_page(
    hub: tuple[str, Api], live: Partners
) -> None:
    """Outside attack helper-75 (low): a partner whose slots (or catalog) failed at once was
    asked again by every page, each time with the transport's retries, about a second a
    page. A listing that failed is not asked again for a while: the pages in between name
    the partner unavailable at once and serve what is kept."""
    _, api = hub
    await westlake_listed(api, live)
    westlake = live.sandbox("westlake")
    catalog = api.app.state.runtime.catalog
    day = (dt.datetime.now(CST) + dt.timedelta(days=1)).date().isoformat()
    await live.faults("westlake", error_rate=1.0, operations=["slots", "rewards"])
    catalog.refreshed.clear()  # the kept catalog is past its time too
    first = await api.gql(PAGE, {"filter": {"availableOn": day}})
    assert [m["id"] for m in first["rewards"]["unavailableMerchants"]] == ["westlake"]
    asked = dict(westlake.stats)
    assert asked["slots"] > 0 and asked["rewards"] > 0
    for _ in range(2):
        again = await api.gql(PAGE, {"filter": {"availableOn": day}})
        assert again["rewards"]["unavailableMerchants"] == first["rewards"]["unavailableMerchants"]
        assert dict(westlake.stats) == asked  # named at once, not asked again
    # The partner recovers; once the wait after its failure is over it is asked again.
    await live.faults("westlake")
    catalog.failed_at.clear()
    catalog.slots_failed_at.clear()
    recovered = await api.gql(PAGE, {"filter": {"availableOn": day}})
    assert recovered["rewards"]["unavailableMerchants"] == []
    assert westlake.stats["slots"] > asked["slots"] and westlake.stats["rewards"] > asked["rewards"]


async def test_an_available_on_page_keeps_one_budget_for_catalogs_and_slots(
    settings: Settings, live: Partners
) -> None:
    """Outside attack helper-75 (low): an availableOn page waited a whole budget for the
    catalogs, then another for the day's slots (2.2 s for a 1.5 s budget). Both come out
    of one budget."""
    budget = 1.5
    await live.start("lotus", "HOTEL")
    await live.start("westlake", "SCENIC")
    configured = _budgeted(settings, live, budget)
    async with live_app(configured) as (_, api):
        await register(api, "haowu", "HUB", category="PLATFORM")
        await register_connected(api, live, "lotus", "LOTUS", "HOTEL", timeoutSeconds=10)
        await register_connected(api, live, "westlake", "WESTLAKE", "SCENIC", timeoutSeconds=10)
        assert (await api.gql(PAGE))["rewards"]["unavailableMerchants"] == []
        api.app.state.runtime.catalog.refreshed.clear()  # the catalogs are past their time
        await live.faults("lotus", latency_ms=8000, operations=["rewards"])
        await live.faults("westlake", latency_ms=8000, operations=["slots"])
        day = (dt.datetime.now(CST) + dt.timedelta(days=1)).date().isoformat()
        try:
            started = time.perf_counter()
            data = await api.gql(PAGE, {"filter": {"availableOn": day}})
            elapsed = time.perf_counter() - started
            unavailable = [m["id"] for m in data["rewards"]["unavailableMerchants"]]
            assert unavailable == ["lotus", "westlake"], data
            # One budget, not one for the catalogs and another for the slots.
            assert elapsed < 2 * budget, elapsed
        finally:
            await live.faults("lotus")
            await live.faults("westlake")


async def test_a_partner_silent_for_one_day_is_not_waited_for_on_the_next(
    hub: tuple[str, Api], live: Partners
) -> None:
    """Outside attack helper-76 (low-medium): a partner silent for one day's slots was waited
    for a whole budget again by a page for each other day (four pages of 1.5 s). A partner
    still silent after a budget is named at once by pages for any day, and a partner whose
    listing failed is asked again in the background, not waited for, until it answers."""
    _, api = hub
    await westlake_listed(api, live, timeoutSeconds=10)
    await live.faults("westlake", latency_ms=8000, operations=["slots"])
    today = dt.datetime.now(CST).date()
    try:
        took = []
        for ahead in (1, 2, 3):
            day = (today + dt.timedelta(days=ahead)).isoformat()
            started = time.perf_counter()
            data = await api.gql(PAGE, {"filter": {"availableOn": day}})
            took.append(time.perf_counter() - started)
            assert [m["id"] for m in data["rewards"]["unavailableMerchants"]] == ["westlake"]
        budget = 1.5
        assert took[0] >= budget  # the first page gave it the budget ...
        assert max(took[1:]) < budget * 2 / 3, took  # ... pages for other days did not wait
    finally:
        await live.faults("westlake")
