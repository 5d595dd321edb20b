"""The Decimal and Date scalars, strict: money and rates arrive as plain ASCII decimal
strings, dates as ISO 8601 calendar dates.

Python's Decimal() also reads "١٢٣" (Arabic-Indic digits), "1_000", " 12 ", "1e3",
"NaN" and "Infinity"; strawberry's default scalar passed every one of them through,
and a JSON float on the way. The contract says "a decimal number as a string".
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from hub.validate import plain_decimal


def as_sent(value: object) -> str:
    """A value of the request's JSON as JSON (true, null, 1.5, "x"), not as Python prints
    it (True, None): what a client's message names is what it sent. Cut at 80 characters."""
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def parse_decimal(value: object) -> decimal.Decimal:
    """A Decimal from "-12.50" or a JSON integer. Any other string reads as NaN, which every
    domain check refuses as a userError naming the field ("amount must be a number.");
    a JSON float or boolean is the wrong type altogether, a coercion error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return decimal.Decimal(value)
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f"Value cannot represent a Decimal: {as_sent(value)}. Send it as a string of ASCII "
            'digits with an optional "-" and ".", such as "199.00".'
        )
    return plain_decimal(value)


StrictDecimal = ScalarDefinition(
    name="Decimal",
    description="Decimal (fixed-point)",
    specified_by_url=None,
    serialize=str,
    parse_value=parse_decimal,
    parse_literal=None,
    origin=decimal.Decimal,
)


CALENDAR_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: object) -> dt.date:
    """A date from "2026-12-01" only. Python's fromisoformat also reads week dates
    ("2026-W49-1"), ordinal dates and the basic form ("20261201"): a client that sent one
    of those meant something the contract does not say."""
    if isinstance(value, str) and CALENDAR_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise StrawberryInputCoercionError(
        f"Value cannot represent a Date: {as_sent(value)}. Send a calendar date as YYYY-MM-DD, "
        'such as "2026-12-01".'
    )


StrictDate = ScalarDefinition(
    name="Date",
    description="Date (isoformat)",
    specified_by_url=None,
    serialize=dt.date.isoformat,
    parse_value=parse_date,
    parse_literal=None,
    origin=dt.date,
)
