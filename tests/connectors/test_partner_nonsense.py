"""A partner that answers a move with 200 and something that does not confirm it (outside
attack helper-69, HIGH): the move is not taken as applied. Its outcome is unknown, so the
saga asks again with the same key until the partner confirms or refuses: no points made
from a debit that did not happen, none lost to a credit that did not, none moved twice."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import (
    BookingRequest,
    MemberAccount,
    Outcome,
    PointsCall,
    Purpose,
)
from hub.models import PartnerOutcome
from tests.connectors.test_partner_sagas import START, _drive, _runtime, _status, _world
from tests.helpers import (
    Api,
    balances,
    cancel_redemption,
    convert,
    create_key,
    redeem,
    upsert_reward,
    verify_ledger,
)
from tests.mall.test_mall_compensating_steps import _drive as _drive_redemptions
from tests.partners import Partners

NONSENSE = [
    pytest.param({"status": 200, "json": {"foo": "bar"}}, id="no-transaction"),
    pytest.param({"status": 200, "text": "<html>ok</html>"}, id="html"),
    pytest.param({"status": 200, "json": {"transactionId": ""}}, id="empty-transaction"),
    pytest.param({"status": 200, "json": [1]}, id="a-list"),
]


@pytest.mark.parametrize("answer", NONSENSE[:2])  # the saga's tests: one JSON, one page
async def test_a_debit_answered_with_nonsense_is_not_taken_as_applied(
    hub: Api, live_partners: Partners, answer: dict[str, Any], db_url: str
) -> None:
    member = await _world(hub, live_partners)
    await live_partners.faults("skyair", answer_with=answer, operations=["debit"])
    made = await convert(hub, member, "SKYMILES", "JADE", 1000)
    assert made["conversion"]["status"] == "PENDING", made
    assert (await balances(hub, member))["JADE"] == START["JADE"]  # nothing credited
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"]
    await live_partners.faults("skyair")
    await _drive(hub)
    # Asked again with the same key: debited once, credited once.
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 1000
    assert (await balances(hub, member))["JADE"] == START["JADE"] + 500
    assert await verify_ledger(db_url) == []


@pytest.mark.parametrize("answer", NONSENSE[:2])
async def test_a_credit_answered_with_nonsense_is_not_taken_as_applied(
    hub: Api, live_partners: Partners, answer: dict[str, Any], db_url: str
) -> None:
    member = await _world(hub, live_partners)
    await live_partners.faults("lotus", answer_with=answer, operations=["credit"])
    made = await convert(hub, member, "JADE", "LOTUS", 1000)
    assert made["conversion"]["status"] == "PENDING", made
    assert live_partners.balance("lotus", "L-1") == START["LOTUS"]
    await live_partners.faults("lotus")
    await _drive(hub)
    assert live_partners.balance("lotus", "L-1") == START["LOTUS"] + 2000  # once
    assert (await balances(hub, member))["JADE"] == START["JADE"] - 1000
    assert await verify_ledger(db_url) == []


@pytest.mark.parametrize("answer", NONSENSE)
async def test_a_reversal_booking_or_cancellation_answered_with_nonsense_is_unknown(
    hub: Api, live_partners: Partners, answer: dict[str, Any]
) -> None:
    """Each move a saga asks of a partner: an answer that does not confirm it is UNKNOWN
    (asked again), never APPLIED and never an internal error."""
    await _world(hub, live_partners)
    factory = _runtime(hub).connectors
    program = await _runtime(hub).caches.program("SKYMILES")
    assert program is not None
    connector = factory.for_program(program, None, "test")
    account = MemberAccount("mbr_x", "SKYMILES", "SK-1")
    await live_partners.faults("skyair", answer_with=answer)  # every move
    reversed_ = await connector.reverse(
        PointsCall(
            account,
            10,
            "nonsense:reverse",
            Purpose.CONVERSION,
            reference="r",
            undoes="nonsense:debit",
        )
    )
    booked = await connector.book(
        BookingRequest(
            reward_ref="AWARD",
            slot_ref=None,
            quantity=1,
            account=account,
            member_name="Chen Jie",
            reference="rdm_x",
            idempotency_key="nonsense:book",
        )
    )
    cancelled = await connector.cancel("PNR1", "MEMBER_REQUEST", "nonsense:cancel")
    for result in (reversed_, booked, cancelled):
        assert result.outcome == Outcome.UNKNOWN, result


async def test_a_reversal_that_voided_nothing_of_a_confirmed_debit_gives_nothing_back(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    """The destination refuses the credit; the hub reverses the debit the source confirmed.
    A source answering that it voided nothing ({"voided": false}: it never got the debit it
    confirmed) has not given the points back (outside attack helper-70, HIGH: the
    conversion showed REVERSED while the member's miles stayed taken)."""
    member = await _world(hub, live_partners)
    refused = {"status": 422, "json": {"error": {"code": "INVALID_INPUT", "message": "no"}}}
    await live_partners.faults("lotus", answer_with=refused, operations=["credit"])
    nothing = {"status": 200, "json": {"transactionId": "V-X", "voided": False}}
    await live_partners.faults("skyair", answer_with=nothing, operations=["reverse"])
    made = await convert(hub, member, "SKYMILES", "LOTUS", 1000)
    assert made["conversion"]["status"] == "PENDING", made
    # The partner's words, then the hub's (outside attack helper-71: "no The points...").
    assert made["userErrors"][0]["message"] == "no. The points are being returned.", made
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 1000
    await _drive(hub, rounds=2)
    assert (await _status(hub, made["conversion"]["id"])) == "PENDING"
    await live_partners.faults("skyair")
    await _drive(hub)
    assert (await _status(hub, made["conversion"]["id"])) == "REVERSED"
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"]  # back, once
    assert live_partners.balance("lotus", "L-1") == START["LOTUS"]
    assert await verify_ledger(db_url) == []


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ({"bookingRef": "PNR1", "status": "CANCELLED"}, Outcome.APPLIED),
        ({"status": "CANCELLED"}, Outcome.APPLIED),
        ({"bookingRef": "SOMETHING-ELSE", "status": "CANCELLED"}, Outcome.UNKNOWN),
        ({"bookingRef": "PNR1", "status": "cancelled"}, Outcome.UNKNOWN),
        ({"bookingRef": "PNR1", "status": "CANCELLING"}, Outcome.UNKNOWN),
    ],
)
async def test_a_booking_cancellation_is_confirmed_only_for_that_booking(
    hub: Api, live_partners: Partners, answer: dict[str, Any], outcome: Outcome
) -> None:
    """A cancellation's answer confirms it when it says CANCELLED and, if it names a
    booking, names this one (outside attack helper-70: another booking's, or a lower-case
    status, gave the member the points back and kept the ticket live)."""
    await _world(hub, live_partners)
    program = await _runtime(hub).caches.program("SKYMILES")
    assert program is not None
    connector = _runtime(hub).connectors.for_program(program, None, "test")
    reply = {"status": 200, "json": answer}
    await live_partners.faults("skyair", answer_with=reply, operations=["cancel"])
    result = await connector.cancel("PNR1", "MEMBER_REQUEST", "check:cancel")
    assert result.outcome == outcome, result


async def _partner_ref(hub: Api, conversion_id: str, step: str) -> str:
    async with _runtime(hub).db.read() as session:
        ref = await session.scalar(
            select(PartnerOutcome.partner_ref).where(
                PartnerOutcome.saga_id == conversion_id, PartnerOutcome.step == step
            )
        )
    assert ref, (conversion_id, step)
    return str(ref)


async def test_a_debit_confirmed_with_another_calls_reference_is_not_taken_as_applied(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    """A partner that answers a new debit with the transactionId it gave an earlier one (it
    keys its replies by member, or replays a cached answer for another key) did not take the
    points again. The second conversion is not credited: its debit is UNKNOWN, asked again
    with its own key until the partner confirms it with a reference of its own."""
    member = await _world(hub, live_partners)
    first = await convert(hub, member, "SKYMILES", "JADE", 1000)
    assert first["conversion"]["status"] == "COMPLETED", first
    taken = await _partner_ref(hub, first["conversion"]["id"], "DEBIT")
    replayed = {"status": 200, "json": {"transactionId": taken, "status": "APPLIED"}}
    await live_partners.faults("skyair", answer_with=replayed, operations=["debit"])
    second = await convert(hub, member, "SKYMILES", "JADE", 1000)
    assert second["conversion"]["status"] == "PENDING", second
    assert (await balances(hub, member))["JADE"] == START["JADE"] + 500  # the first alone
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 1000
    await live_partners.faults("skyair")
    await _drive(hub)
    # Asked again with its own key: the partner debits it and names it apart.
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 2000
    assert (await balances(hub, member))["JADE"] == START["JADE"] + 1000
    assert await _partner_ref(hub, second["conversion"]["id"], "DEBIT") != taken
    assert await verify_ledger(db_url) == []


async def test_a_redemptions_payment_confirmed_with_another_calls_reference_is_not_taken(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    """The same for a redemption paid with a partner's points (outside attack helper-72,
    HIGH): its payment is a debit at the partner whose hold the hub names by its own key,
    and the partner's transactionId was not looked at, so a reward was CONFIRMED with
    nothing taken. The partner's own reference is what is checked and kept."""
    member = await _world(hub, live_partners)
    first = await convert(hub, member, "SKYMILES", "JADE", 1000)
    assert first["conversion"]["status"] == "COMPLETED", first
    taken = await _partner_ref(hub, first["conversion"]["id"], "DEBIT")
    jade = await create_key(hub, "MERCHANT", "jade")
    meal = await upsert_reward(hub, jade, ref="SET-MEAL", kind="MEAL", title="Set meal", price=200)
    replayed = {"status": 200, "json": {"transactionId": taken, "balance": 1}}
    await live_partners.faults("skyair", answer_with=replayed, operations=["debit"])
    made = await redeem(hub, member, meal["id"], "SKYMILES")
    assert made["redemption"]["status"] == "PENDING", made
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 1000
    await live_partners.faults("skyair")
    await _drive_redemptions(hub)
    # Asked again with its own key: the partner takes the points and names them apart.
    assert await _status(hub, made["redemption"]["id"], of="redemption") == "CONFIRMED"
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 1000 - 400
    assert await _partner_ref(hub, made["redemption"]["id"], "HOLD") not in (taken, None)
    assert await verify_ledger(db_url) == []


async def test_a_refund_confirmed_with_its_own_payments_reference_is_not_taken(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    """Within one redemption too (outside attack helper-73, HIGH): a refund answered with
    the transactionId the partner gave the redemption's payment voided nothing new. Only a
    cancellation may name what an earlier step made (its booking)."""
    member = await _world(hub, live_partners)
    jade = await create_key(hub, "MERCHANT", "jade")
    meal = await upsert_reward(hub, jade, ref="SET-MEAL", kind="MEAL", title="Set meal", price=200)
    made = await redeem(hub, member, meal["id"], "SKYMILES")
    assert made["redemption"]["status"] == "CONFIRMED", made
    paid = await _partner_ref(hub, made["redemption"]["id"], "HOLD")
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 400
    answer = {"status": 200, "json": {"transactionId": paid, "voided": True}}
    await live_partners.faults("skyair", answer_with=answer, operations=["reverse"])
    undone = await cancel_redemption(hub, made["redemption"]["id"])
    assert undone["redemption"]["status"] == "PENDING", undone
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 400
    await live_partners.faults("skyair")
    await _drive_redemptions(hub)
    assert await _status(hub, made["redemption"]["id"], of="redemption") == "CANCELLED"
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"]  # given back, once
    assert await verify_ledger(db_url) == []


@pytest.mark.parametrize(
    "disguise",
    [
        pytest.param(lambda ref: f" {ref} ", id="spaces"),  # helper-73
        pytest.param(str.lower, id="lower-case"),  # helper-74
        pytest.param(lambda ref: f"{ref}\u200b", id="zero-width"),  # helper-74
        pytest.param(lambda ref: ref.replace("T", "\uff34", 1), id="full-width"),
        pytest.param(lambda ref: ref * 40, id="not-a-reference"),  # helper-74: no bound
    ],
)
async def test_a_disguised_reference_is_not_a_new_one(
    hub: Api, live_partners: Partners, disguise: Any
) -> None:
    """Outside attacks helper-73 and helper-74: a reference another call got, with spaces
    around it, in another case, with an invisible character or in full-width letters, is
    the same reference; more than 120 characters, or a character that cannot be printed,
    is no reference at all. Either way the debit is not taken as applied."""
    member = await _world(hub, live_partners)
    first = await convert(hub, member, "SKYMILES", "JADE", 1000)
    taken = await _partner_ref(hub, first["conversion"]["id"], "DEBIT")
    padded = {"status": 200, "json": {"transactionId": disguise(taken)}}
    await live_partners.faults("skyair", answer_with=padded, operations=["debit"])
    second = await convert(hub, member, "SKYMILES", "JADE", 1000)
    assert second["conversion"]["status"] == "PENDING", second
    assert (await balances(hub, member))["JADE"] == START["JADE"] + 500


@pytest.mark.parametrize(
    ("body", "said"),
    [
        pytest.param(
            {"error": {"code": "X", "message": "Account frozen"}}, "Account frozen", id="ours"
        ),
        pytest.param({"error": "insufficient miles"}, "insufficient miles", id="error-text"),
        pytest.param(
            {"message": "guest already checked out"}, "guest already checked out", id="message"
        ),
    ],
)
async def test_a_partners_refusal_is_told_in_its_own_words(
    hub: Api, live_partners: Partners, body: dict[str, Any], said: str
) -> None:
    """Outside attack helper-75 (low): a refusal whose words were not under `error.message`
    (`{"error": "insufficient miles"}`, `{"message": ...}`, as partners write them) was
    told as "skyair refused the request.", without them."""
    member = await _world(hub, live_partners)
    await live_partners.faults(
        "skyair", answer_with={"status": 422, "json": body}, operations=["debit"]
    )
    refused = await convert(hub, member, "SKYMILES", "JADE", 1000)
    [error] = refused["userErrors"]
    assert error["code"] == "PARTNER_REJECTED" and said in error["message"], error
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"]


async def test_a_partners_words_are_kept_short_and_printable(
    hub: Api, live_partners: Partners
) -> None:
    """A partner's words reach a member's screen: control characters go, and a page of text
    is cut to a sentence's length."""
    member = await _world(hub, live_partners)
    words = "no\x00 such\x1b[31m member " + "x" * 5_000
    body = {"error": {"code": "X", "message": words}}
    await live_partners.faults(
        "skyair", answer_with={"status": 422, "json": body}, operations=["debit"]
    )
    [error] = (await convert(hub, member, "SKYMILES", "JADE", 1000))["userErrors"]
    assert error["message"].isprintable() and len(error["message"]) <= 400, error
    assert "no such member" in error["message"], error
