"""Exchange rates per ordered pair of programs; a change adds a version, history stays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import green, validate
from hub.auth import Principal
from hub.db import KEPT, row_by, utcnow
from hub.errors import InvalidInput
from hub.ids import new_id
from hub.merchants import get_program
from hub.models import ExchangeRate

if TYPE_CHECKING:
    from hub.caches import Caches


@dataclass(frozen=True)
class NewRate:
    from_code: str
    to_code: str
    rate: Decimal
    min_points: int = 1
    step: int = 1
    bonus_percent: Decimal = Decimal(0)
    daily_limit_per_member: int | None = None
    effective_from: dt.datetime | None = None
    effective_to: dt.datetime | None = None


async def set_rate(
    session: AsyncSession, principal: Principal, data: NewRate, *, held: dt.timedelta
) -> ExchangeRate:
    """Add a version of a pair's rate (ADMIN). `held`: how long after a version stops it may
    still price a conversion (Settings.rates_held_for: quotes, processes yet to see it)."""
    source = await get_program(session, data.from_code, ("from",))
    target = await get_program(session, data.to_code, ("to",))
    if source.code == target.code:
        raise InvalidInput("from and to must be different programs.", field=("to",))
    if green.is_green(target):
        # Rates out of a GREEN program price green rewards; none leads into one.
        raise InvalidInput(
            f"{target.code} is a GREEN program: its points are earned on green purchases only, "
            "so no rate leads into it.",
            field=("to",),
        )
    validate.decimal_in_range(
        data.rate,
        ("rate",),
        low=Decimal(0),
        high=Decimal(1_000_000),
        places=6,
        low_inclusive=False,
    )
    validate.points_in_range(data.step, ("step",), low=1, high=1_000_000)
    validate.points_in_range(data.min_points, ("min_points",), low=1, high=validate.MAX_POINTS)
    if data.min_points < data.step:
        raise InvalidInput(
            f"minPoints ({data.min_points}) must be at least step ({data.step}).",
            field=("min_points",),
        )
    validate.percent(data.bonus_percent, ("bonus_percent",), high=Decimal(1000))
    if data.daily_limit_per_member is not None:
        validate.points_in_range(
            data.daily_limit_per_member, ("daily_limit_per_member",), low=data.min_points
        )
    now = utcnow()
    start, end = validate.period(
        data.effective_from or now, data.effective_to, (("effective_from",), ("effective_to",))
    )
    if start < now - _CLOCK_SLACK:
        # Conversions were priced at the versions then in effect; a version dated back would
        # tell finance staff of a rate nobody converted at.
        raise InvalidInput(
            "effectiveFrom is in the past: a rate starts now or later (leave it out for now).",
            field=("effective_from",),
        )
    start = max(start, now)
    if end is not None and end <= start:
        raise InvalidInput("effectiveTo must be in the future.", field=("effective_to",))
    rate = ExchangeRate(
        id=new_id("rate"),
        from_code=source.code,
        to_code=target.code,
        rate=data.rate,
        min_points=data.min_points,
        step=data.step,
        bonus_percent=data.bonus_percent,
        daily_limit_per_member=data.daily_limit_per_member,
        effective_from=start,
        effective_to=end,
        created_by=principal.key_id,
        created_at=now,
    )
    await _refuse_points_from_nothing(session, rate, held, now)
    session.add(rate)
    await session.flush()
    from hub.caches import RATES, bump  # every process reads the rate versions again

    await bump(session, RATES)
    return rate


_CLOCK_SLACK = dt.timedelta(minutes=5)  # a caller's clock a little behind ours


def _gain(rate: Decimal, bonus_percent: Decimal) -> Decimal:
    return rate * (Decimal(100) + bonus_percent) / Decimal(100)


async def _refuse_points_from_nothing(
    session: AsyncSession, new: ExchangeRate, held: dt.timedelta, now: dt.datetime
) -> None:
    """A member converting around a cycle of rates must never end with more than they began.

    With SKYMILES -> WESTLAKE at 0.99 (bonus included), WESTLAKE -> HUB at 0.95 and
    HUB -> SKYMILES at 1.2, each lap returned 112.9% of the miles, and with them money
    owed between merchants. The best way back from `to` to `from` is found at every moment
    the new version may price a conversion: when it starts, and whenever another pair's
    version starts while it holds (one dated ahead included). A version counts until `held`
    after it stops: a quote priced at it, or a process yet to see the next, still converts
    at it (a quote at 2, the rate lowered to 1, the way back raised to 0.625: 1.25 a lap).
    """
    from hub.caches import Rates

    stored = list(await session.scalars(select(ExchangeRate)))
    stretches = list(Rates.of([*stored, new]).stretches())
    pair = (new.from_code, new.to_code)
    others = [s for s in stretches if (s[0].from_code, s[0].to_code) != pair]
    gain = _gain(new.rate, new.bonus_percent)
    worst: tuple[Decimal, list[str], dt.datetime, dt.datetime | None] | None = None
    for rate, start, end in stretches:
        until = None if end is None else end + held
        if rate is not new or (until is not None and until <= now):
            continue
        first = max(start, now)
        moments = {first} | {s for _, s, _ in others if first < s and (until is None or s < until)}
        for at in sorted(moments):
            usable = [r for r, s, e in others if s <= at and (e is None or e + held > at)]
            back, path = _best_path(usable, new.to_code, new.from_code)
            if back is None or gain * back <= 1 or (worst and back <= worst[0]):
                continue
            current, _ = _best_path(
                [r for r, s, e in others if s <= at and (e is None or e > at)],
                new.to_code,
                new.from_code,
            )
            # Still priced at a version that has stopped: until when, at the latest.
            lasting = None
            if current is None or gain * current <= 1:
                lasting = max(
                    e + held for _, _, e in others if e is not None and e <= at < e + held
                )
            worst = (back, path, at, lasting)
    if worst is None:
        return
    back, path, at, lasting = worst
    cycle = " -> ".join([new.from_code, *path])
    highest = (Decimal(1) / back / _gain(Decimal(1), new.bonus_percent)).quantize(
        Decimal("0.000001"), rounding="ROUND_FLOOR"
    )
    when = f" from {at:%Y-%m-%d %H:%M:%S} UTC" if at > now else ""
    held_note = ""
    if lasting is not None:
        held_note = (
            " (at a rate on the way back that has changed: quotes and other processes may "
            f"price at it until {lasting:%Y-%m-%d %H:%M:%S} UTC)"
        )
    also = (
        f", or an effectiveFrom at or after {lasting:%Y-%m-%d %H:%M:%S} UTC"
        if lasting is not None
        else ", or lower a rate on the way back first"
    )
    raise InvalidInput(
        f"This rate would create points from nothing: {cycle} returns "
        f"{gain * back:.4f} points per point{when}{held_note}. Give a rate of at most "
        f"{highest} (bonus included){also}.",
        field=("rate",),
    )


def _best_path(
    rates: Sequence[ExchangeRate], start: str, goal: str
) -> tuple[Decimal | None, list[str]]:
    """The largest product of gains over a simple path from `start` to `goal` (Bellman-Ford
    on products: every existing cycle gains at most 1, which this check keeps true)."""
    best: dict[str, tuple[Decimal, list[str]]] = {start: (Decimal(1), [start])}
    for _ in range(len({r.from_code for r in rates} | {r.to_code for r in rates})):
        changed = False
        for r in rates:
            if r.from_code not in best or r.to_code == start:
                continue
            value = best[r.from_code][0] * _gain(r.rate, r.bonus_percent)
            path = best[r.from_code][1]
            if r.to_code in path:
                continue
            if r.to_code not in best or value > best[r.to_code][0]:
                best[r.to_code] = (value, [*path, r.to_code])
                changed = True
        if not changed:
            break
    if goal not in best or goal == start:
        return None, []
    return best[goal]


def _in_effect(at: dt.datetime | ColumnElement[dt.datetime]) -> object:
    return and_(
        ExchangeRate.effective_from <= at,
        or_(ExchangeRate.effective_to.is_(None), ExchangeRate.effective_to > at),
    )


_RATE_FOR = (
    select(ExchangeRate)
    .where(
        ExchangeRate.from_code == bindparam("from_code"),
        ExchangeRate.to_code == bindparam("to_code"),
        _in_effect(bindparam("at", type_=ExchangeRate.effective_from.type)),  # type: ignore[arg-type]
    )
    .order_by(ExchangeRate.effective_from.desc(), ExchangeRate.created_at.desc())
    .limit(1)
)


async def rate_for(
    session: AsyncSession, from_code: str, to_code: str, at: dt.datetime
) -> ExchangeRate | None:
    """The version in effect: the latest to start, among those whose period covers `at`."""
    return await session.scalar(_RATE_FOR, {"from_code": from_code, "to_code": to_code, "at": at})


async def rate_in_effect(
    session: AsyncSession, from_code: str, to_code: str, at: dt.datetime
) -> ExchangeRate | None:
    """The version in effect at `at`, as rate_for reads it: from the rate versions the
    process keeps when the session has them (hub.caches; a version set through another
    process is seen within HUB_CACHE_CHECK_SECONDS, one set through this one from its next
    request), else read."""
    kept: Caches | None = session.info.get(KEPT)
    if kept is not None:
        return (await kept.rates()).at(from_code, to_code, at)
    return await rate_for(session, from_code, to_code, at)


async def rates_in_effect(
    session: AsyncSession, at: dt.datetime, from_code: str | None, to_code: str | None
) -> list[ExchangeRate]:
    """One version per pair: the one in effect at `at`."""
    query = select(ExchangeRate).where(_in_effect(at))  # type: ignore[arg-type]
    if from_code:
        query = query.where(ExchangeRate.from_code == from_code)
    if to_code:
        query = query.where(ExchangeRate.to_code == to_code)
    query = query.order_by(
        ExchangeRate.from_code,
        ExchangeRate.to_code,
        ExchangeRate.effective_from.desc(),
        ExchangeRate.created_at.desc(),
    )
    chosen: dict[tuple[str, str], ExchangeRate] = {}
    for rate in await session.scalars(query):
        chosen.setdefault((rate.from_code, rate.to_code), rate)
    return list(chosen.values())


async def rates_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, ExchangeRate]:
    return await row_by(session, ExchangeRate, ExchangeRate.id, ids)
