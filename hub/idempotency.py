"""Idempotency keys: the first call's result is kept with its effect; a repeat returns it.

The key is claimed (INSERT ... ON CONFLICT DO NOTHING RETURNING) before the effect, in
the same transaction. A concurrent duplicate's claim waits on the unique index until the
first commits, claims nothing, and then reads the stored result: it moves nothing.

A refusal is a first result too (OUT_OF_STOCK, NOT_FOUND, INSUFFICIENT_POINTS...): its
transaction rolls back with the claim, and `transaction` then keeps the refusal under
the key, so a repeat is refused alike, however the world changed meanwhile (a storefront
that retries a refused redemption after a restock does not buy it). Not kept: a refusal
of who asks (FORBIDDEN, CONSENT_REQUIRED: asked again with the right session, it is the
same request), of the input itself (INVALID_INPUT: the same input is refused alike
anyway), and PARTNER_UNAVAILABLE (try again: a retry is what it asks for).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, Protocol, TypeVar

import structlog
from sqlalchemy import bindparam, delete, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import validate
from hub.auth import Principal
from hub.db import KEYED, LATE_REFUSAL, Database, Prepared, insert_or_skip, utcnow
from hub.enums import ErrorCode
from hub.errors import DomainError, IdempotencyConflict, InvalidInput, RetryTransaction, spelled
from hub.models import IdempotencyRecord
from hub.models.base import table_of

log = structlog.get_logger(__name__)

Result = dict[str, Any]
T = TypeVar("T")

# Refusals that are not the request's first result (see the module's docstring).
_NOT_KEPT = {
    ErrorCode.INVALID_INPUT,
    ErrorCode.FORBIDDEN,
    ErrorCode.CONSENT_REQUIRED,
    ErrorCode.IDEMPOTENCY_CONFLICT,
    ErrorCode.PARTNER_UNAVAILABLE,
}
REFUSED = "refused"  # in a stored result: the refusal the key's first call got
_KEYED_AS = "_hub_keyed_as"  # on a refusal raised by `once`'s effect: its key's record

# The keys the hub derives for its own calls to programs: a hub id (see hub.ids), a
# colon, a step (`rdm_…:hold`, `cnv_…:debit`). No client key may take this form, in any
# case (a store or a partner that compares keys without case would match them), so a
# look-up by one never finds a client's entry.
HUB_CALL_KEY = re.compile(r"[a-z]+_[0-9a-z]{26}:", re.IGNORECASE)


def _canonical(value: object) -> object:
    """1000 and 1000.00 are the same amount: a retry that spells it otherwise is the same
    request."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def request_hash(operation: str, request: dict[str, Any]) -> str:
    canonical = json.dumps({"op": operation, "input": request}, sort_keys=True, default=_canonical)
    return hashlib.sha256(canonical.encode()).hexdigest()


_CLAIMED = ("scope", "key", "operation", "request_hash", "result", "created_at")


@functools.cache
def _claim(dialect: str) -> Prepared:
    """The claim of a key in this dialect, built once: an INSERT of its record that does
    nothing where the key is held, returning the new record's id."""
    table = table_of(IdempotencyRecord)
    return Prepared(
        insert_or_skip(dialect, IdempotencyRecord)
        .values({name: bindparam(name, type_=table.c[name].type) for name in _CLAIMED})
        .returning(table.c.id)
    )


@functools.lru_cache(maxsize=32)
def _claim_then(first: Prepared) -> Prepared:
    """The claim of a key (PostgreSQL) and, once it is claimed, `first`: the effect's first
    read (a lock), one statement. The read is a LATERAL subquery of the claim's row, so
    that it runs after the claim (a concurrent duplicate waits at the key, as with two
    statements, and never holds the read's locks while it waits) and not at all for a key
    already held; each row is the claim's id (`claimed_`) and a row of the read (NULLs
    where it found none)."""
    table = table_of(IdempotencyRecord)
    claim = (
        insert_or_skip("postgresql", IdempotencyRecord)
        .values({name: bindparam(name, type_=table.c[name].type) for name in _CLAIMED})
        .returning(table.c.id.label("claimed_"))
        .cte("claim")
    )
    read = first.statement.lateral("first")
    return Prepared(
        select(claim.c.claimed_, *read.c).select_from(claim.outerjoin(read, true())),
        autoflush=True,
    )


# On a session's info: the rows of the effect's first read, read with the key's claim
# (_claim_then), with the statement and parameters it stands for (first_read).
_FIRST = "idempotency_first_read"
# What an effect's first read is: its statement and parameters.
First = tuple[Prepared, Mapping[str, Any]]


async def first_read(
    session: AsyncSession, statement: Prepared, params: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The rows of `statement` with `params`: those the key's claim read with it, once, or
    else read now."""
    found: tuple[Prepared, Mapping[str, Any], list[Mapping[str, Any]]] | None = session.info.get(
        _FIRST
    )
    if found is None or found[0] is not statement or found[1] != params:
        return await statement.all(session, params)
    del session.info[_FIRST]
    return found[2]


REPLAYED = "idempotency_replayed"  # on a session's info: a request was answered from its key


def replayed(session: AsyncSession) -> bool:
    """Whether this transaction answered a retried request from its key's stored result
    (the effect did not run): its saga is not advanced by the retry, which answers it as
    it stands; the first request, and then the sweeper, advance it, so that a client's
    retries do not each call the partner nor count as attempts."""
    return bool(session.info.get(REPLAYED))


async def once(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    operation: str,
    request: dict[str, Any],
    effect: Callable[[], Awaitable[Result]],
    known: Result | None = None,
    first: First | None = None,
) -> Result:
    """Run `effect` once per (scope, key); later calls with the same input get its result.

    `known`: the result, when the caller knows it before the effect runs (the id it will
    give the row it makes): it is stored with the claim, one statement fewer. The effect
    must then return it. `first`: the effect's first read (its lock of the member, say),
    sent with the claim on PostgreSQL, one round trip fewer; the effect takes its rows with
    first_read. Only for a read the caller may make whoever asks (its permission checked)."""
    key = validate.text(key, ("idempotency_key",), max_length=200)
    if HUB_CALL_KEY.match(key):
        raise InvalidInput(
            f"idempotencyKey {key!r} has the form of the hub's own call keys "
            "('<hub id>:<step>'); choose another.",
            field=("idempotency_key",),
        )
    digest = request_hash(operation, request)
    # Claim the key in one statement. A concurrent duplicate's INSERT waits for the first
    # transaction and then claims nothing (or, under SQLite's single writer, runs after it).
    record = {
        "scope": scope,
        "key": key,
        "operation": operation,
        "request_hash": digest,
        "result": json.dumps(known or {}, default=str),
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    if first is not None and dialect == "postgresql":
        statement, params = first
        rows = await _claim_then(statement).all(session, {**params, **record})
        claimed = rows[0]["claimed_"] if rows else None
        read: list[Mapping[str, Any]] = []
        for row in rows:
            values = {k: v for k, v in row.items() if k != "claimed_"}
            if any(v is not None for v in values.values()):
                read.append(values)
        session.info[_FIRST] = (statement, params, read)
    else:
        claimed = await _claim(dialect).scalar(session, record)
    session.info[KEYED] = True  # run again after an unknown commit, it cannot act twice
    if claimed is None:
        found = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        )
        if found is None:  # claimed by a transaction that has since rolled back
            raise RetryTransaction()
        if found.request_hash != digest:
            raise IdempotencyConflict(
                f"idempotencyKey {key!r} was used for a different request; use a new key "
                "for a new request.",
                field=("idempotency_key",),
            )
        stored: Result = json.loads(found.result)
        if REFUSED in stored:
            raise _refusal(stored[REFUSED])
        session.info[REPLAYED] = True
        return stored

    def keep(refusal: DomainError) -> None:
        if refusal.code not in _NOT_KEPT:
            record = {"scope": scope, "key": key, "operation": operation, "request_hash": digest}
            setattr(refusal, _KEYED_AS, record)

    # A refusal of the effect's deferred writes, raised as they are sent (a reward sold out
    # by the last statement), is kept as one the effect raised.
    session.info[LATE_REFUSAL] = keep
    try:
        result = await effect()
    except DomainError as refusal:
        keep(refusal)
        raise
    if known is not None:
        assert result == known, (result, known)
        return result
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == claimed)
        .values(result=json.dumps(result, default=str))
        .execution_options(synchronize_session=False)
    )
    return result


def _refusal(kept: Mapping[str, Any]) -> DomainError:
    """The refusal a key's first call got, as it was raised."""
    field = kept.get("field")
    return DomainError(
        kept["message"],
        code=ErrorCode(kept["code"]),
        field=tuple(field) if field is not None else None,
        said=kept.get("said"),
    )


async def transaction(db: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`db.transaction(work)` for work that claims a caller's key (`once`): a refusal of
    its effect is kept under the key, in a transaction of its own (the work's rolled back
    with its claim), and raised. A concurrent repeat that claimed the key meanwhile keeps
    its own result."""
    try:
        return await db.transaction(work)
    except DomainError as refusal:
        record = getattr(refusal, _KEYED_AS, None)
        if record is not None:
            kept = {
                "code": str(refusal.code),
                "message": refusal.message,
                "field": list(refusal.field) if refusal.field is not None else None,
                "said": refusal.said,
            }
            try:
                await db.transaction(lambda session: _keep(session, record, kept))
            except Exception as error:  # the caller is still told its refusal
                log.warning("could not keep a refusal under its key", error=type(error).__name__)
        raise


async def _keep(session: AsyncSession, record: Mapping[str, Any], refusal: Result) -> None:
    await _claim(session.get_bind().dialect.name).scalar(
        session,
        {**record, "result": json.dumps({REFUSED: refusal}), "created_at": utcnow()},
    )


class KeyedRequest(Protocol):
    """A caller's request as a frozen dataclass that carries its idempotency key."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def idempotency_key(self) -> str: ...


def asked(request: KeyedRequest, named: Mapping[str, str]) -> dict[str, Any]:
    """What a request asks, the input its key stands for: every field but the key, under
    the contract's name (`member_id` as `memberId`; `named` gives those `spelled` does not,
    `from_code` as `from`)."""
    return {
        named.get(f.name) or spelled(f.name): getattr(request, f.name)
        for f in dataclasses.fields(request)
        if f.name != "idempotency_key"
    }


async def once_for(
    session: AsyncSession,
    principal: Principal,
    operation: str,
    request: KeyedRequest,
    effect: Callable[[], Awaitable[Result]],
    *,
    known: Result | None = None,
    named: Mapping[str, str] | None = None,
    first: First | None = None,
) -> Result:
    """`once` for a caller's request: in the caller's scope, under the request's key,
    standing for everything else the request asks (`asked`)."""
    return await once(
        session,
        scope=principal.idempotency_scope,
        key=request.idempotency_key,
        operation=operation,
        request=asked(request, named or {}),
        effect=effect,
        known=known,
        first=first,
    )


async def purge(session: AsyncSession, older_than_days: int) -> int:
    """Forget keys older than the retention (at least 7 days)."""
    cutoff = utcnow() - dt.timedelta(days=max(older_than_days, 7))
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
