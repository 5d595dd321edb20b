"""The GraphQL API: strawberry types, queries, mutations, loaders, permissions, errors."""

from __future__ import annotations

import strawberry
from strawberry.federation import Schema

from hub.config import Settings
from schema.limits import extensions
from schema.metrics import OperationMetrics
from schema.mutations.admin import AdminMutations
from schema.mutations.exchange import ExchangeMutations, ExchangeQueries
from schema.mutations.mall import MallMutations, MallQueries
from schema.mutations.members import MemberMutations
from schema.mutations.settlement import SettlementMutations, SettlementQueries
from schema.mutations.webhooks import WebhookMutations, WebhookQueries
from schema.queries import CoreQueries
from schema.reconciliation import ReconciliationQueries
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
):
    pass


def build_schema(settings: Settings) -> Schema:
    """The federated schema with the limits and caches the settings ask for."""
    return Schema(
        query=Query,
        mutation=Mutation,
        types=[Merchant, Program, Member, Reward],
        extensions=extensions(settings, OperationMetrics),
    )


def print_sdl() -> str:
    """The printed schema, as checked in at schema/schema.graphql."""
    return build_schema(Settings()).as_str() + "\n"
