"""One object made from another's attributes of the same names, as Pydantic's from_attributes
reads one: a strawberry type from a row, a domain request from a GraphQL input."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from sqlalchemy.orm import Mapped

T = TypeVar("T")


def from_attributes(cls: type[T], source: object, **given: Any) -> T:
    """`cls` (a dataclass: a strawberry type or input, a domain request) with each of its
    init fields not in `given` read from `source`'s attribute of the same name.

    `given` is what the caller converts on the way (ids, money, enums kept as text, a
    renamed attribute), so that a call says what it converts and nothing else. Strict: a
    field `source` does not declare, or declares with a type the field does not take, is a
    TypeError (the check mypy made on keywords written out, made once per pair of classes).
    """
    key = (cls, type(source), frozenset(given))
    names = _COPIED.get(key)
    if names is None:
        names = _COPIED[key] = _copied(*key)
    return cls(**{name: getattr(source, name) for name in names}, **given)


_COPIED: dict[tuple[type, type, frozenset[str]], tuple[str, ...]] = {}


def _copied(cls: type, source: type, given: frozenset[str]) -> tuple[str, ...]:
    """The init fields of `cls` read from a `source`, each checked against its declaration."""
    wanted = typing.get_type_hints(cls, include_extras=True)
    declared = typing.get_type_hints(source, include_extras=True)
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name not in given)
    for name in names:
        if name not in declared:
            raise TypeError(f"{source.__name__} declares no {name} for {cls.__name__}")
        if not _alternatives(declared[name]) <= _alternatives(wanted[name]):
            raise TypeError(
                f"{cls.__name__}.{name} takes {wanted[name]}, {source.__name__}.{name} is "
                f"{declared[name]}: convert it in the call"
            )
    return names


def _alternatives(hint: Any) -> set[Any]:
    """The types a hint admits, one per member of a union (`X | None`: X and None), with
    strawberry.Private and SQLAlchemy's Mapped taken off."""
    while get_origin(hint) in (Annotated, Mapped):
        hint = get_args(hint)[0]
    if get_origin(hint) in (Union, types.UnionType):
        return set().union(*(_alternatives(arg) for arg in get_args(hint)))
    return {hint}
