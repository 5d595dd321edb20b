"""The GraphQL API: strawberry types, queries, mutations, loaders, permissions, errors."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.federation import Schema
from strawberry.federation.schema import FederationAny
from strawberry.types import Info

from hub.config import Settings
from hub.db import database_unavailable
from schema.complexity import MAX_ENTITIES
from schema.imports import ImportMutations, ImportQueries
from schema.insights import InsightsQueries
from schema.limits import extensions
from schema.metrics import OperationMetrics
from schema.mutations.admin import AdminMutations
from schema.mutations.exchange import ExchangeMutations, ExchangeQueries
from schema.mutations.mall import MallMutations, MallQueries
from schema.mutations.members import MemberMutations
from schema.mutations.settlement import SettlementMutations, SettlementQueries
from schema.mutations.tiers import TierMutations
from schema.mutations.vouchers import VoucherMutations, VoucherQueries
from schema.mutations.webhooks import WebhookMutations, WebhookQueries
from schema.queries import CoreQueries
from schema.reconciliation import ReconciliationQueries
from schema.scalars import StrictDate, StrictDecimal, as_sent
from schema.types.mall import Reward
from schema.types.members import Member
from schema.types.merchants import Merchant, Program


@strawberry.type
class Query(
    CoreQueries,
    ExchangeQueries,
    MallQueries,
    SettlementQueries,
    WebhookQueries,
    ReconciliationQueries,
    InsightsQueries,
    VoucherQueries,
    ImportQueries,
):
    pass


@strawberry.type
class Mutation(
    AdminMutations,
    MemberMutations,
    ExchangeMutations,
    MallMutations,
    SettlementMutations,
    WebhookMutations,
    TierMutations,
    VoucherMutations,
    ImportMutations,
):
    pass


log = structlog.get_logger("hub.graphql")


class HubSchema(Schema):
    """The federated schema, logging its errors through the hub's redacting logger.

    strawberry's own logger writes str(error), which prints the document around the
    error's location: the literals in it are a member's name and phone. Here a refused
    request logs only its code and path, and a failure its exception (redacted).
    """

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        for error in errors:
            _give_code(error)
            path = [str(p) for p in error.path or ()]
            original = error.original_error
            if (error.extensions or {}).get("code") == "UNAVAILABLE":
                log.warning("database unavailable", path=path, error=type(original).__name__)
            elif original is not None and not isinstance(original, GraphQLError):
                log.error(
                    "graphql resolver failed",
                    path=path,
                    error=type(original).__name__,
                    exc_info=(type(original), original, original.__traceback__),
                )
            else:
                code = (error.extensions or {}).get("code")
                log.info("graphql request refused", path=path, code=code)

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """_entities, at most MAX_ENTITIES at once; each type's references resolve through
        the request's loaders, so the members of one call are read in one statement."""
        if len(representations) > MAX_ENTITIES:
            raise GraphQLError(
                f"_entities resolves at most {MAX_ENTITIES} representations at once, and "
                f"{len(representations)} were sent; split them into several requests.",
                extensions={
                    "code": "TOO_COSTLY",
                    "representations": len(representations),
                    "max": MAX_ENTITIES,
                },
            )
        resolved: list[FederationAny] = []
        for index, representation in enumerate(representations):
            why = self._malformed(representation)
            if why is not None:
                message = f"representations[{index}]: {why}"
                refused: Any = GraphQLError(message, extensions={"code": "INVALID_INPUT"})
                resolved.append(refused)  # strawberry answers an entity's error in its place
            else:
                resolved += super().entities_resolver(info, [dict(representation)])  # type: ignore[call-overload]
        return resolved

    def _malformed(self, representation: object) -> str | None:
        """Why a representation is not one of the hub's entities by its key, or None."""
        if not isinstance(representation, dict):
            return "a representation is an object with __typename and the type's key."
        name = representation.get("__typename")
        keys = _ENTITY_KEYS.get(name) if isinstance(name, str) else None
        if keys is None:
            known = ", ".join(sorted(_ENTITY_KEYS))
            return f"__typename must name an entity of the hub ({known}), not {as_sent(name)}."
        given = set(representation) - {"__typename"}
        if given != {keys}:
            return f"a {name} is represented by its {keys} alone (it has {sorted(given)})."
        if not isinstance(representation[keys], str):
            return f"a {name}'s {keys} is a string."
        return None


# graphql-core's errors about a variable's value (coercion), not its declaration ("is
# never used", "is not defined" are the document's: validation).
_VARIABLE_VALUE = re.compile(
    r"Variable '\$\w+' (has invalid value|got invalid value|of required type|of non-null)"
)

# Each entity type and the one field of its @key.
_ENTITY_KEYS = {"Merchant": "id", "Program": "code", "Member": "id", "Reward": "id"}


# (Not "nothing was done": a connection lost while a write without a key committed leaves
# its outcome unknown; a mutation sent again with its idempotencyKey is done once.)
UNAVAILABLE_MESSAGE = (
    "The database is not available (its connections were lost, or none was free). Retry "
    "shortly: a mutation sent again with the same idempotencyKey is done once."
)


def _give_code(error: GraphQLError) -> None:
    """Code an error graphql-core or strawberry made without one, so that every error a
    client gets says what kind it is: a document that does not parse or validate, a
    variable the schema cannot read (INVALID_INPUT), a database that could not be used
    (UNAVAILABLE), or a failure of the hub's (INTERNAL)."""
    if (error.extensions or {}).get("code"):
        return
    original = error.original_error
    if original is not None and database_unavailable(original):
        # Not the hub's failure, and no transaction half done: the caller may retry.
        error.message = UNAVAILABLE_MESSAGE
        code = "UNAVAILABLE"
    elif error.path is not None or (
        original is not None and not isinstance(original, GraphQLError)
    ):
        code = "INTERNAL"
    elif error.message.startswith("Syntax Error"):
        code = "GRAPHQL_PARSE_FAILED"
    elif _VARIABLE_VALUE.match(error.message):
        code = "INVALID_INPUT"
    else:
        code = "GRAPHQL_VALIDATION_FAILED"
    error.extensions = {**(error.extensions or {}), "code": code}


# The schemas this process built, by the settings they depend on (see build_schema).
_BUILT: dict[tuple[int, int, int, int, bool], Schema] = {}


def build_schema(settings: Settings) -> Schema:
    """The federated schema with the limits and caches the settings ask for: built once
    per process for the same ones (building it costs about 50 ms, and the suite makes an
    app per test; nothing in it depends on another setting)."""
    options = (
        settings.max_query_depth,
        settings.max_query_aliases,
        settings.max_query_cost,
        settings.max_query_tokens,
        settings.is_production,
    )
    built = _BUILT.get(options)
    if built is None:
        built = _BUILT[options] = HubSchema(
            query=Query,
            mutation=Mutation,
            types=[Merchant, Program, Member, Reward],
            extensions=extensions(settings, OperationMetrics),
            scalar_overrides={Decimal: StrictDecimal, dt.date: StrictDate},
        )
    return built


def print_sdl() -> str:
    """The printed schema, as checked in at schema/schema.graphql."""
    return build_schema(Settings()).as_str() + "\n"
