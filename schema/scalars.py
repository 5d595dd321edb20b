"""The Decimal scalar, strict: money and rates arrive as plain ASCII decimal strings.

Python's Decimal() also reads "١٢٣" (Arabic-Indic digits), "1_000", " 12 ", "1e3",
"NaN" and "Infinity"; strawberry's default scalar passed every one of them through,
and a JSON float on the way. The contract says "a decimal number as a string".
"""

from __future__ import annotations

import decimal
import re

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

_PLAIN = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


def parse_decimal(value: object) -> decimal.Decimal:
    """A Decimal from "-12.50" or a JSON integer; anything else is a coercion error."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _PLAIN.fullmatch(value):
        raise StrawberryInputCoercionError(
            f"Value cannot represent a Decimal: {value!r}. Send a string of ASCII digits "
            'with an optional "-" and "." such as "199.00".'
        )
    return decimal.Decimal(value)


StrictDecimal = ScalarDefinition(
    name="Decimal",
    description="Decimal (fixed-point)",
    specified_by_url=None,
    serialize=str,
    parse_value=parse_decimal,
    parse_literal=None,
    origin=decimal.Decimal,
)
