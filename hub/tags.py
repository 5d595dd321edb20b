"""Tags: short labels on purchase lines, rewards and promotions ("green" marks an eco
purchase or reward). Compared in lower case; stored as a sorted JSON list."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from hub.errors import FieldPath, InvalidInput

GREEN = "green"
TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_TAGS = 10


def checked(values: Iterable[str] | None, field: FieldPath) -> list[str]:
    """The tags given, trimmed, in lower case, each once, sorted; refused when malformed."""
    found: set[str] = set()
    for value in values or []:
        tag = value.strip().lower()
        if not TAG.fullmatch(tag):
            raise InvalidInput(
                f"Tag {value!r} is not a tag: 1-40 letters, digits, '-' or '_' (e.g. 'green').",
                field=field,
            )
        found.add(tag)
    if len(found) > MAX_TAGS:
        raise InvalidInput(f"At most {MAX_TAGS} tags.", field=field)
    return sorted(found)


def encode(values: Iterable[str]) -> str | None:
    unique = sorted(set(values))
    return json.dumps(unique) if unique else None


def decode(value: str | None) -> list[str]:
    found: list[str] = json.loads(value) if value else []
    return found


def is_green(value: str | None) -> bool:
    """Whether a stored tag list marks something green."""
    return GREEN in decode(value)
