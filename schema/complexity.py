"""What a GraphQL document costs once its fragments are expanded, computed in one pass.

Each fragment is measured once and remembered by name, so a document whose fragments
spread each other twice over (`fragment F2 on Query { ...F1 ...F1 }`, n levels deep)
is measured in time linear in its text, although it expands to 2^n fields. The
numbers are what executes: a fragment counts every time it is spread.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

# At most this many representations in one `_entities` call (schema.federation refuses more).
MAX_ENTITIES = 100


@dataclass(frozen=True)
class Measure:
    """A selection expanded: its static cost, its depth and its aliases."""

    cost: int = 0  # each field 1, times the page size (or entity count) of every list above
    depth: int = 0  # nesting of fields with a selection (strawberry's depth limiter's rule)
    aliases: int = 0  # aliased fields in the expanded document (as strawberry counts them)

    def __add__(self, other: Measure) -> Measure:
        return Measure(
            cost=self.cost + other.cost,
            depth=max(self.depth, other.depth),
            aliases=self.aliases + other.aliases,
        )


EMPTY = Measure()


def multiplier(field: FieldNode, max_page_size: int) -> int:
    """How many times a field's selection runs: the page asked for (`first`), or the
    representations of `_entities`; a variable counts as the most it may be."""
    for argument in field.arguments or ():
        name = argument.name.value
        value = argument.value
        if name == "first":
            if isinstance(value, IntValueNode):
                return max(1, min(int(value.value), max_page_size))
            return max_page_size
        if name == "representations" and field.name.value == "_entities":
            if isinstance(value, ListValueNode):
                return max(1, len(value.values))
            return MAX_ENTITIES
    return 1


class DocumentMeasure:
    """Measures the operations of one document; fragments measured once each.

    A fragment that spreads itself (directly or not) counts nothing the second time:
    graphql-core's NoFragmentCycles rule refuses such a document anyway.
    """

    def __init__(self, document: DocumentNode, max_page_size: int) -> None:
        self._max_page_size = max_page_size
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._memo: dict[str, Measure] = {}
        self._open: set[str] = set()
        self.operations: list[tuple[OperationDefinitionNode, Measure]] = [
            (d, self._selection(d.selection_set))
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        ]

    def _fragment(self, name: str) -> Measure:
        known = self._memo.get(name)
        if known is not None:
            return known
        fragment = self._fragments.get(name)
        if fragment is None or name in self._open:
            return EMPTY
        self._open.add(name)
        try:
            measure = self._selection(fragment.selection_set)
        finally:
            self._open.discard(name)
        self._memo[name] = measure
        return measure

    def _selection(self, selection_set: SelectionSetNode | None) -> Measure:
        total = EMPTY
        if selection_set is None:
            return total
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total = total + self._field(selection)
            elif isinstance(selection, InlineFragmentNode):
                total = total + self._selection(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total = total + self._fragment(selection.name.value)
        return total

    def _field(self, field: FieldNode) -> Measure:
        below = self._selection(field.selection_set)
        times = multiplier(field, self._max_page_size)
        introspection = field.name.value.startswith("__")
        nested = field.selection_set is not None and not introspection
        return Measure(
            cost=1 + times * below.cost,
            depth=1 + below.depth if nested else 0,
            aliases=(1 if field.alias else 0) + below.aliases,
        )


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> int:
    """The root fields an operation executes: its distinct response keys once fragments
    are expanded (a key spread twice runs once; 30 aliases of one mutation run 30 times)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    memo: dict[str, frozenset[str]] = {}
    open_: set[str] = set()

    def keys(selection_set: SelectionSetNode) -> frozenset[str]:
        found: set[str] = set()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.add(selection.alias.value if selection.alias else selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                found |= keys(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                found |= fragment(selection.name.value)
        return frozenset(found)

    def fragment(name: str) -> frozenset[str]:
        if name in memo:
            return memo[name]
        definition = fragments.get(name)
        if definition is None or name in open_:
            return frozenset()
        open_.add(name)
        memo[name] = keys(definition.selection_set)
        open_.discard(name)
        return memo[name]

    return len(keys(operation.selection_set))
