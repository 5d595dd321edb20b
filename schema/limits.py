"""Query limits: depth, tokens, aliases, a static cost, caches, and masking."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    NonNullTypeNode,
    OperationDefinitionNode,
    TypeInfo,
    get_operation_ast,
    is_non_null_type,
)
from graphql.validation import (
    ASTValidationRule,
    NoSchemaIntrospectionCustomRule,
    ValidationContext,
)
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document

from hub.config import Settings
from hub.ratelimit import retry_after, too_many
from schema.complexity import DocumentMeasure, root_fields
from schema.errors import PUBLIC_CODES
from schema.pagination import MAX_PAGE_SIZE

DEFAULT_PAGE = 20


@dataclass(frozen=True)
class Limits:
    """How much one document may ask for (HUB_MAX_QUERY_*)."""

    depth: int
    aliases: int
    cost: int
    page_size: int = MAX_PAGE_SIZE


def limits_of(settings: Settings) -> Limits:
    """The limits the settings ask for."""
    return Limits(
        depth=settings.max_query_depth,
        aliases=settings.max_query_aliases,
        cost=settings.max_query_cost,
    )


def limit_errors(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """The depth, aliases and cost limits a document exceeds, measured once per fragment.

    The errors are those strawberry's depth and aliases limiters report, and the hub's
    TOO_COSTLY; their limiters walk a fragment again at each spread, which is exponential.
    """
    measured = DocumentMeasure(document, limits.page_size).operations
    errors: list[GraphQLError] = []
    for operation, measure in measured:
        if measure.depth > limits.depth:
            name = operation.name.value if operation.name else "anonymous"
            errors.append(
                GraphQLError(
                    f"'{name}' exceeds maximum operation depth of {limits.depth}", operation
                )
            )
    aliases = sum(measure.aliases for _, measure in measured)
    if aliases > limits.aliases:
        errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {limits.aliases}"))
    for operation, measure in measured:
        if measure.cost > limits.cost:
            name = operation.name.value if operation.name else "the operation"
            errors.append(
                GraphQLError(
                    f"{name} costs {measure.cost}, above the limit of {limits.cost}; ask for "
                    "smaller pages or fewer nested lists.",
                    operation,
                    extensions={"code": "TOO_COSTLY", "cost": measure.cost, "maxCost": limits.cost},
                )
            )
    return errors


def limits_rule(limits: Limits) -> type[ASTValidationRule]:
    """The limits as a validation rule: depth, aliases, and a static cost.

    The cost: each field costs 1, times the page size of every list above it (the
    representations of `_entities` count as a list). `first` given as a literal counts
    as given; as a variable it counts as the maximum page size, since validation runs
    before variables are known.
    """

    class QueryLimitsRule(ASTValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> None:
            for error in limit_errors(node, limits):
                self.report_error(error)

    return QueryLimitsRule


VALIDATED_DOCUMENTS = 512  # documents whose errors are kept; beyond, the map starts again


class Validation(SchemaExtension):
    """Validation that no document can stall: the limits first, measured in one pass,
    so that graphql-core's rules only ever see a document of bounded expanded size; then
    every rule, in a worker thread so the event loop (and /healthz) goes on meanwhile.

    The outcome is kept by the document's text (the schema and the rules are fixed for the
    process): a document seen before is neither hashed, measured nor validated again."""

    def __init__(self, limits: Limits, validated: dict[str, Validated]) -> None:
        self.limits = limits
        self.validated = validated

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        seen = self.validated.get(context.query or "")
        if seen is None:
            document = context.graphql_document
            assert document is not None, "validation follows parsing"
            seen = Validated(limit_errors(document, self.limits), {})
            if not seen.errors:
                seen = await anyio.to_thread.run_sync(
                    _validated, context.schema._schema, document, context.validation_rules
                )
            if context.query:
                if len(self.validated) >= VALIDATED_DOCUMENTS:
                    self.validated.clear()
                self.validated[context.query] = seen
        context.pre_execution_errors = (
            list(seen.errors) or _unnamed_operation(context) or _null_defaulted(context, seen)
        )
        response = getattr(context.context, "response", None)  # none outside HTTP
        if not seen.errors and context.pre_execution_errors and response is not None:
            response.status_code = 400  # a request error, as a broken body's
        yield


@dataclass(frozen=True)
class Validated:
    """What validating a document found: its errors, and by operation (its name, None when
    anonymous; only those that have any) the variables that have a default but are used
    where a value is required (`$b: Boolean = true` in `@include(if: $b)`: valid, as the
    default fills the place).
    Such a variable given null explicitly is an error of the field it reaches, raised only
    as that field is resolved: below a mutation's field, after the mutation ran."""

    errors: list[GraphQLError]
    null_refused: dict[str | None, frozenset[str]]


def _validated(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> Validated:
    errors = validate_document(schema, document, rules)
    if errors:
        return Validated(list(errors), {})
    context = ValidationContext(schema, document, TypeInfo(schema), lambda _: None)
    refused: dict[str | None, frozenset[str]] = {}
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        defaulted = {
            d.variable.name.value
            for d in operation.variable_definitions or ()
            if d.default_value is not None and not isinstance(d.type, NonNullTypeNode)
        }
        names = frozenset(
            usage.node.name.value
            for usage in context.get_recursive_variable_usages(operation)
            if usage.node.name.value in defaulted and is_non_null_type(usage.type)
        )
        if names:  # (none for nearly every document: a request then looks no further)
            refused[operation.name.value if operation.name else None] = names
    return Validated([], refused)


def _null_defaulted(context: Any, seen: Validated) -> list[GraphQLError]:
    """INVALID_INPUT, before anything runs, for a variable given null where a value is
    required (`Validated`)."""
    if not seen.null_refused:
        return []
    document = context.graphql_document
    operation = get_operation_ast(document, context.operation_name)
    if operation is None:
        return []
    refused = seen.null_refused.get(operation.name.value if operation.name else None, ())
    variables = context.variables or {}
    null = sorted(name for name in refused if name in variables and variables[name] is None)
    if not null:
        return []
    names = ", ".join(f"${name}" for name in null)
    return [
        GraphQLError(
            f"{names} cannot be null: the document uses it where a value is required (its "
            "default stands only when it is left out). Give a value, or leave it out.",
            extensions={"code": "INVALID_INPUT"},
        )
    ]


def _unnamed_operation(context: Any) -> list[GraphQLError]:
    """The GraphQL spec's request error for a document of several operations sent without
    operationName (strawberry would run the first one, a mutation as well as a query)."""
    document = context.graphql_document
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    # operation_name falls back to the first operation's; what the request named is kept.
    if context._provided_operation_name is not None or len(operations) < 2:
        return []
    message = (
        "This document has several operations: name the one to run in operationName "
        f"(it has {', '.join(o.name.value if o.name else '(unnamed)' for o in operations)})."
    )
    return [GraphQLError(message, extensions={"code": "BAD_REQUEST"})]


class RootFieldRateLimit(SchemaExtension):
    """The rate limit counts what a request executes: each root field past the first
    (which the view counted on arrival) takes one more token from the caller's bucket;
    without them the operation does not run, and the answer is a 429 with Retry-After."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        operation = get_operation_ast(document, execution.operation_name) if document else None
        if document is not None and operation is not None:
            count = root_fields(document, operation)
            wait = await context.runtime.rate_limits.root_fields(context.principal, count)
            if wait:
                context.response.status_code = 429
                context.response.headers["Retry-After"] = retry_after(wait)
                error = GraphQLError(
                    too_many(context.principal, wait) + f" This request has {count} root fields,"
                    " and each counts as one request.",
                    extensions={"code": "RATE_LIMITED"},
                )
                execution.result = ExecutionResult(data=None, errors=[error])
        yield


class MaskInternal(MaskErrors):
    """strawberry's MaskErrors, the masked error keeping its code: INTERNAL."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL"}
        return masked


def _should_mask(error: GraphQLError) -> bool:
    """Mask what the hub did not mean to say: unexpected exceptions, not validation."""
    code = (error.extensions or {}).get("code")
    if code in PUBLIC_CODES:
        return False
    return error.original_error is not None


def extensions(settings: Settings, metrics: type[SchemaExtension]) -> list[Any]:
    """The schema extensions as factories (strawberry makes them per request).

    The validation rule classes are made once here, so the validation cache,
    keyed by the rules, hits across requests.
    """
    limits = limits_of(settings)
    validated: dict[str, Validated] = {}  # by document text, for the process
    rules: list[type[ASTValidationRule]] = [limits_rule(limits)]
    if settings.is_production:
        rules.append(NoSchemaIntrospectionCustomRule)
    result: list[Any] = [
        metrics,
        RootFieldRateLimit,
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: AddValidationRules(rules),
        lambda: Validation(limits, validated),
        RefuseBadText,
    ]
    if settings.is_production:
        result.append(
            lambda: MaskInternal(
                should_mask_error=_should_mask, error_message="Internal error; it is logged."
            )
        )
    return result


def _bad_text(value: Any) -> str | None:
    """What makes a text in `value` (a string, or strings nested in lists and objects, keys
    included) unusable, or None: a NUL can be stored nowhere (PostgreSQL refuses it), and a
    lone UTF-16 surrogate ("\\ud800" is valid JSON) is no character at all: no encoder
    writes it, no database stores it."""
    if isinstance(value, str):
        if "\x00" in value:
            return "Text may not contain NUL (\\u0000) characters."
        if _SURROGATE.search(value):
            return (
                "Text may not contain a lone UTF-16 surrogate (\\ud800-\\udfff): send each "
                "character outside the Basic Multilingual Plane as its surrogate pair, or as "
                "UTF-8."
            )
        return None
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        if (why := _bad_text(item)) is not None:
            return why
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


class RefuseBadText(SchemaExtension):
    """A request whose text cannot be stored or even encoded (NUL, a lone surrogate) is
    malformed: it is refused before it runs, with INVALID_INPUT, wherever the text is (the
    document's literals or the variables)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        why = _bad_text(query) or _bad_text(context.variables)
        if why is None and "\\u0000" in query:  # a NUL escaped in a literal
            why = _bad_text("\x00")
        if why is not None:
            error = GraphQLError(why, extensions={"code": "INVALID_INPUT"})
            context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield
