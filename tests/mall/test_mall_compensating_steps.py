"""Compensating steps of the redemption saga: an unreachable partner means "later",
never "refused"; compensation belongs to the cancellation that succeeds."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from hub.db import utcnow
from hub.mall import saga
from hub.models import Redemption
from hub.runtime import Runtime
from tests.helpers import (
    Api,
    balances,
    cancel_redemption,
    create_key,
    enroll,
    obligations,
    redeem,
    register,
    running_app,
    set_rate,
    upsert_reward,
    verify_ledger,
)
from tests.partners import Partners, partners, register_connected

STATUS = "query($id: ID!) { redemption(id: $id) { status refundedPoints compensationPoints } }"


@pytest.fixture
async def live() -> AsyncIterator[Partners]:
    async with partners() as found:
        await found.start("carwash", "HTTP")
        await found.start("shop", "HTTP")
        yield found


@pytest.fixture
async def hub(settings, live: Partners) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    configured = settings.model_copy(
        update={"partner_secrets": live.secrets(), "allow_private_partners": True}
    )
    async with running_app(configured) as api:
        yield api


async def _world(api: Api, live: Partners) -> str:
    """WASH lives at the car wash's own system; SHOP's rewards are booked at the shop;
    JADE is hosted. The member has 1,000 WASH at the car wash and 10,000 HUB."""
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register_connected(api, live, "carwash", "WASH", "HTTP", pointValue="0.10")
    await register_connected(
        api, live, "shop", "SHOP", "HTTP", pointValue="0.10", compensationPercent="20"
    )
    await register(api, "jade", "JADE", category="RESTAURANT", pointValue="0.10")
    jade = await create_key(api, "MERCHANT", "jade")
    await upsert_reward(api, jade, ref="MEAL", kind="MEAL", title="Set meal", price=200)
    for source, target in (("WASH", "JADE"), ("WASH", "SHOP"), ("HUB", "SHOP")):
        await set_rate(api, source, target, "1")
    await live.member("carwash", "W-1", 1000)
    member = await enroll(api, "WASH", "W-1", "Wang Fang")
    await enroll(api, "HUB", "H-1", member_id=member)
    from tests.helpers import accrue

    await accrue(api, member, "HUB", "10000")
    await api.gql("query { rewards(first: 100) { edges { node { id } } } }")  # partner catalogs
    return member


def _runtime(api: Api) -> Runtime:
    runtime: Runtime = api.app.state.runtime
    return runtime


async def _drive(api: Api, rounds: int = 4) -> None:
    """The saga sweeper, as `hub serve` runs it, without waiting out its backoff."""
    runtime = _runtime(api)
    for _ in range(rounds):
        async with runtime.db.write() as session:
            await session.execute(
                update(Redemption).values(
                    next_attempt_at=None, updated_at=utcnow() - dt.timedelta(seconds=5)
                )
            )
        await saga.resume_due(runtime.db, runtime.settings, runtime.connectors)


def _cool_down(api: Api, merchant_id: str) -> None:
    """Let the breaker's cooldown pass, as time would."""
    breaker = _runtime(api).connectors.breakers.get(merchant_id)  # type: ignore[attr-defined]
    if breaker is not None:
        breaker.opened_at -= breaker.cooldown_seconds


async def _state(api: Api, rid: str) -> dict[str, object]:
    data = await api.gql(STATUS, {"id": rid})
    found: dict[str, object] = data["redemption"]
    return found


async def test_a_refund_to_an_unreachable_partner_waits_until_the_partner_answers(
    hub: Api, live: Partners, db_url: str
) -> None:
    member = await _world(hub, live)
    done = await redeem(hub, member, "jade:MEAL", "WASH")
    assert done["redemption"]["status"] == "CONFIRMED", done
    assert live.balance("carwash", "W-1") == 800
    await live.stop("carwash")  # connection refused from now on
    pending = await cancel_redemption(hub, done["redemption"]["id"])
    rid = done["redemption"]["id"]
    # Not refunded yet: the car wash never took the reversal.
    assert pending["redemption"]["status"] == "PENDING", pending
    assert pending["redemption"]["refundedPoints"] == 0
    assert [o["kind"] for o in await obligations(db_url)] == ["REDEMPTION"]
    await _drive(hub)  # still down: still pending, still no refund owed
    assert (await _state(hub, rid))["status"] == "PENDING"
    assert [o["kind"] for o in await obligations(db_url)] == ["REDEMPTION"]
    await live.restart("carwash")
    _cool_down(hub, "carwash")
    await _drive(hub)
    assert await _state(hub, rid) == {
        "status": "CANCELLED",
        "refundedPoints": 200,
        "compensationPoints": 0,
    }
    assert live.balance("carwash", "W-1") == 1000
    assert [o["kind"] for o in await obligations(db_url)] == ["REDEMPTION", "REFUND"]
    assert await verify_ledger(db_url) == []


async def test_a_release_to_an_unreachable_partner_waits_until_the_partner_answers(
    hub: Api, live: Partners, db_url: str
) -> None:
    member = await _world(hub, live)
    await live.faults("shop", error_rate=1.0, operations=["book"])
    started = await redeem(hub, member, "shop:CAR-WASH", "WASH")
    rid = started["redemption"]["id"]
    assert started["redemption"]["status"] == "PENDING"  # the shop answered 503
    assert live.balance("carwash", "W-1") == 700  # the 300 are held at the car wash
    # The shop sells out and answers again; the car wash goes down.
    await live.faults("shop")
    live.sandbox("shop").stock["CAR-WASH"] = 0
    await live.stop("carwash")
    await _drive(hub)
    assert (await _state(hub, rid))["status"] == "PENDING"  # the release is still owed
    await live.restart("carwash")
    _cool_down(hub, "carwash")
    await _drive(hub)
    assert (await _state(hub, rid))["status"] == "FAILED"
    assert live.balance("carwash", "W-1") == 1000
    assert await obligations(db_url) == []
    assert await verify_ledger(db_url) == []


@pytest.mark.parametrize("step", ["RELEASE", "UNBOOK", "REFUND", "COMPENSATE"])
async def test_no_compensating_step_takes_partner_unavailable_for_an_answer(
    hub: Api, live: Partners, db_url: str, step: str
) -> None:
    from connectors.base import CallResult, Outcome
    from hub.enums import ErrorCode

    member = await _world(hub, live)
    done = await redeem(hub, member, "jade:MEAL", "WASH")
    rid = done["redemption"]["id"]
    runtime = _runtime(hub)
    refused = CallResult(Outcome.REJECTED, code=ErrorCode.PARTNER_UNAVAILABLE, message="down")
    async with runtime.db.write() as session:
        r = await session.get(Redemption, rid)
        assert r is not None
        if step in ("RELEASE", "UNBOOK"):
            r.status, r.step = "PENDING", step
        else:
            r.cancel_step, r.cancel_reason, r.compensation_points = step, "MERCHANT_CANCELLED", 40
        await saga.apply(session, runtime.settings, r, step, refused)
        assert r.next_attempt_at is not None  # tried again later
        assert (r.status, r.refunded_points) == (
            "PENDING" if step in ("RELEASE", "UNBOOK") else "CONFIRMED",
            0,
        )
        assert r.step == step or r.cancel_step == step
        await session.rollback()


async def test_compensation_belongs_to_the_cancellation_that_succeeds(
    hub: Api, live: Partners, db_url: str
) -> None:
    member = await _world(hub, live)
    done = await redeem(hub, member, "shop:CAR-WASH", "HUB")
    rid = done["redemption"]["id"]
    assert done["redemption"]["status"] == "CONFIRMED", done
    assert (await balances(hub, member))["HUB"] == 9_700
    # The shop refuses the merchant's cancellation for good (it has lost the booking)...
    shop = live.sandbox("shop")
    ref = done["redemption"]["fulfillmentRef"]
    booking = shop.bookings.pop(ref)
    refused = await cancel_redemption(hub, rid, "MERCHANT_CANCELLED")
    # The redemption is the hub's and was found; the shop refused (its 404 is its refusal).
    assert refused["userErrors"][0]["code"] == "PARTNER_REJECTED"
    assert "shop" in refused["userErrors"][0]["message"]
    assert refused["redemption"]["status"] == "CONFIRMED"
    assert refused["redemption"]["compensationPoints"] == 0
    # ... then finds it again, and the member cancels: a refund, and no compensation.
    shop.bookings[ref] = booking
    cancelled = await cancel_redemption(hub, rid, "MEMBER_REQUEST")
    assert cancelled["redemption"] == {
        **cancelled["redemption"],
        "status": "CANCELLED",
        "refundedPoints": 300,
        "compensationPoints": 0,
    }
    assert (await balances(hub, member))["HUB"] == 10_000
    assert [o["kind"] for o in await obligations(db_url)] == ["REDEMPTION", "REFUND"]
    assert await verify_ledger(db_url) == []


async def test_verify_finds_a_finished_redemption_whose_hosted_moves_are_missing(
    hub: Api, live: Partners, db_url: str
) -> None:
    """What a saga that took "no answer" for an answer would leave: `hub verify` says so."""
    member = await _world(hub, live)
    done = await redeem(hub, member, "shop:CAR-WASH", "HUB")  # a hold at the hosted HUB
    rid = done["redemption"]["id"]
    assert await verify_ledger(db_url) == []
    runtime = _runtime(hub)
    async with runtime.db.write() as session:  # cancelled without the refund being posted
        await session.execute(
            update(Redemption)
            .where(Redemption.id == rid)
            .values(status="CANCELLED", cancel_step="DONE", compensation_points=60)
        )
    found = await verify_ledger(db_url)
    assert any(v.startswith("refund of a cancelled redemption posted") for v in found), found
    assert any(v.startswith("compensation of a cancelled redemption posted") for v in found)
    async with runtime.db.write() as session:  # failed, yet its hold was captured
        await session.execute(
            update(Redemption).where(Redemption.id == rid).values(status="FAILED")
        )
    found = await verify_ledger(db_url)
    assert any(v.startswith("hold of a finished redemption settled") for v in found), found


async def test_a_hold_whose_answer_was_lost_is_not_failed_by_a_call_that_was_never_sent(
    settings,
    live: Partners,
    db_url: str,  # type: ignore[no-untyped-def]
) -> None:
    """Found by the simulation (seed 1, nothing avoided): the car wash took 500 points, its
    answer was lost, the next try found it unreachable, and the redemption ended FAILED
    while the partner kept the points."""
    configured = settings.model_copy(
        update={
            "partner_secrets": live.secrets(),
            "partner_timeout_seconds": 0.5,
            "allow_private_partners": True,
        }
    )
    async with running_app(configured) as api:
        member = await _world(api, live)
        await live.faults("carwash", lose_response=True, hang_seconds=1.5, operations=["debit"])
        done = await redeem(api, member, "shop:CAR-WASH", "WASH")
        rid = done["redemption"]["id"]
        assert done["redemption"]["status"] == "PENDING", done
        assert live.balance("carwash", "W-1") == 700  # applied; the hub did not hear it
        await live.faults("carwash", lose_response=False)
        await live.stop("carwash")
        await _drive(api, rounds=2)  # the hold again: connection refused, not an answer
        assert (await _state(api, rid))["status"] == "PENDING"
        await live.restart("carwash")
        _cool_down(api, "carwash")
        await _drive(api)
        assert (await _state(api, rid))["status"] == "CONFIRMED"
        assert live.balance("carwash", "W-1") == 700  # taken once, for this redemption
    assert await verify_ledger(db_url) == []


async def test_hub_verify_catches_a_refund_the_partner_never_confirmed(
    hub: Api, live: Partners, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 1 of issue 15 replayed: the old rule took an unreachable partner's silence for
    an answer and cancelled with the points still at the car wash. `hub verify` must name
    the refund no partner confirmed."""
    member = await _world(hub, live)
    done = await redeem(hub, member, "jade:MEAL", "WASH")
    rid = done["redemption"]["id"]
    assert await verify_ledger(db_url) == []  # the hold was confirmed by the car wash
    await live.stop("carwash")

    def old_rule(r: Redemption, step: str, result: object) -> bool:
        return getattr(result, "outcome", None) == saga.Outcome.UNKNOWN

    monkeypatch.setattr(saga, "_retried", old_rule)
    cancelled = await cancel_redemption(hub, rid)
    assert cancelled["redemption"]["status"] == "CANCELLED"  # what the defect reported
    assert live.balance("carwash", "W-1") == 800  # and the points never came back
    found = [str(v) for v in await verify_ledger(db_url)]
    assert found == [
        f"partner movement confirmed: redemption {rid} is CANCELLED,"
        " but WASH never confirmed its REFUND"
    ], found


async def test_sagas_finished_before_partner_outcomes_were_kept_verify_clean(
    hub: Api, live: Partners, db_url: str
) -> None:
    """Migration 0025 records, for the sagas already past a partner step, the confirmations
    they were moved on by: a database upgraded across it verifies clean."""
    from alembic import command
    from sqlalchemy import Connection, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from hub.migrate import alembic_config, upgrade
    from hub.models import PartnerOutcome

    member = await _world(hub, live)
    kept = await redeem(hub, member, "jade:MEAL", "WASH")
    undone = await redeem(hub, member, "jade:MEAL", "WASH")
    assert (await cancel_redemption(hub, undone["redemption"]["id"]))["userErrors"] == []
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(select(PartnerOutcome.saga_id, PartnerOutcome.step))).all()
        async with engine.begin() as conn:

            def down(sync: Connection) -> None:
                config = alembic_config(db_url)
                config.attributes["connection"] = sync
                command.downgrade(config, "0014")

            await conn.run_sync(down)
    finally:
        await engine.dispose()
        await upgrade(db_url)
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            after = (await conn.execute(select(PartnerOutcome.saga_id, PartnerOutcome.step))).all()
    finally:
        await engine.dispose()
    # What the checks hold sagas to (the capture, not a movement of its own, is not carried).
    assert {tuple(r) for r in after} <= {tuple(r) for r in before}
    assert {tuple(r) for r in after} == {
        (kept["redemption"]["id"], "HOLD"),
        (undone["redemption"]["id"], "HOLD"),
        (undone["redemption"]["id"], "REFUND"),
    }
    assert await verify_ledger(db_url) == []
