"""Lines of an import: read from CSV or NDJSON as they stream in, each checked for form.

A line that cannot be an accrual (no member, no order, an amount that is not money, a
moment in the future or further back than accruePoints allows) is rejected here with the
code and sentence accruePoints would give; what needs the database (the member, a
repeated order, promotions) is checked when the line is applied. Lines are numbered as
an editor shows them: a CSV's header is line 1.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from hub import validate
from hub.enums import ErrorCode
from hub.errors import DomainError, InvalidInput

MAX_AMOUNT = Decimal(100_000_000)  # as accruePoints
MAX_CENTS = 100 * 100_000_000
MAX_LINE_CHARS = 10_000
_ABSENT = 1 << 30  # the position of a column the header does not name
MEMBER, REF, ORDER, AMOUNT, OCCURRED = "memberId", "externalRef", "orderRef", "amount", "occurredAt"
COLUMNS = (MEMBER, REF, ORDER, AMOUNT, OCCURRED)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


class Staged(NamedTuple):
    """A line with the form of an accrual, waiting to be applied. The amount is in cents
    and the moment in microseconds since the epoch (UTC): exact, and stored as they are."""

    line: int
    member_id: str | None
    external_ref: str | None
    order_ref: str
    cents: int
    micros: int


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    code: ErrorCode
    message: str


Checked = Staged | Rejected


def check(line: int, raw: Mapping[str, object], window: validate.PurchaseWindow) -> Checked:
    """One line's values (text from a file, or typed from GraphQL), checked as
    accruePoints checks its input; never raises."""
    return check_values(
        line,
        raw.get(MEMBER),
        raw.get(REF),
        raw.get(ORDER),
        raw.get(AMOUNT),
        raw.get(OCCURRED),
        window,
    )


def check_values(
    line: int,
    member: object,
    ref: object,
    order: object,
    amount: object,
    occurred: object,
    window: validate.PurchaseWindow,
) -> Checked:
    """check() for values given one by one (a CSV record's fields)."""
    try:
        member_id = _text(member, MEMBER, 40)
        external_ref = _text(ref, REF, 80, reference=True)
        if member_id is None and external_ref is None:
            raise InvalidInput("Name the member: memberId or externalRef.", field=(MEMBER,))
        order_ref = _text(order, ORDER, validate.MAX_ORDER_REF, reference=True)
        if order_ref is None:
            raise InvalidInput("orderRef is missing: points are earned only for a real purchase.")
        return Staged(
            line, member_id, external_ref, order_ref, _cents(amount), _micros(occurred, window)
        )
    except DomainError as error:
        return Rejected(line, error.code, error.message)


def _text(value: object, name: str, max_length: int, *, reference: bool = False) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text.", field=(name,))
    if value.isascii() and value.isprintable():
        # What validate.text does, for the common case: printable ASCII has no invisible
        # character but the space, and no control character.
        value = value.strip(" ")
        if value and len(value) <= max_length:
            return value
    if "\ufffd" in value:
        raise InvalidInput(f"{name} is not valid UTF-8.", field=(name,))
    return validate.text(value, (name,), max_length=max_length, reference=reference)


def _cents(value: object) -> int:
    """accruePoints' amount rule (more than 0, at most MAX_AMOUNT, 2 places), in cents."""
    amount = _decimal(value)
    if amount.is_finite():
        scaled = amount.scaleb(2)
        cents = int(scaled)
        if cents == scaled and 0 < cents <= MAX_CENTS:
            return cents
    validate.money(amount, (AMOUNT,), high=MAX_AMOUNT, positive=True)  # raises, with the sentence
    raise AssertionError(f"amount {amount} passes the check but not the fast one")


def _decimal(value: object) -> Decimal:
    """A JSON number or a string, written as the GraphQL Decimal scalar takes it (plain
    ASCII digits, "-" and "."; no exponent)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and value.strip():
        return validate.plain_decimal(value.strip())
    if value is None or value == "":
        raise InvalidInput("amount is missing.", field=(AMOUNT,))
    raise InvalidInput("amount must be a number, e.g. 128.50.", field=(AMOUNT,))


def _micros(value: object, window: validate.PurchaseWindow) -> int:
    """accruePoints' occurredAt rule (an offset, within the purchase window; absent: now),
    as microseconds since the epoch."""
    if value is None or value == "":
        return to_micros(window.now)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                "occurredAt must be an ISO 8601 moment, e.g. 2026-12-02T19:30:00+08:00.",
                field=(OCCURRED,),
            ) from None
    if not isinstance(value, dt.datetime):
        raise InvalidInput("occurredAt must be an ISO 8601 moment.", field=(OCCURRED,))
    if value.utcoffset() is None or not window.earliest <= value <= window.latest:
        value = window.check(value, (OCCURRED,))  # raises with the sentence, or normalises
    return to_micros(value)


def to_cents(amount: Decimal) -> int:
    """An amount of at most 2 places as whole cents (exact)."""
    return int(amount.scaleb(2))


def from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def to_micros(moment: dt.datetime) -> int:
    """An aware moment as microseconds since the epoch (exact)."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(micros: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=micros)


class BadFile(InvalidInput):
    """The file as a whole cannot be read (its header): nothing of it is staged."""


class _Lines:
    """Complete lines out of a stream of bytes, numbered from 1; a line longer than
    MAX_LINE_CHARS comes out as None (rejected) without being held in memory."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""
        self._skipping = False
        self._started = False
        self.number = 0

    def feed(self, data: bytes, final: bool = False) -> list[tuple[int, str | None]]:
        text = self._decoder.decode(data, final)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")  # a spreadsheet's byte order mark
        out: list[tuple[int, str | None]] = []
        if self._skipping:
            cut = text.find("\n")
            if cut < 0:
                if final:
                    self._skipping = False
                    self.number += 1
                    out.append((self.number, None))
                return out
            self.number += 1
            out.append((self.number, None))
            self._skipping = False
            text = text[cut + 1 :]
        parts = (self._tail + text).split("\n")
        self._tail = parts.pop()
        for part in parts:
            self.number += 1
            out.append((self.number, part[:-1] if part.endswith("\r") else part))
        if final and self._tail:
            self.number += 1
            out.append((self.number, self._tail.removesuffix("\r")))
            self._tail = ""
        elif len(self._tail) > MAX_LINE_CHARS:
            self._tail = ""
            self._skipping = True
        return [
            (n, line if line is None or len(line) <= MAX_LINE_CHARS else None) for n, line in out
        ]


def _too_long(line: int) -> Rejected:
    return Rejected(
        line, ErrorCode.INVALID_INPUT, f"The line is longer than {MAX_LINE_CHARS:,} characters."
    )


def _with_text(
    lines: Iterable[tuple[int, str | None]], out: list[Checked]
) -> Iterator[tuple[int, str]]:
    """The lines (or records) that hold something: one too long is rejected into `out` as it
    comes, a blank one is passed over."""
    for number, text in lines:
        if text is None:
            out.append(_too_long(number))
        elif text.strip():
            yield number, text


class Reader:
    """Feed it the body's bytes as they come; it returns each line, checked."""

    def __init__(self, window: validate.PurchaseWindow) -> None:
        self.window = window
        self._lines = _Lines()

    def feed(self, data: bytes, final: bool = False) -> list[Checked]:
        return self._records(self._lines.feed(data, final), final)

    def _records(self, lines: list[tuple[int, str | None]], final: bool) -> list[Checked]:
        raise NotImplementedError


class NdjsonReader(Reader):
    """One JSON object per line, with the keys of AccrualRowInput."""

    def _records(self, lines: list[tuple[int, str | None]], final: bool) -> list[Checked]:
        out: list[Checked] = []
        for number, text in _with_text(lines, out):
            try:
                value = json.loads(
                    text, parse_float=validate.plain_decimal, object_pairs_hook=validate.unique_keys
                )
            except validate.RepeatedKey as repeated:
                out.append(Rejected(number, ErrorCode.INVALID_INPUT, f"The line: {repeated}."))
                continue
            except (ValueError, RecursionError):  # not JSON, or nested past the decoder
                value = None
            if not isinstance(value, dict):
                out.append(
                    Rejected(number, ErrorCode.INVALID_INPUT, "The line is not a JSON object.")
                )
                continue
            out.append(check(number, value, self.window))
        return out


class CsvReader(Reader):
    """A header line naming the columns (memberId or externalRef, orderRef, amount,
    occurredAt; others are ignored), then one purchase per record; a quoted field may
    span lines."""

    def __init__(self, window: validate.PurchaseWindow) -> None:
        super().__init__(window)
        self.header: list[str] | None = None
        self._at: list[int] = []  # where each of COLUMNS is in a record
        self._pending: list[str] = []
        self._pending_from = 0

    def _records(self, lines: list[tuple[int, str | None]], final: bool) -> list[Checked]:
        complete: list[tuple[int, str | None]] = []
        for number, text in lines:
            if text is None:
                if self._pending:  # an open quote ran into an over-long line: drop both
                    self._pending = []
                complete.append((number, None))
                continue
            if not self._pending:
                self._pending_from = number
            self._pending.append(text)
            joined = "\n".join(self._pending) if len(self._pending) > 1 else text
            if joined.count('"') % 2 == 0:
                complete.append((self._pending_from, joined))
                self._pending = []
            elif len(joined) > MAX_LINE_CHARS:
                complete.append((self._pending_from, None))
                self._pending = []
        if final and self._pending:  # an unclosed quote at the end of the file
            complete.append((self._pending_from, "\n".join(self._pending)))
            self._pending = []
        return self._parse(complete)

    def _parse(self, records: list[tuple[int, str | None]]) -> list[Checked]:
        out: list[Checked] = []
        texts = [text for _, text in records if text is not None and text.strip()]
        parsed = iter(csv.reader(texts, strict=False))
        window = self.window
        for number, _ in _with_text(records, out):
            fields = next(parsed)
            if self.header is None:
                self.header = self._read_header(fields)
                self._at = [self.header.index(c) if c in self.header else _ABSENT for c in COLUMNS]
                continue
            n = len(fields)
            if n > len(self.header):
                out.append(
                    Rejected(
                        number,
                        ErrorCode.INVALID_INPUT,
                        f"The line has {n} fields; the header names {len(self.header)}.",
                    )
                )
                continue
            # By position; trailing empty fields may be left out (occurredAt, often).
            m, r, o, a, t = self._at
            out.append(
                check_values(
                    number,
                    fields[m] if m < n else None,
                    fields[r] if r < n else None,
                    fields[o] if o < n else None,
                    fields[a] if a < n else None,
                    fields[t] if t < n else None,
                    window,
                )
            )
        return out

    @staticmethod
    def _read_header(fields: list[str]) -> list[str]:
        names = [f.strip() for f in fields]
        missing = [c for c in (ORDER, AMOUNT) if c not in names]
        if MEMBER not in names and REF not in names:
            missing.insert(0, f"{MEMBER} or {REF}")
        if missing:
            raise BadFile(
                f"The first line must be a header naming the columns; {', '.join(missing)} "
                f"missing (columns: {', '.join(COLUMNS)})."
            )
        return names


CONTENT_TYPES = {
    "text/csv": CsvReader,
    "application/csv": CsvReader,
    "application/x-ndjson": NdjsonReader,
    "application/ndjson": NdjsonReader,
    "application/jsonl": NdjsonReader,
    "application/json-lines": NdjsonReader,
}


def reader_for(content_type: str, window: validate.PurchaseWindow) -> Reader | None:
    """The reader for a Content-Type (parameters such as charset ignored), or None."""
    kind = content_type.split(";", 1)[0].strip().lower()
    found = CONTENT_TYPES.get(kind)
    return found(window) if found else None


def reader_for_file(name: str, window: validate.PurchaseWindow) -> Reader:
    """NDJSON for .ndjson/.jsonl files, CSV otherwise."""
    lowered = name.lower()
    if lowered.endswith((".ndjson", ".jsonl")):
        return NdjsonReader(window)
    return CsvReader(window)
