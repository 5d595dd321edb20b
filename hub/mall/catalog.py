"""The catalog: hosted rewards kept by merchants, partner rewards cached from connectors,
and the merged, filtered, cursor-paginated listing."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import RewardOffer, RewardTerms, SlotOffer
from hub import tags, validate, vouchers
from hub.auth import Principal
from hub.db import NO_KEY_UPDATE, Reads, insert_or_update, row_by, utcnow
from hub.eligibility import encode
from hub.enums import CreditLevel, MerchantStatus, RedemptionStatus, Role
from hub.errors import FieldPath, Forbidden, InvalidInput, InvalidState, NotFound
from hub.folding import fold
from hub.mall import settlement_prices
from hub.mall.pricing import SLOTTED, PriceBook
from hub.merchants import is_connected, platform_program, primary_program
from hub.models import Merchant, Program, Redemption, Reward, Slot, Tier
from hub.models.mall import LISTED_COLUMNS, ListedReward
from hub.permissions import require_merchant

REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


# A slot a member can book at `now`: not yet started (one that has, cannot be), a place left.
_BOOKABLE_SLOT = (
    Slot.starts_at > bindparam("now"),
    or_(Slot.remaining.is_(None), Slot.remaining > 0),
)


def reward_id(merchant_id: str, ref: str) -> str:
    return f"{merchant_id}:{ref}"


@dataclass(frozen=True)
class NewSlot:
    ref: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int | None


@dataclass(frozen=True)
class NewReward(RewardTerms):
    merchant_id: str | None = None
    slots: list[NewSlot] | None = None
    priority_until: dt.datetime | None = None
    priority_tiers: list[str] = field(default_factory=list)
    priority_credit_levels: list[CreditLevel] = field(default_factory=list)
    tags: list[str] | None = None
    voucher: vouchers.Terms | None = None
    # `stock` was not given: an existing reward keeps what it has left (a new one: unlimited).
    keep_stock: bool = False


async def upsert_reward(session: AsyncSession, principal: Principal, data: NewReward) -> Reward:
    """Create or update one of the caller's own hosted rewards (ADMIN names the merchant;
    without one, the platform's own reward)."""
    # A merchant that names another merchant is refused (FORBIDDEN), never silently
    # redirected to its own catalog.
    merchant_id = data.merchant_id or principal.merchant_id
    if not merchant_id and principal.role == Role.ADMIN:
        # The contract's RewardInput names no merchant: the platform's operator lists the
        # platform's own rewards (a room upgrade for HUB points).
        platform = await platform_program(session)
        merchant_id = platform.merchant_id if platform is not None else None
    if not merchant_id:
        raise InvalidInput(
            "No platform merchant is registered: give merchantId, the merchant whose reward "
            "this is.",
            field=("merchant_id",),
        )
    require_merchant(principal, merchant_id, ("merchant_id",))
    program = await primary_program(session, merchant_id)
    if program is None:
        raise NotFound(f"No merchant has id {merchant_id!r}.", field=("merchant_id",))
    if is_connected(program):
        raise InvalidState(
            f"{merchant_id}'s rewards come from its own system through its connector.",
            field=("ref",),
        )
    if not REF.fullmatch(data.ref):
        raise InvalidInput(
            "ref must be 1-120 letters, digits, '.', '_' or '-', beginning with a letter or digit.",
            field=("ref",),
        )
    title = validate.text(data.title, ("title",), max_length=200, one_line=True)
    description = (
        validate.text(data.description, ("description",), max_length=4000, required=False) or None
        if data.description is not None
        else None
    )
    validate.points_in_range(data.price, ("price",), low=1, high=100_000_000)
    if data.stock is not None:
        validate.points_in_range(data.stock, ("stock",), low=0, high=100_000_000)
    priority = await _priority(session, program.code, data)
    labels = tags.checked(data.tags, ("tags",))
    terms = vouchers.checked_terms(data.kind, data.voucher, ("voucher",))
    rid = reward_id(merchant_id, data.ref)
    reward = await session.get(Reward, rid)
    price, contracted = _settlement_price(principal, data, program, reward)
    if reward is None:
        reward = Reward(id=rid, merchant_id=merchant_id, ref=data.ref, source="HOSTED")
        session.add(reward)
    reward.settlement_price, reward.settlement_contracted = price, contracted
    reward.kind = data.kind
    reward.title = title
    reward.description = description
    reward.price = data.price
    if not data.keep_stock:
        reward.stock = data.stock
    reward.active = data.active
    reward.priority_until, reward.priority_tiers, reward.priority_credit_levels = priority
    reward.tags = tags.encode(labels)
    vouchers.set_terms(reward, terms)
    reward.refreshed_at = utcnow()
    await session.flush()
    given: set[str] = set()
    for index, slot in enumerate(data.slots or []):
        if slot.ref in given:
            raise InvalidInput(
                f"Slot {slot.ref} is given twice: give each slot once.",
                field=("slots", str(index), "ref"),
            )
        given.add(slot.ref)
        await _store_slot(session, rid, slot, ("slots", str(index)))
    # A kind booked by nature, or a reward given slots once (an edit that leaves them out
    # keeps them).
    reward.has_slots = data.kind.value in SLOTTED or await _a_slot(session, rid, ahead=False)
    if reward.has_slots and reward.active and not await _a_slot(session, rid, ahead=True):
        # Listed, it could never be redeemed: a redemption names one of its slots.
        raise InvalidInput(
            f"A {data.kind.value} reward is redeemed by slot, and this one has no slot ahead: "
            "give slots (each a ref, startsAt, endsAt and capacity), or active: false.",
            field=("slots",),
        )
    await session.flush()
    return reward


async def _store_slot(session: AsyncSession, rid: str, slot: NewSlot, field_: FieldPath) -> None:
    """A slot of the reward, new or given again. Its capacity is its places in all: those
    booked (by redemptions not failed or cancelled) stay booked, so a slot given again
    never hands out a taken place a second time."""
    starts = validate.moment(slot.starts_at, (*field_, "starts_at"))
    ends = validate.moment(slot.ends_at, (*field_, "ends_at"))
    if ends <= starts:
        raise InvalidInput("A slot must end after it starts.", field=field_)
    if not REF.fullmatch(slot.ref):
        raise InvalidInput(
            "A slot's ref must be 1-120 letters, digits, '.', '_' or '-', beginning "
            "with a letter or digit.",
            field=field_,
        )
    if slot.capacity is not None:
        validate.points_in_range(slot.capacity, (*field_, "capacity"), low=0, high=100_000_000)
    sid = f"{rid}@{slot.ref}"
    # Locked first: a redemption taking a place commits before the count below, or waits
    # for this transaction and takes from what it leaves.
    row = await session.get(Slot, sid, with_for_update=NO_KEY_UPDATE)
    if row is None:
        row = Slot(id=sid, reward_id=rid, ref=slot.ref)
        session.add(row)
        booked = 0
    else:
        booked = await _booked(session, sid)
    if booked and (row.starts_at, row.ends_at) != (starts, ends):
        # The members who booked it booked these times (and may cancel until it starts).
        moved = "starts_at" if row.starts_at != starts else "ends_at"
        raise InvalidState(
            f"{booked} places of slot {slot.ref} are booked: its times cannot change (give a "
            "new slot, or cancel the bookings first).",
            field=(*field_, moved),
        )
    if slot.capacity is not None and slot.capacity < booked:
        raise InvalidInput(
            f"{booked} places of slot {slot.ref} are booked: its capacity cannot be less "
            "(cancel redemptions first).",
            field=(*field_, "capacity"),
        )
    row.starts_at, row.ends_at = starts, ends
    row.remaining = None if slot.capacity is None else slot.capacity - booked


async def _booked(session: AsyncSession, slot_id: str) -> int:
    """Places of the slot that redemptions hold: taken with the redemption, given back when
    it fails or is cancelled (hub.mall.inventory)."""
    held = select(func.coalesce(func.sum(Redemption.quantity), 0)).where(
        Redemption.slot_id == slot_id,
        Redemption.status.in_([RedemptionStatus.PENDING, RedemptionStatus.CONFIRMED]),
    )
    return int(await session.scalar(held) or 0)


async def _a_slot(session: AsyncSession, rid: str, *, ahead: bool) -> bool:
    """Whether the reward has a slot; `ahead`: one not yet started (full or not)."""
    query = select(Slot.id).where(Slot.reward_id == rid)
    if ahead:
        query = query.where(Slot.starts_at > utcnow())
    return await session.scalar(query.limit(1)) is not None


async def _priority(
    session: AsyncSession, program_code: str, data: NewReward
) -> tuple[dt.datetime | None, str | None, str | None]:
    """priorityUntil and who may redeem before it: tiers of the merchant's own program and
    credit levels (stored as JSON lists)."""
    tiers, levels = sorted(set(data.priority_tiers)), {c.value for c in data.priority_credit_levels}
    if data.priority_until is None:
        if tiers or levels:
            raise InvalidInput(
                "priorityTiers and priorityCreditLevels need priorityUntil: until when they "
                "have the reward to themselves.",
                field=("priority_until",),
            )
        return None, None, None
    until = validate.moment(data.priority_until, ("priority_until",))
    if tiers:
        known = set(
            await session.scalars(select(Tier.code).where(Tier.program_code == program_code))
        )
        unknown = [t for t in tiers if t not in known]
        if unknown:
            raise InvalidInput(
                f"{program_code} has no tier {', '.join(unknown)}.", field=("priority_tiers",)
            )
    return until, encode(tiers), encode(levels)


def _settlement_price(
    principal: Principal, data: NewReward, program: Program, reward: Reward | None
) -> tuple[Decimal | None, bool]:
    """The price to store and whether it is contracted. An ADMIN contracts any price (or,
    giving none, ends the contract); a merchant names at most what its points are worth,
    and never changes a contracted price."""
    field = ("settlement_price",)
    given = data.settlement_price
    if given is not None:  # money first, whoever gives it: non-negative, 2 decimals
        settlement_prices.checked(given, field, price=data.price, point_value=None)
    if principal.role == Role.ADMIN:
        return given, given is not None
    if reward is not None and reward.settlement_contracted:
        if given is not None and given != reward.settlement_price:
            raise Forbidden(
                f"The settlement price of {reward.title} is {reward.settlement_price} by "
                "contract; only ADMIN changes it.",
                field=field,
            )
        return reward.settlement_price, True
    if given is None:
        return None, False
    settlement_prices.checked(given, field, price=data.price, point_value=program.point_value)
    return given, False


async def store_partner_rewards(
    session: AsyncSession, merchant_id: str, offers: Sequence[RewardOffer]
) -> None:
    """Replace the cached catalog of a partner with what it listed just now. An offer
    whose prices the hub refuses is kept only as an inactive reward saying why."""
    now = utcnow()
    program = await primary_program(session, merchant_id)
    assert program is not None
    known = {
        r.id: r
        for r in await session.scalars(select(Reward).where(Reward.merchant_id == merchant_id))
    }
    listed = set()
    for offer in offers:
        rid = reward_id(merchant_id, offer.ref)
        listed.add(rid)
        reward = known.get(rid)
        if reward is None:
            reward = Reward(
                id=rid, merchant_id=merchant_id, ref=offer.ref, source="PARTNER", created_at=now
            )
            session.add(reward)
        refusal = settlement_prices.offer_refusal(
            merchant_id, offer.title[:200], offer.price, offer.settlement_price, program.point_value
        )
        reward.kind = offer.kind
        reward.title = offer.title[:200]
        reward.description = offer.description
        reward.price = max(offer.price, 0)
        reward.settlement_price = None if refusal else offer.settlement_price
        reward.settlement_contracted = False
        reward.offer_refusal = refusal
        reward.stock = offer.stock
        reward.active = offer.active and refusal is None
        reward.has_slots = offer.kind in SLOTTED
        reward.refreshed_at = now
    for rid, reward in known.items():
        if rid not in listed and reward.active:
            reward.active = False
    await session.flush()


async def store_partner_slots(
    session: AsyncSession, answers: Sequence[tuple[str, Sequence[SlotOffer]]]
) -> None:
    """Partner rewards' slots as the partners list them now, each answer a reward's id and
    its slots (a slot a partner no longer lists is left as it was): one statement for them
    all, nothing read first."""
    now = utcnow()
    rows = {
        f"{reward_id}@{offer.ref}": {
            "id": f"{reward_id}@{offer.ref}",
            "reward_id": reward_id,
            "ref": offer.ref,
            "starts_at": offer.starts_at,
            "ends_at": offer.ends_at,
            "remaining": offer.remaining,
            "refreshed_at": now,
        }
        for reward_id, offers in answers
        for offer in offers
    }  # a slot answered twice (for a day and for the coming days) once, as answered last
    if rows:
        updated = ("starts_at", "ends_at", "remaining", "refreshed_at")
        ordered = [rows[sid] for sid in sorted(rows)]  # in id order: replicas lock alike
        await session.execute(insert_or_update(session, Slot, updated), ordered)


SEARCH_LENGTH = 200  # a title's


def search_term(text: str | None) -> str | None:
    """What a search looks for, folded as rewards' texts are (hub.folding); None for no
    search. A term longer than a title, or with a control character, is INVALID_INPUT:
    nothing that long can match, and SQLite refuses a LIKE pattern of 50,000 characters."""
    if text is None:
        return None
    if len(text) > SEARCH_LENGTH:  # as sent: invisible characters count too
        raise InvalidInput(f"search is longer than {SEARCH_LENGTH} characters.", field=("search",))
    term = validate.text(text, ("search",), max_length=SEARCH_LENGTH, required=False)
    return fold(term.strip()) or None


@dataclass
class Filter:
    merchant: str | None = None
    category: str | None = None
    kind: str | None = None
    payable_with: str | None = None
    max_price: int | None = None
    search: str | None = None  # folded (search_term)
    available_on: dt.date | None = None
    exclude_merchants: set[str] = field(default_factory=set)


def _day_bounds(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tz)
    return start, start + dt.timedelta(days=1)


async def page(
    conn: Reads,
    book: PriceBook,
    filters: Filter,
    first: int,
    after: str | None,
    tz: dt.tzinfo,
) -> tuple[list[ListedReward], bool]:
    """Active rewards in id order after the cursor, filtered; and whether more follow.

    Read on a Core connection outside any transaction (Database.single_read): one
    statement in the usual case, and ListedReward rows rather than ORM instances."""
    values: dict[str, Any] = {"batch": max(first * 2, 50)}
    if filters.merchant:
        values["merchant"] = filters.merchant
    if filters.exclude_merchants:
        values["exclude"] = sorted(filters.exclude_merchants)
    if filters.category:
        values["category"] = filters.category
    if filters.kind:
        values["kind"] = filters.kind
    if filters.search:
        values["term"] = f"%{_literal(filters.search)}%"
    if filters.available_on:
        values["day_start"], values["day_end"] = _day_bounds(filters.available_on, tz)
        values["now"] = utcnow()
    given = frozenset(values)
    found: list[ListedReward] = []
    cursor = after
    while len(found) <= first:
        statement = _listing(given, after=cursor is not None)
        if cursor is not None:
            values["after"] = cursor
        rows = [ListedReward.of(row) for row in await conn.execute(statement, values)]
        for reward in rows:
            if _passes(book, reward, filters):
                found.append(reward)
                if len(found) > first:
                    break
        if len(rows) < values["batch"]:
            break
        cursor = rows[-1].id
    return found[:first], len(found) > first


def _literal(text: str) -> str:
    """`text` as a LIKE pattern that matches it literally: its %, _ and \\ escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@lru_cache(maxsize=256)
def _listing(given: frozenset[str], *, after: bool) -> Select[Any]:
    """The page's statement for the filters `given` (by their parameters' names) and with
    or without a cursor, the values bound as it runs: built once per shape (a statement
    built per request cost a warm page more than the database did)."""
    query = (
        select(*LISTED_COLUMNS)
        .join(Merchant, Merchant.id == Reward.merchant_id)
        .where(Reward.active.is_(True), Merchant.status == MerchantStatus.ACTIVE)
        .order_by(Reward.id)
        .limit(bindparam("batch"))
    )
    if after:
        query = query.where(Reward.id > bindparam("after"))
    if "merchant" in given:
        query = query.where(Reward.merchant_id == bindparam("merchant"))
    if "exclude" in given:
        query = query.where(Reward.merchant_id.not_in(bindparam("exclude", expanding=True)))
    if "category" in given:
        query = query.where(Merchant.category == bindparam("category"))
    if "kind" in given:
        query = query.where(Reward.kind == bindparam("kind"))
    if "term" in given:
        query = query.where(Reward.search_text.like(bindparam("term"), escape="\\"))
    if "day_start" in given:
        open_slot = (
            select(Slot.id)
            .where(
                Slot.reward_id == Reward.id,
                Slot.starts_at >= bindparam("day_start"),
                Slot.starts_at < bindparam("day_end"),
                *_BOOKABLE_SLOT,
            )
            .exists()
        )
        query = query.where(or_(Reward.has_slots.is_(False), open_slot))
        query = query.where(or_(Reward.stock.is_(None), Reward.stock > 0))
    return query


def _passes(book: PriceBook, reward: ListedReward, filters: Filter) -> bool:
    """The filters that need prices: payableWith and maxPrice."""
    if reward.merchant_id not in book.by_merchant:
        return False
    if filters.max_price is None and not filters.payable_with:
        return True
    if filters.payable_with:
        price = book.price_in(reward, filters.payable_with)
        if price is None:
            return False
    else:
        price = book.price(reward)
    return filters.max_price is None or price <= filters.max_price


_LISTED_BY_ID = select(*LISTED_COLUMNS).where(Reward.id.in_(bindparam("ids", expanding=True)))


async def listed_by_id(reads: Reads, ids: Sequence[str]) -> dict[str, ListedReward]:
    """Rewards by id as the catalog page reads them: one statement outside any transaction,
    no ORM instances (a redemption's answer reads its reward again, after the commit)."""
    rows = await reads.execute(_LISTED_BY_ID, {"ids": list(ids)})
    return {reward.id: reward for reward in map(ListedReward.of, rows)}


_BOOKABLE = (
    select(Slot.reward_id)
    .where(Slot.reward_id.in_(bindparam("ids", expanding=True)), *_BOOKABLE_SLOT)
    .distinct()
)


async def bookable(reads: Reads, ids: Sequence[str]) -> dict[str, bool]:
    """Which of these rewards have a place in a slot not yet started (those without are
    left out): one statement outside any transaction."""
    rows = await reads.execute(_BOOKABLE, {"ids": list(ids), "now": utcnow()})
    return {reward_id_: True for (reward_id_,) in rows}


async def slots_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, Slot]:
    return await row_by(session, Slot, Slot.id, ids)


async def slots_of(
    session: AsyncSession, reward_id_: str, day: dt.date | None, tz: dt.tzinfo
) -> list[Slot]:
    """The reward's slots not yet started (those a member can book), on `day` or all."""
    query = (
        select(Slot)
        .where(Slot.reward_id == reward_id_, Slot.starts_at > utcnow())
        .order_by(Slot.starts_at, Slot.id)
    )
    if day is not None:
        start, end = _day_bounds(day, tz)
        query = query.where(and_(Slot.starts_at >= start, Slot.starts_at < end))
    return list(await session.scalars(query))
