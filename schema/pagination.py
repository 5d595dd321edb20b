"""Relay cursors and page sizes."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import strawberry

from schema.errors import bad_argument

MAX_PAGE_SIZE = 100


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


class Edge(Protocol):
    @property
    def cursor(self) -> str: ...


def page_info(edges: Sequence[Edge], has_next_page: bool) -> PageInfo:
    """A page's PageInfo: whether more follow, and the cursor of its last edge."""
    return PageInfo(has_next_page=has_next_page, end_cursor=edges[-1].cursor if edges else None)


def encode_cursor(kind: str, value: str | int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    """The position a cursor names; a top-level INVALID_INPUT error if it is not ours."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_argument("after is not a cursor this API gave out.") from None
    prefix, _, value = text.partition(":")
    if prefix != kind or not value:
        raise bad_argument("after is not a cursor for this list.")
    return value


def decode_int_cursor(kind: str, cursor: str | None) -> int | None:
    value = decode_cursor(kind, cursor)
    if value is None:
        return None
    if not value.isdigit():
        raise bad_argument("after is not a cursor for this list.")
    return int(value)


def page_size(first: int | None, limit: int = MAX_PAGE_SIZE) -> int:
    """`first` checked against the page limit (at most 100)."""
    if first is None:
        return 20
    if first < 0 or first > limit:
        raise bad_argument(f"first must be between 0 and {limit}.")
    return first


def checked_date(value: dt.date | None, name: str) -> dt.date | None:
    """A date argument within 2000-2200; else a top-level INVALID_INPUT error."""
    if value is not None and not dt.date(2000, 1, 1) <= value < dt.date(2200, 1, 1):
        raise bad_argument(f"{name} must be between 2000 and 2200.")
    return value
