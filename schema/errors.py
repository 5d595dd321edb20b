"""UserError, and the one place a domain error becomes one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from graphql import GraphQLError

from hub.auth import Principal
from hub.errors import DomainError, FieldPath, InvalidInput, spelled
from hub.permissions import sees_as_the_member
from hub.sagas import SagaRow, failure_of
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
        "UNAVAILABLE",
    }
)


@strawberry.type(description="An expected failure of a mutation, with what to do about it.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path into the input.")
    message: str
    code: ErrorCode  # type: ignore[valid-type]


INPUT: FieldPath = ("input",)
"""Where a mutation taking one `input` argument has its fields."""
ARGUMENTS: FieldPath = ()
"""Where a mutation taking its fields as arguments (`setTiers(program:, tiers:)`) has them."""


def graphql_path(field: FieldPath | None, under: FieldPath = INPUT) -> list[str] | None:
    """The domain's path (`("adjustments", "2", "counter_party")`) as the client sent it
    (`["input", "adjustments", "2", "counterParty"]`): the one place the two meet."""
    if field is None:
        return None
    return [*under, *(spelled(part) for part in field)] or None


def user_errors(
    error: DomainError, under: FieldPath = INPUT, *, words: bool = False
) -> list[UserError]:
    """The error as userErrors; a partner's own words in it only for a caller who may see
    the member (`words`)."""
    message = error.told(words=words)
    return [UserError(field=graphql_path(error.field, under), message=message, code=error.code)]


def failure_shown(row: SagaRow, principal: Principal) -> UserError | None:
    """A saga's failure as its request's userError (a conversion's, a redemption's), as
    this caller may read it: a partner's own words only if it may see the member."""
    failure = failure_of(row, words=sees_as_the_member(principal, row.member_id))
    return None if failure is None else user_errors(failure)[0]


async def attempt(
    work: Awaitable[T], *, under: FieldPath = INPUT, words: bool = False
) -> tuple[T | None, list[UserError]]:
    """Await a domain call; a DomainError becomes userErrors (its path put `under` the
    mutation's input or arguments; a partner's words in it only with `words`), anything
    else propagates."""
    try:
        return await work, []
    except DomainError as error:
        return None, user_errors(error, under, words=words)


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "FORBIDDEN"})


def partner_error(error: DomainError, *, words: bool) -> GraphQLError:
    """A partner's failure (a refusal, or no answer) as a field's error, with its code; the
    partner's own words in it only for a caller who may see the member (`words`)."""
    return GraphQLError(error.told(words=words), extensions={"code": error.code.value})


def bad_argument(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT"})


def checked_argument(check: Callable[[], T]) -> T:
    """A query's argument checked by the domain: its InvalidInput becomes a top-level
    INVALID_INPUT error (a query has no userErrors to put it in)."""
    try:
        return check()
    except InvalidInput as error:
        raise bad_argument(error.message) from None
