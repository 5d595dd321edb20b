"""One chunk of an import, applied as accruePoints would apply each line, but set-based.

In one transaction: take the next staged lines of the job (in line order), look up their
accounts (locked, in id order), the orders already accrued and the promotions of the
period, decide each line in order exactly as accruePoints decides a call (the member,
the order earning once, the points with promotions, the caps), then write every accepted
line with a few multi-row statements (entries, postings, lots, balances, events), the
rejected ones into the job's errors, and delete the chunk's staged lines. A crash before
the commit leaves the chunk staged; after it, the chunk is gone from the queue: a resumed
job applies each line exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub import promotions
from hub.accrual import points_for
from hub.config import Settings
from hub.db import utcnow
from hub.enums import AccountKind, EntryKind, ErrorCode, ImportStatus, WebhookEvent
from hub.errors import RetryTransaction
from hub.imports import bulk
from hub.ledger.points import expiry_of
from hub.models import (
    Account,
    Entry,
    ImportJob,
    ImportRejection,
    ImportRow,
    Lot,
    Member,
    OutboxEvent,
    Posting,
    Program,
    Promotion,
)
from hub.validate import MAX_BALANCE, MAX_POINTS_PER_MOVEMENT
from hub.webhooks import outbox

ENTRY_COLUMNS = (
    "id",
    "kind",
    "program_code",
    "member_id",
    "actor",
    "idempotency_key",
    "occurred_at",
    "business_date",
    "reference",
    "memo",
)
POSTING_COLUMNS = ("entry_id", "account_id", "amount", "balance_after")
LOT_COLUMNS = ("account_id", "entry_id", "points", "remaining", "expires_at", "created_at")
EVENT_COLUMNS = (
    "event_id",
    "merchant_id",
    "type",
    "payload",
    "dedupe_key",
    "fanned_out",
    "created_at",
)
CENT = Decimal("0.01")
ACCRUAL = EntryKind.ACCRUAL.value


class LeaseLost(Exception):
    """Another process holds the job now (this one was too slow, or the job ended)."""


@dataclass
class Chunk:
    """What one chunk did."""

    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    points: int = 0
    finished: bool = False


@dataclass
class _Account:
    id: int
    member_id: str
    external_ref: str | None
    balance: int


@dataclass
class _Decided:
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    postings: list[tuple[Any, ...]] = field(default_factory=list)
    lots: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    balances: dict[int, int] = field(default_factory=dict)  # account id -> new balance
    points: int = 0


@dataclass(frozen=True, slots=True)
class _Accepted:
    line: int
    account: _Account
    order_ref: str
    amount: Decimal
    occurred: dt.datetime
    points: int
    balance: int
    labels: str


async def apply_chunk(
    session: AsyncSession, settings: Settings, job_id: str, holder: str, limit: int
) -> Chunk:
    """Apply the job's next `limit` staged lines, or finish the job when none is left."""
    now = utcnow()
    claimed = (
        await session.execute(
            update(ImportJob)
            .where(
                ImportJob.id == job_id,
                ImportJob.lease_holder == holder,
                ImportJob.status == ImportStatus.RUNNING.value,
            )
            .values(lease_expires_at=now + dt.timedelta(seconds=settings.import_lease_seconds))
            .returning(ImportJob.program_code, ImportJob.actor)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if claimed is None:
        raise LeaseLost(job_id)
    program_code, actor = claimed
    staged = (
        await session.execute(
            select(
                ImportRow.line,
                ImportRow.member_id,
                ImportRow.external_ref,
                ImportRow.order_ref,
                ImportRow.amount,
                ImportRow.occurred_at,
            )
            .where(ImportRow.job_id == job_id)
            .order_by(ImportRow.line)
            .limit(limit)
        )
    ).all()
    if not staged:
        await _finish(session, job_id, now)
        return Chunk(finished=True)
    program = await session.get(Program, program_code)
    assert program is not None
    decided = await _decide(session, settings, job_id, program, actor, staged, now)
    try:
        await _write(session, decided)
    except IntegrityError as exc:  # an accruePoints of the same order committed meanwhile
        raise RetryTransaction() from exc
    await session.execute(
        delete(ImportRow)
        .where(ImportRow.job_id == job_id, ImportRow.line <= staged[-1].line)
        .execution_options(synchronize_session=False)
    )
    accepted, rejected = len(decided.entries), len(decided.rejects)
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(
            processed=ImportJob.processed + len(staged),
            accepted=ImportJob.accepted + accepted,
            rejected=ImportJob.rejected + rejected,
            points=ImportJob.points + decided.points,
            failures=0,
        )
        .execution_options(synchronize_session=False)
    )
    return Chunk(len(staged), accepted, rejected, decided.points)


async def _finish(session: AsyncSession, job_id: str, now: dt.datetime) -> None:
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(
            status=ImportStatus.COMPLETED.value,
            finished_at=now,
            lease_holder=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )


async def _decide(
    session: AsyncSession,
    settings: Settings,
    job_id: str,
    program: Program,
    actor: str,
    staged: Sequence[Any],
    now: dt.datetime,
) -> _Decided:
    """Each line in order, with accruePoints' rules and messages."""
    code = program.code
    by_member, by_ref = await _accounts(session, code, staged)
    known_members = await _known_members(session, staged, by_member)
    accrued = set(
        await session.scalars(
            select(Entry.reference).where(
                Entry.program_code == code,
                Entry.kind == ACCRUAL,
                Entry.reference.in_(list({r.order_ref for r in staged})),
            )
        )
    )
    multipliers = await _Multipliers.load(session, code, staged)
    issued = await session.scalar(
        select(Account.id).where(
            Account.program_code == code,
            Account.kind == AccountKind.ISSUED.value,
            Account.member_id.is_(None),
        )
    )
    assert issued is not None, f"program {code} has an issued account"
    rate, months = program.accrual_rate, program.expiry_months
    out = _Decided()
    accepted: list[_Accepted] = []
    for row in staged:
        line, member_id, external_ref, order_ref, amount, occurred = row

        def reject(code_: ErrorCode, message: str, line: int = line) -> None:
            out.rejects.append((job_id, line, code_.value, message))

        account = by_member.get(member_id) if member_id else by_ref.get(external_ref)
        if account is None:
            if member_id and member_id not in known_members:
                reject(ErrorCode.NOT_FOUND, f"No member has id {member_id!r}.")
            elif member_id:
                reject(
                    ErrorCode.NOT_FOUND,
                    f"Member {member_id} is not enrolled in {code}; enroll them first.",
                )
            else:
                reject(
                    ErrorCode.NOT_FOUND, f"No member of {code} has externalRef {external_ref!r}."
                )
            continue
        if member_id and external_ref and account.external_ref != external_ref:
            reject(
                ErrorCode.INVALID_INPUT,
                f"memberId {member_id} and externalRef {external_ref!r} name different members.",
            )
            continue
        if order_ref in accrued:
            reject(
                ErrorCode.ALREADY_EXISTS,
                f"Order {order_ref!r} has already earned points in {code}.",
            )
            continue
        multiplier, labels = multipliers.at(occurred)
        amount = amount.quantize(CENT)
        points = points_for(amount, rate, multiplier)
        if points < 1:
            reject(
                ErrorCode.INVALID_INPUT,
                f"{amount} at {rate} points per unit earns no whole point.",
            )
            continue
        if points > MAX_POINTS_PER_MOVEMENT:
            reject(
                ErrorCode.INVALID_INPUT,
                f"This purchase would earn {points:,} points; one accrual earns at most "
                f"{MAX_POINTS_PER_MOVEMENT:,}.",
            )
            continue
        balance = account.balance + points
        if balance > MAX_BALANCE:
            reject(
                ErrorCode.INVALID_INPUT,
                f"Crediting {points:,} points would take the balance of {account.balance:,} "
                f"past {MAX_BALANCE:,}, the most a balance can hold; spend or convert "
                "points first.",
            )
            continue
        account.balance = balance
        accrued.add(order_ref)
        accepted.append(
            _Accepted(line, account, order_ref, amount, occurred, points, balance, labels)
        )
    if not accepted:
        return out
    ids = await _entry_ids(session, len(accepted))
    listened = await outbox.listened(session, WebhookEvent.POINTS_ACCRUED, program.merchant_id)
    business_date = settings.business_date
    for entry_id, a in zip(ids, accepted, strict=True):
        occurred, points = a.occurred, a.points
        out.entries.append(
            (
                entry_id,
                ACCRUAL,
                code,
                a.account.member_id,
                actor,
                f"{job_id}:{a.line}",
                occurred,
                business_date(occurred),
                a.order_ref,
                f"purchase of {a.amount}" + (f" ({a.labels})" if a.labels else ""),
            )
        )
        out.postings.append((entry_id, a.account.id, points, a.balance))
        out.postings.append((entry_id, issued, -points, None))
        out.lots.append(
            (a.account.id, entry_id, points, points, expiry_of(occurred, months), occurred)
        )
        out.balances[a.account.id] = a.balance
        out.points += points
        if listened:
            out.events.append(
                outbox.event_row(
                    WebhookEvent.POINTS_ACCRUED,
                    program.merchant_id,
                    {
                        "memberId": a.account.member_id,
                        "program": code,
                        "points": points,
                        "orderRef": a.order_ref,
                        "entryId": str(entry_id),
                        "importJobId": job_id,
                    },
                    now,
                )
            )
    return out


async def _write(session: AsyncSession, decided: _Decided) -> None:
    if decided.entries:
        await bulk.insert_rows(session, Entry.__table__, ENTRY_COLUMNS, decided.entries)  # type: ignore[arg-type]
        await bulk.insert_rows(session, Posting.__table__, POSTING_COLUMNS, decided.postings)  # type: ignore[arg-type]
        await bulk.insert_rows(session, Lot.__table__, LOT_COLUMNS, decided.lots)  # type: ignore[arg-type]
        await bulk.set_column(
            session,
            Account.__table__,  # type: ignore[arg-type]
            "balance",
            sorted(decided.balances.items()),
        )
    if decided.events:
        rows = [tuple(e[c] for c in EVENT_COLUMNS) for e in decided.events]
        await bulk.insert_rows(session, OutboxEvent.__table__, EVENT_COLUMNS, rows)  # type: ignore[arg-type]
    if decided.rejects:
        await bulk.insert_rows(
            session,
            ImportRejection.__table__,  # type: ignore[arg-type]
            ("job_id", "line", "code", "message"),
            decided.rejects,
        )


async def _accounts(
    session: AsyncSession, code: str, staged: Sequence[Any]
) -> tuple[dict[str, _Account], dict[str, _Account]]:
    """The chunk's member accounts, locked in id order (PostgreSQL), by member and by ref."""
    member_ids = {r.member_id for r in staged if r.member_id}
    refs = {r.external_ref for r in staged if r.external_ref and not r.member_id}
    wanted = []
    if member_ids:
        wanted.append(Account.member_id.in_(member_ids))
    if refs:
        wanted.append(Account.external_ref.in_(refs))
    rows = await session.execute(
        select(Account.id, Account.member_id, Account.external_ref, Account.balance)
        .where(
            Account.program_code == code,
            Account.kind == AccountKind.MEMBER.value,
            or_(*wanted),
        )
        .order_by(Account.id)
        .with_for_update()
    )
    by_member: dict[str, _Account] = {}
    by_ref: dict[str, _Account] = {}
    for account_id, member_id, external_ref, balance in rows:
        assert member_id is not None  # a MEMBER account
        account = _Account(account_id, member_id, external_ref, balance)
        by_member[member_id] = account
        if external_ref is not None:
            by_ref[external_ref] = account
    return by_member, by_ref


async def _known_members(
    session: AsyncSession, staged: Sequence[Any], by_member: dict[str, _Account]
) -> set[str]:
    """Of the members named but not enrolled, those who exist (for the right sentence)."""
    missing = {r.member_id for r in staged if r.member_id and r.member_id not in by_member}
    if not missing:
        return set()
    return set(await session.scalars(select(Member.id).where(Member.id.in_(missing))))


async def _entry_ids(session: AsyncSession, count: int) -> list[int]:
    """Ids for this chunk's entries. PostgreSQL: drawn from the entries' own sequence, as
    concurrent accruals draw theirs; SQLite: after the largest, as this transaction holds
    the database's write lock (BEGIN IMMEDIATE) until it commits."""
    if session.get_bind().dialect.name == "postgresql":
        drawn = await session.scalars(
            select(func.nextval(func.pg_get_serial_sequence("entries", "id"))).select_from(
                func.generate_series(1, count)
            )
        )
        return sorted(drawn)
    last = await session.scalar(select(func.coalesce(func.max(Entry.id), 0)))
    first = int(last or 0) + 1
    return list(range(first, first + count))


class _Multipliers:
    """The program's promotions of the chunk's period, and the multiplier at each moment."""

    def __init__(self, active: list[Promotion]) -> None:
        self.promotions = active
        self._cache: dict[frozenset[int], tuple[Decimal, str]] = {}

    @classmethod
    async def load(cls, session: AsyncSession, code: str, staged: Sequence[Any]) -> _Multipliers:
        earliest = min(r.occurred_at for r in staged)
        latest = max(r.occurred_at for r in staged)
        rows = await session.scalars(
            select(Promotion).where(
                Promotion.program_code == code,
                Promotion.starts_at <= latest,
                Promotion.ends_at > earliest,
            )
        )
        return cls(list(rows))

    def at(self, moment: dt.datetime) -> tuple[Decimal, str]:
        if not self.promotions:
            return Decimal(1), ""
        active = [p for p in self.promotions if p.starts_at <= moment < p.ends_at]
        key = frozenset(p.id for p in active)
        found = self._cache.get(key)
        if found is None:
            found = (
                promotions.accrual_multiplier(active),
                ", ".join(p.label for p in active),
            )
            self._cache[key] = found
        return found
