"""The per-request context: the runtime, the caller, and the request's loaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from hub import idempotency, permissions
from hub.auth import Principal
from hub.config import Settings
from hub.db import Database
from hub.errors import FieldPath, NotAllowed
from hub.runtime import Runtime
from schema.errors import INPUT, UserError, attempt, forbidden
from schema.loaders import Loaders

T = TypeVar("T")


@dataclass
class Context:
    request: Request
    response: Response
    runtime: Runtime
    principal: Principal
    loaders: Loaders

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def require(self, action: permissions.Action) -> Principal:
        """The caller, if its role may call the operation; else a top-level FORBIDDEN."""
        try:
            permissions.require(self.principal, action)
        except NotAllowed as exc:
            raise forbidden(str(exc)) from None
        return self.principal

    def allows(self, action: permissions.Action) -> bool:
        return permissions.allowed(self.principal, action)

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """A query's `work` in a read-only session of its own, rolled back at the end."""
        async with self.db.read() as session:
            return await work(session)

    async def write(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, under: FieldPath = INPUT
    ) -> tuple[T | None, list[UserError]]:
        """A mutation's `work` in one transaction; a refusal rolls it back and becomes
        userErrors under the mutation's input (or `under` its arguments). A refusal of
        work that claimed the caller's idempotency key is kept under it
        (idempotency.transaction)."""
        return await attempt(idempotency.transaction(self.db, work), under=under)


Info: TypeAlias = strawberry.Info[Context, None]
