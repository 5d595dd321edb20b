"""UserError, and the one place a domain error becomes one."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import strawberry
from graphql import GraphQLError

from hub.errors import DomainError
from schema.enums import ErrorCode

T = TypeVar("T")

# Top-level error codes the hub sets itself; these are never masked in production.
PUBLIC_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "INVALID_INPUT",
        "TOO_COSTLY",
        "PARTNER_UNAVAILABLE",
        "PARTNER_REJECTED",
        "NOT_FOUND",
    }
)


@strawberry.type(description="An expected failure of a mutation, with what to do about it.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path into the input.")
    message: str
    code: ErrorCode  # type: ignore[valid-type]


def user_errors(error: DomainError) -> list[UserError]:
    return [UserError(field=error.field, message=error.message, code=error.code)]


async def attempt(work: Awaitable[T]) -> tuple[T | None, list[UserError]]:
    """Await a domain call; a DomainError becomes userErrors, anything else propagates."""
    try:
        return await work, []
    except DomainError as error:
        return None, user_errors(error)


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "FORBIDDEN"})


def bad_argument(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT"})
