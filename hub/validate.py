"""Small checks shared by the services; each raises InvalidInput naming the field."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, overload

from hub.errors import FieldPath, InvalidInput, spelled

# GraphQL's Int is 32 bits: no balance may pass it, or it can no longer be read.
MAX_BALANCE = 2**31 - 1
# The most points an input may name: what a balance can hold (a bound no Int passes).
MAX_POINTS = MAX_BALANCE
# The most one movement (an accrual, a conversion's credit) may bring into an account.
MAX_POINTS_PER_MOVEMENT = 100_000_000
# The longest order reference an accrual, a voucher or an import line may carry.
MAX_ORDER_REF = 120


def name_of(field: FieldPath) -> str:
    """How a message names a field: its own name, or for an item of a list (a path that
    ends in an index) the list's name and the index, "benefits[1]"; a bare "1" says
    nothing."""
    last = spelled(field[-1])
    if last.isdigit() and len(field) > 1:
        return f"{spelled(field[-2])}[{last}]"
    return last


def decimal_in_range(
    value: Decimal,
    field: FieldPath,
    *,
    low: Decimal,
    high: Decimal,
    places: int,
    low_inclusive: bool = True,
) -> Decimal:
    """A finite decimal within [low, high] (or (low, high]) with at most `places` decimals."""
    if not value.is_finite():
        raise InvalidInput(f"{name_of(field)} must be a number.", field=field)
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bound = "at least" if low_inclusive else "more than"
        raise InvalidInput(
            f"{name_of(field)} must be {bound} {low} and at most {high}.", field=field
        )
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidInput(f"{name_of(field)} has more than {places} decimal places.", field=field)
    return value


def money(value: Decimal, field: FieldPath, *, high: Decimal, positive: bool = False) -> Decimal:
    """An amount of money: at most 2 decimal places, from 0 (above 0 when `positive`) to
    `high`."""
    return decimal_in_range(
        value, field, low=Decimal(0), high=high, places=2, low_inclusive=not positive
    )


def percent(value: Decimal, field: FieldPath, *, high: Decimal) -> Decimal:
    """A percentage from 0 to `high`, to 4 decimal places."""
    return decimal_in_range(value, field, low=Decimal(0), high=high, places=4)


# How money and rates are written wherever they arrive (the GraphQL Decimal scalar, an
# import file): ASCII digits, an optional "-" and ".". Python's Decimal() also reads "1e3",
# "1_000", "١٢", " 12 ", "NaN" and "Infinity"; none of those is an amount a till sends.
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
NOT_A_NUMBER = Decimal("NaN")


def plain_decimal(text: str) -> Decimal:
    """The Decimal a plain decimal string writes; NaN (which decimal_in_range refuses,
    naming the field) for anything else."""
    return Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else NOT_A_NUMBER


class RepeatedKey(ValueError):
    """A JSON object names a key twice: which value counts is not said by JSON (RFC 8259),
    and decoders differ (Python's keeps the last, others the first)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the JSON names {json.dumps(key)} more than once in one object")
        self.key = key


class NumberTooLong(ValueError):
    """A JSON number with more digits than anything the hub reads (an Int has 10)."""

    def __init__(self, digits: int) -> None:
        super().__init__(
            f"the JSON has a number of {digits} digits, longer than any the hub reads "
            "(an Int has at most 10; a Decimal travels as a string)"
        )


MAX_JSON_DIGITS = 100  # Python's decoder refuses past 4,300, with a message about itself


def json_int(text: str) -> int:
    """json.loads' parse_int for what comes from outside: an int, or NumberTooLong."""
    digits = len(text) - text.startswith("-")
    if digits > MAX_JSON_DIGITS:
        raise NumberTooLong(digits)
    return int(text)


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook for what comes from outside: an object, or RepeatedKey."""
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise RepeatedKey(key)
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs means one repeats")


def points_in_range(value: int, field: FieldPath, *, low: int = 1, high: int = MAX_POINTS) -> int:
    if value < low or value > high:
        raise InvalidInput(f"{name_of(field)} must be between {low} and {high:,}.", field=field)
    return value


# Characters that show nothing: format (zero-width space, joiners, BOM, bidi overrides),
# control, and the space and separator categories.
INVISIBLE = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})
_KEPT_CONTROLS = frozenset("\t\n\r")


_BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{2,30}")


def phone(value: str, field: FieldPath) -> str:
    """A phone number as people write one: digits, spaces, "-", "(", ")", a leading "+"."""
    value = text(value, field, max_length=32)
    if not _PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 3:
        raise InvalidInput(
            f'{name_of(field)} must be a phone number: digits with spaces, "-" or "()", and a '
            'leading "+" for an international one, e.g. "+86 138 0013 8000".',
            field=field,
        )
    return value


def invisible(char: str) -> bool:
    return unicodedata.category(char) in INVISIBLE


# Unicode's Default_Ignorable_Code_Point outside the format category (the combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation
# selectors), and the braille blank: each shows nothing where it stands.
_IGNORABLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)


def unseen_in_reference(char: str) -> bool:
    """A character a reference may not hold inside: one that shows nothing (format,
    control, ignorable), a line or paragraph break, or a space other than U+0020 (a
    no-break or ideographic space reads as one)."""
    category = unicodedata.category(char)
    if category in ("Cf", "Cc", "Zl", "Zp") or (category == "Zs" and char != " "):
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE)


def text(
    value: str,
    field: FieldPath,
    *,
    max_length: int,
    required: bool = True,
    one_line: bool = False,
    reference: bool = False,
) -> str:
    """Text a person reads (a reference, key, label, name, code, reason), without the
    invisible characters around it; it must show at least one character.

    "A-1" and "A-1" wrapped in zero-width spaces are one value; a value of only
    zero-width or space characters is empty; a control character inside (NUL, ESC) is
    refused, tabs and line breaks aside (and those too in `one_line` text: a title). A
    `reference` (an order's, a membership number) has nothing inside that shows nothing or
    looks like a space (unseen_in_reference): one would make a second value that reads as
    the first.
    """
    start, end = 0, len(value)
    while start < end and invisible(value[start]):
        start += 1
    while end > start and invisible(value[end - 1]):
        end -= 1
    value = value[start:end]
    if required and not value:
        raise InvalidInput(
            f"{name_of(field)} must have a visible character (it is empty or only spaces and "
            "invisible characters).",
            field=field,
        )
    if one_line and any(c in _KEPT_CONTROLS for c in value):
        raise InvalidInput(
            f"{name_of(field)} must be one line, without line breaks or tabs.", field=field
        )
    if any(unicodedata.category(c) == "Cc" and c not in _KEPT_CONTROLS for c in value):
        raise InvalidInput(f"{name_of(field)} contains a control character.", field=field)
    if any(c in _BIDI_CONTROLS for c in value):  # "x\u202eevil" reads as "xlive" on screen
        raise InvalidInput(
            f"{name_of(field)} contains a bidirectional control character (U+202A-U+202E, "
            "U+2066-U+2069), which makes text read otherwise than it is.",
            field=field,
        )
    if reference and any(unseen_in_reference(c) for c in value):
        raise InvalidInput(  # "ord-Z1" with a zero-width space inside shows as "ord-Z1"
            f"{name_of(field)} contains a character that shows nothing or looks like a "
            "space (zero-width, a joiner, a variation selector, a filler, a tab or line "
            "break, a space other than U+0020): a reference must read as it is.",
            field=field,
        )
    if len(value) > max_length:
        raise InvalidInput(f"{name_of(field)} is longer than {max_length} characters.", field=field)
    return value


EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def moment(value: dt.datetime, field: FieldPath) -> dt.datetime:
    """An aware datetime from 2000 to the end of 2199 (anything else is a typo or an attack)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name_of(field)} needs a UTC offset, e.g. +08:00.", field=field)
    try:
        in_utc = value.astimezone(dt.UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc < LATEST:
        raise InvalidInput(f"{name_of(field)} must be from 2000-01-01 to 2199-12-31.", field=field)
    return in_utc


@overload
def period(
    start: dt.datetime, end: dt.datetime, fields: tuple[FieldPath, FieldPath]
) -> tuple[dt.datetime, dt.datetime]: ...
@overload
def period(
    start: dt.datetime, end: dt.datetime | None, fields: tuple[FieldPath, FieldPath]
) -> tuple[dt.datetime, dt.datetime | None]: ...
def period(
    start: dt.datetime, end: dt.datetime | None, fields: tuple[FieldPath, FieldPath]
) -> tuple[dt.datetime, dt.datetime | None]:
    """A start and an end (None: open-ended), each a `moment`, the end after the start."""
    first = moment(start, fields[0])
    last = moment(end, fields[1]) if end is not None else None
    if last is not None and last <= first:
        raise InvalidInput(
            f"{name_of(fields[1])} must be after {name_of(fields[0])}.", field=fields[1]
        )
    return first, last


FUTURE_SLACK = dt.timedelta(minutes=5)  # a till's clock a little ahead of ours


@dataclass(frozen=True, slots=True)
class PurchaseWindow:
    """When a purchase may have happened to earn points: at most `backdate_days` before
    `now` (HUB_ACCRUAL_BACKDATE_DAYS; older purchases are settled outside the hub), and not
    in the future. accruePoints and every import line check the same window."""

    now: dt.datetime
    backdate_days: int

    @property
    def earliest(self) -> dt.datetime:
        return self.now - dt.timedelta(days=self.backdate_days)

    @property
    def latest(self) -> dt.datetime:
        return self.now + FUTURE_SLACK

    def at(self, now: dt.datetime) -> PurchaseWindow:
        return replace(self, now=now)

    def check(self, value: dt.datetime, field: FieldPath) -> dt.datetime:
        """The moment in UTC, or InvalidInput naming the field."""
        occurred = moment(value, field)
        if occurred < self.earliest:
            raise InvalidInput(
                f"{name_of(field)} may be at most {self.backdate_days} days back "
                "(HUB_ACCRUAL_BACKDATE_DAYS); older purchases are settled outside the hub.",
                field=field,
            )
        if occurred > self.latest:
            raise InvalidInput(f"{name_of(field)} is in the future.", field=field)
        return occurred


def day(value: dt.date, field: FieldPath) -> dt.date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise InvalidInput(f"{name_of(field)} must be from 2000-01-01 to 2199-12-31.", field=field)
    return value
