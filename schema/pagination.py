"""Relay connections, cursors and page sizes."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable
from typing import Generic, TypeVar

import strawberry

from schema.errors import bad_argument

MAX_PAGE_SIZE = 100

N = TypeVar("N")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


# Strawberry names Edge[Reward] RewardEdge and Connection[Reward] RewardConnection: the
# names the contract gives each list's types.


@strawberry.type
class Edge(Generic[N]):
    node: N
    cursor: str


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo

    @classmethod
    def of(
        cls, kind: str, nodes: Iterable[tuple[N, str | int]], has_next_page: bool
    ) -> Connection[N]:
        """A page of `nodes`, each given with the position its cursor (of `kind`) names;
        `has_next_page`: more follow."""
        edges = [Edge(node=node, cursor=encode_cursor(kind, at)) for node, at in nodes]
        end = edges[-1].cursor if edges else None
        return Connection(
            edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end)
        )


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
        raise bad_argument(f"{name} must be from 2000-01-01 to 2199-12-31.")
    return value
