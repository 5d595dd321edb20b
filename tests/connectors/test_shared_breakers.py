"""Circuit breakers shared through Redis (HUB_REDIS_URL): a partner one process found
down is failed fast by every other, and one probe at a time goes out across them."""

from __future__ import annotations

import asyncio

from connectors.breaker import BreakerStore, SharedBreaker, State
from hub.config import Settings
from tests.helpers import Api, convert, enroll, register, running_app, set_rate
from tests.partners import Partners, register_connected
from tests.shared_redis import REDIS_URL, keys_under, needs_redis, own_prefix

pytestmark = needs_redis


async def _world(api: Api, partners: Partners) -> str:
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register_connected(
        api, partners, "skyair", "SKYMILES", "AIRLINE", pointValue="0.08", breakerFailures=2
    )
    await register(api, "jade", "JADE", category="RESTAURANT", pointValue="0.125")
    await partners.member("skyair", "SK-1", 50_000)
    member = await enroll(api, "SKYMILES", "SK-1", "Chen Jie")
    await enroll(api, "JADE", "J-1", member_id=member)
    await set_rate(api, "SKYMILES", "JADE", "0.5")
    return member


def _breaker(api: Api, merchant_id: str) -> SharedBreaker:
    breaker = api.app.state.runtime.connectors.breakers[merchant_id]
    assert isinstance(breaker, SharedBreaker)
    return breaker


async def _cool_down(breaker: SharedBreaker) -> None:
    """Let the cooldown pass, as time would: open until a moment ago."""
    seconds, micros = await breaker.store.redis.time()
    await breaker.store.redis.hset(breaker.key, "open_until", seconds * 1000 + micros // 1000 - 1)


async def _calls(partners: Partners, merchant_id: str) -> int:
    return sum(partners.sandbox(merchant_id).stats.values())


async def test_a_breaker_opened_by_one_instance_is_open_in_the_other(
    partner_settings: Settings, live_partners: Partners
) -> None:
    async with own_prefix() as prefix:
        shared = partner_settings.model_copy(
            update={"redis_url": REDIS_URL, "redis_prefix": prefix, "cache_check_seconds": 0}
        )
        async with running_app(shared) as one:
            member = await _world(one, live_partners)
            async with running_app(shared) as two:
                await live_partners.stop("skyair")
                for _ in range(2):  # each refused connection is a failure: open at 2
                    failed = await convert(one, member, "SKYMILES", "JADE", 100)
                    assert failed["userErrors"][0]["code"] == "PARTNER_UNAVAILABLE"
                assert await _breaker(one, "skyair").state() == State.OPEN
                assert f"{prefix}breaker:skyair" in await keys_under(prefix)
                await live_partners.restart("skyair")

                # The other instance never called the partner, yet fails fast: nothing sent.
                before = await _calls(live_partners, "skyair")
                fast = await convert(two, member, "SKYMILES", "JADE", 100)
                assert fast["userErrors"][0]["code"] == "PARTNER_UNAVAILABLE"
                assert "try again" in fast["userErrors"][0]["message"]
                assert fast["conversion"] is None or fast["conversion"]["status"] == "FAILED"
                assert await _calls(live_partners, "skyair") == before
                assert await _breaker(two, "skyair").state() == State.OPEN

                # After the cooldown the other instance's probe closes it for both.
                await _cool_down(_breaker(two, "skyair"))
                probed = await convert(two, member, "SKYMILES", "JADE", 100)
                assert probed["conversion"]["status"] == "COMPLETED", probed
                assert await _breaker(one, "skyair").state() == State.CLOSED
                again = await convert(one, member, "SKYMILES", "JADE", 100)
                assert again["conversion"]["status"] == "COMPLETED", again
                assert live_partners.balance("skyair", "SK-1") == 50_000 - 200


async def test_one_probe_at_a_time_across_processes() -> None:
    async with own_prefix() as prefix:
        stores = [BreakerStore(REDIS_URL, prefix), BreakerStore(REDIS_URL, prefix)]
        a, b = (
            SharedBreaker(s, "p", failures_to_open=2, cooldown_seconds=0.3, probe_seconds=0.5)
            for s in stores
        )
        try:
            await a.failure()
            assert await b.allow() and await b.state() == State.CLOSED  # one is not enough
            await b.failure()
            assert await a.state() == State.OPEN
            assert not await a.allow() and not await b.allow()
            await asyncio.sleep(0.35)
            assert await b.state() == State.HALF_OPEN
            assert await a.allow()  # the probe
            assert not await b.allow()  # while it is out, nobody else
            await a.failure()  # the probe failed: open again for the cooldown
            assert await b.state() == State.OPEN and not await b.allow()
            await asyncio.sleep(0.35)
            assert await b.allow()  # b's probe this time; it never reports (b "died")
            assert not await a.allow()
            await asyncio.sleep(0.55)  # the probe's lease is over: another may probe
            assert await a.allow()
            await a.success()
            assert await b.state() == State.CLOSED and await b.allow()
        finally:
            for store in stores:
                await store.close()


async def test_without_redis_answering_each_process_keeps_its_own() -> None:
    store = BreakerStore("redis://127.0.0.1:1/0", "hub:breaker:")
    breaker = SharedBreaker(store, "p", failures_to_open=2, cooldown_seconds=30)
    try:
        assert await breaker.allow()
        await breaker.failure()
        await breaker.failure()
        assert not await breaker.allow()  # open in this process
        assert breaker.local.state == State.OPEN
    finally:
        await store.close()
