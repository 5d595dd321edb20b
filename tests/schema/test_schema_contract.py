"""The printed schema is checked in, and the contract is a subset of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    EnumTypeDefinitionNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    TypeNode,
    parse,
    print_ast,
)

from hub.config import Settings
from schema import build_schema, print_sdl

ROOT = Path(__file__).resolve().parents[2]
PRINTED = ROOT / "schema" / "schema.graphql"
CONTRACT = ROOT / "vendor" / "contract" / "schema.graphql"
SHARED_CONTRACT = ROOT.parent / "shared" / "contract" / "schema.graphql"

# Names of the contract not built yet, as "Type" or "Type.field"; later issues empty it.
PENDING: set[str] = set()

# Output fields the contract types non-null that the schema makes nullable on purpose:
# null for a viewer who may not see them (issue 14: a reward's settlement price is for
# ADMIN, FINANCE and its own merchant only). Only the "!" may differ.


def test_printed_schema_is_checked_in() -> None:
    assert PRINTED.read_text() == print_sdl(), (
        "schema/schema.graphql differs from the code: run `make schema` and commit it."
    )


@pytest.mark.skipif(not SHARED_CONTRACT.exists(), reason="no ../shared checkout beside the repo")
def test_vendored_contract_is_the_shared_one() -> None:
    assert CONTRACT.read_text() == SHARED_CONTRACT.read_text()


def _schema() -> GraphQLSchema:
    return build_schema(Settings())._schema


def _type_str(node: TypeNode) -> str:
    return print_ast(node)


def _default(node: object) -> str | None:
    value = getattr(node, "default_value", None)
    return print_ast(value) if value is not None else None


def _missing(schema: GraphQLSchema) -> list[str]:
    problems: list[str] = []
    document = parse(CONTRACT.read_text())
    for definition in document.definitions:
        name = getattr(getattr(definition, "name", None), "value", None)
        if name is None or name in PENDING:
            continue
        ours = schema.type_map.get(name)
        if ours is None:
            problems.append(f"{name}: type missing")
            continue
        if isinstance(definition, ScalarTypeDefinitionNode):
            continue
        if isinstance(definition, EnumTypeDefinitionNode):
            assert isinstance(ours, GraphQLEnumType), name
            for value in definition.values or ():
                if f"{name}.{value.name.value}" in PENDING:
                    continue
                if value.name.value not in ours.values:
                    problems.append(f"{name}.{value.name.value}: enum value missing")
            continue
        if isinstance(definition, InputObjectTypeDefinitionNode):
            if not isinstance(ours, GraphQLInputObjectType):
                problems.append(f"{name}: not an input type")
                continue
            for field in definition.fields or ():
                key = f"{name}.{field.name.value}"
                if key in PENDING:
                    continue
                mine = ours.fields.get(field.name.value)
                if mine is None:
                    problems.append(f"{key}: input field missing")
                    continue
                if str(mine.type) != _type_str(field.type):
                    problems.append(f"{key}: type {mine.type}, contract {_type_str(field.type)}")
                expected = _default(field)
                if expected is not None:
                    ast = mine.ast_node
                    actual = _printed_default(schema, name, field.name.value)
                    if actual != expected:
                        problems.append(f"{key}: default {actual}, contract {expected} ({ast})")
            continue
        if isinstance(definition, ObjectTypeDefinitionNode):
            if not isinstance(ours, GraphQLObjectType | GraphQLInterfaceType):
                problems.append(f"{name}: not an object type")
                continue
            for field in definition.fields or ():
                key = f"{name}.{field.name.value}"
                if key in PENDING:
                    continue
                mine_field = ours.fields.get(field.name.value)
                if mine_field is None:
                    problems.append(f"{key}: field missing")
                    continue
                if str(mine_field.type) != _type_str(field.type):
                    problems.append(
                        f"{key}: type {mine_field.type}, contract {_type_str(field.type)}"
                    )
                for argument in field.arguments or ():
                    arg = mine_field.args.get(argument.name.value)
                    akey = f"{key}({argument.name.value})"
                    if arg is None:
                        problems.append(f"{akey}: argument missing")
                        continue
                    if str(arg.type) != _type_str(argument.type):
                        problems.append(
                            f"{akey}: type {arg.type}, contract {_type_str(argument.type)}"
                        )
                    expected = _default(argument)
                    if (
                        expected is not None
                        and _printed_arg_default(name, field.name.value, argument.name.value)
                        != expected
                    ):
                        problems.append(f"{akey}: default differs from contract {expected}")
            for directive in definition.directives or ():
                if directive.name.value == "key" and f"type {name} @key" not in _sdl():
                    problems.append(f"{name}: @key missing in the federation SDL")
    return problems


_SDL: list[str] = []


def _sdl() -> str:
    if not _SDL:
        _SDL.append(print_sdl())
    return _SDL[0]


def _printed_definition(type_name: str) -> dict[str, object]:
    document = parse(_sdl())
    for definition in document.definitions:
        if getattr(getattr(definition, "name", None), "value", None) == type_name:
            return {"node": definition}
    raise AssertionError(type_name)


def _printed_default(schema: GraphQLSchema, type_name: str, field_name: str) -> str | None:
    node = _printed_definition(type_name)["node"]
    for field in getattr(node, "fields", ()):
        if field.name.value == field_name:
            return _default(field)
    return None


def _printed_arg_default(type_name: str, field_name: str, arg_name: str) -> str | None:
    node = _printed_definition(type_name)["node"]
    for field in getattr(node, "fields", ()):
        if field.name.value == field_name:
            for argument in field.arguments or ():
                if argument.name.value == arg_name:
                    return _default(argument)
    return None


def test_contract_is_a_subset_of_the_schema() -> None:
    problems = _missing(_schema())
    assert problems == [], "\n".join(problems)


def test_pending_names_are_really_missing() -> None:
    """An entry stays in PENDING only while it is not built: the set shrinks to empty."""
    schema = _schema()
    built = []
    for name in PENDING:
        type_name, _, field = name.partition(".")
        ours = schema.type_map.get(type_name)
        if ours is None:
            continue
        if (
            not field
            or field in getattr(ours, "fields", {})
            or field in getattr(ours, "values", {})
        ):
            built.append(name)
    assert built == [], f"built but still PENDING: {built}"


def test_federation_service_sdl_and_entities(sdl: str = "") -> None:
    assert "@key" in _sdl()
    schema = _schema()
    assert "_service" in schema.query_type.fields  # type: ignore[union-attr]
    assert "_entities" in schema.query_type.fields  # type: ignore[union-attr]
