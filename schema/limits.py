"""Query limits: depth, tokens, aliases, a static cost, caches, and masking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from hub.config import Settings
from schema.errors import PUBLIC_CODES
from schema.pagination import MAX_PAGE_SIZE

DEFAULT_PAGE = 20


def cost_rule(max_cost: int) -> type[ValidationRule]:
    """A static cost: each field costs 1, times the page size of every list above it.

    `first` given as a literal counts as given; as a variable it counts as the
    maximum page size, since validation runs before variables are known.
    """

    class QueryCostRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments: dict[str, FragmentDefinitionNode] = {}

        def enter_document(self, node: Any, *_: Any) -> None:
            self.fragments = {
                d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = self._cost(node.selection_set, frozenset())
            if cost > max_cost:
                name = node.name.value if node.name else "the operation"
                self.report_error(
                    GraphQLError(
                        f"{name} costs {cost}, above the limit of {max_cost}; ask for smaller "
                        "pages or fewer nested lists.",
                        node,
                        extensions={"code": "TOO_COSTLY", "cost": cost, "maxCost": max_cost},
                    )
                )

        def _cost(self, selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
            if selection_set is None:
                return 0
            total = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    total += 1 + _multiplier(selection) * self._cost(selection.selection_set, seen)
                elif isinstance(selection, InlineFragmentNode):
                    total += self._cost(selection.selection_set, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in seen:
                        total += self._cost(fragment.selection_set, seen | {name})
            return total

    return QueryCostRule


def _multiplier(field: FieldNode) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(1, min(int(argument.value.value), MAX_PAGE_SIZE))
            return MAX_PAGE_SIZE
    return 1


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
    rules: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_query_depth, None),
        aliases_rule(settings.max_query_aliases),
        cost_rule(settings.max_query_cost),
    ]
    if settings.is_production:
        rules.append(NoSchemaIntrospectionCustomRule)
    result: list[Any] = [
        metrics,
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=512),
        RefuseNul,
    ]
    if settings.is_production:
        result.append(
            lambda: MaskErrors(
                should_mask_error=_should_mask, error_message="Internal error; it is logged."
            )
        )
    return result


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RefuseNul(SchemaExtension):
    """Text with NUL characters can be stored nowhere (PostgreSQL refuses it): such a
    request is malformed, and is refused before it runs, with INVALID_INPUT."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        if "\x00" in query or "\\u0000" in query or _has_nul(context.variables):
            error = GraphQLError(
                "Text may not contain NUL (\\u0000) characters.",
                extensions={"code": "INVALID_INPUT"},
            )
            context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield
