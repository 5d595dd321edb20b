"""What a field's selection asks, as the response will carry it: fragments looked through,
and a selection a directive leaves out (`@skip(if: true)`, `@include(if: false)`) not asked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from strawberry.types.nodes import SelectedField, Selection


def _shown(selections: Iterable[Selection]) -> Iterator[Selection]:
    for selection in selections:
        directives = selection.directives or {}
        if directives.get("skip", {}).get("if") is True:
            continue
        if directives.get("include", {}).get("if") is False:
            continue
        yield selection


def fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields asked at this level, through fragments, those a directive leaves out
    left out."""
    for selection in _shown(selections):
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from fields(selection.selections)


def asks(selections: Sequence[Selection], path: tuple[str, ...]) -> bool:
    """Whether the selection reads the field at `path` (names as GraphQL spells them)."""
    return any(
        field.name == path[0] and (len(path) == 1 or asks(field.selections, path[1:]))
        for field in fields(selections)
    )
