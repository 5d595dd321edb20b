"""The reference mall's GraphQL documents: valid against the printed schema, within the
hub's query limits, one operation per file, and one for every feature of the page."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    parse,
    validate,
)
from graphql.language import Visitor, visit

from hub.config import Settings
from schema.limits import limits_of, limits_rule

ROOT = Path(__file__).resolve().parents[2]
MALL = ROOT / "hub" / "web" / "mall"
OPERATIONS = sorted((MALL / "operations").glob("*.graphql"))
PRINTED_SCHEMA = ROOT / "schema" / "schema.graphql"

# The printed schema is a federation subgraph: it uses @link and @key, which a plain
# GraphQL schema does not know.
FEDERATION_DIRECTIVES = """
directive @key(fields: String!) repeatable on OBJECT | INTERFACE
directive @link(url: String!, import: [String]) repeatable on SCHEMA
"""

# Each feature of the page, as the root field (and the field under it) an operation must select.
FEATURES = {
    "members/balances": ("query", ("viewer", "member", "accounts", "balance")),
    "catalog": ("query", ("rewards", "edges", "node", "priceIn")),
    "quote": ("mutation", ("quoteConversion", "quote", "expiresAt")),
    "convert": ("mutation", ("convertPoints", "conversion")),
    "redeem": ("mutation", ("redeemReward", "redemption")),
    "redemptions": ("query", ("viewer", "member", "redemptions", "edges", "node", "cancellable")),
    "cancel": ("mutation", ("cancelRedemption", "redemption", "refundedPoints")),
}


@cache
def hub_schema() -> GraphQLSchema:
    return build_schema(FEDERATION_DIRECTIVES + PRINTED_SCHEMA.read_text(encoding="utf-8"))


def document(path: Path) -> DocumentNode:
    return parse(path.read_text(encoding="utf-8"))


def field_paths(operation: OperationDefinitionNode) -> set[tuple[str, ...]]:
    """Every path of field names the operation selects, from its root."""
    paths: set[tuple[str, ...]] = set()
    stack: list[str] = []

    class Paths(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            stack.append(node.name.value)
            paths.add(tuple(stack))

        def leave_field(self, *_: object) -> None:
            stack.pop()

    visit(operation, Paths())
    return paths


def test_there_are_operation_documents() -> None:
    assert OPERATIONS, f"no operations in {MALL / 'operations'}"


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.name)
def test_each_document_is_valid_against_the_printed_schema(path: Path) -> None:
    errors = validate(hub_schema(), document(path))
    assert errors == [], "\n".join(f"{path.name}: {e}" for e in errors)


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.name)
def test_each_document_stays_within_the_hubs_query_limits(path: Path) -> None:
    errors = validate(hub_schema(), document(path), [limits_rule(limits_of(Settings()))])
    assert errors == [], "\n".join(f"{path.name}: {e}" for e in errors)


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.name)
def test_each_document_holds_one_operation_named_after_its_file(path: Path) -> None:
    definitions = document(path).definitions
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, f"{path.name} holds {len(operations)} operations"
    assert operations[0].name is not None, f"{path.name}: the operation has no name"
    assert operations[0].name.value == path.stem


@pytest.mark.parametrize("feature", FEATURES)
def test_every_feature_of_the_page_has_an_operation(feature: str) -> None:
    kind, path = FEATURES[feature]
    found = [
        p.name
        for p in OPERATIONS
        for op in document(p).definitions
        if isinstance(op, OperationDefinitionNode)
        and op.operation.value == kind
        and path in field_paths(op)
    ]
    assert found, f"no {kind} in operations/ selects {'.'.join(path)} (for {feature})"


def test_the_page_runs_every_checked_in_operation_and_no_other() -> None:
    scripts = "\n".join(p.read_text(encoding="utf-8") for p in MALL.glob("*.js"))
    used = set(re.findall(r"""\bgql\(\s*["'](\w+)["']""", scripts))
    assert used == {p.stem for p in OPERATIONS}
