"""The rates in effect as the process keeps them: `Rates.effective(at)`, made once per
stretch of time and shared by every request's prices, is always `in_effect(at)`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from hub.caches import Rates
from hub.models import ExchangeRate

START = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
PAIRS = [("A", "B"), ("B", "A"), ("A", "C")]
versions = st.lists(
    st.tuples(
        st.sampled_from(PAIRS),
        st.integers(0, 20),  # starts, hours after START
        st.one_of(st.none(), st.integers(1, 20)),  # lasts, hours; None: open
    ),
    max_size=12,
)
moments = st.lists(st.integers(-2, 44).map(lambda half_hours: half_hours * 30), min_size=1)


def _version(index: int, pair: tuple[str, str], starts: int, lasts: int | None) -> ExchangeRate:
    begins = START + dt.timedelta(hours=starts)
    return ExchangeRate(
        id=f"rate{index}",
        from_code=pair[0],
        to_code=pair[1],
        rate=Decimal(index + 1),
        effective_from=begins,
        effective_to=None if lasts is None else begins + dt.timedelta(hours=lasts),
        created_at=START + dt.timedelta(seconds=index),
    )


@given(given_versions=versions, asked=moments)
def test_effective_is_in_effect_at_every_moment(
    given_versions: list[tuple[tuple[str, str], int, int | None]], asked: list[int]
) -> None:
    rates = Rates.of([_version(i, *v) for i, v in enumerate(given_versions)])
    # Moments on the hour fall on a version's start or end: a stretch's first moment.
    for minutes in [*asked, *reversed(asked)]:
        at = START + dt.timedelta(minutes=minutes)
        expected = {(r.from_code, r.to_code): r for r in rates.in_effect(at)}
        assert dict(rates.effective(at)) == expected, at


def test_one_mapping_per_stretch_read_only() -> None:
    rates = Rates.of([_version(0, ("A", "B"), 0, 2), _version(1, ("A", "B"), 1, None)])
    early, later = START + dt.timedelta(minutes=10), START + dt.timedelta(minutes=50)
    assert rates.effective(early) is rates.effective(later)
    assert rates.effective(START + dt.timedelta(hours=1))[("A", "B")].id == "rate1"
    assert rates.effective(START - dt.timedelta(hours=1)) == {}
    try:
        rates.effective(early)[("B", "A")] = rates.effective(early)[("A", "B")]  # type: ignore[index]
    except TypeError:
        pass
    else:
        raise AssertionError("a shared mapping must not be writable")
