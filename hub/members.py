"""Members: enrollment in programs, lookups, and what each caller may see."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory
from hub import consent, validate
from hub.auth import Principal
from hub.db import (
    Database,
    Prepared,
    adopted,
    columns_of,
    labelled_join,
    row_by,
    rows_by,
    utcnow,
)
from hub.enums import AccountKind, Role
from hub.errors import AlreadyExists, FieldPath, InvalidInput, NotFound
from hub.idempotency import First, first_read
from hub.ids import new_id
from hub.ledger.core import locked_accounts
from hub.ledger.points import keep_open_lots, open_lots_with_lock
from hub.member_view import AccountView
from hub.merchants import get_program
from hub.models import Account, Entry, Member, Posting, Program
from hub.models.base import table_of
from hub.permissions import reading_merchant, require_merchant


@dataclass(frozen=True)
class Enrollment:
    program: str
    external_ref: str
    display_name: str
    phone: str | None = None
    member_id: str | None = None
    birth_date: dt.date | None = None


@dataclass(frozen=True)
class _Checked:
    program: Program
    ref: str
    name: str
    phone: str | None
    member: Member | None  # the member to link, or None for a new one


EARLIEST_BIRTH = dt.date(1900, 1, 1)


async def _check(session: AsyncSession, principal: Principal, data: Enrollment) -> _Checked:
    """Every check of an enrollment that needs no partner, consent first for a link."""
    program = await get_program(session, data.program, ("program",))
    require_merchant(principal, program.merchant_id, ("program",))
    if data.member_id:
        consent.require_link_consent(principal, data.member_id, ("member_id",))
    ref = membership_number(data.external_ref)
    name = validate.text(data.display_name, ("display_name",), max_length=200)
    phone = None
    if data.phone is not None and data.phone.strip():
        phone = validate.phone(data.phone, ("phone",))
    if data.birth_date is not None and not EARLIEST_BIRTH <= data.birth_date <= utcnow().date():
        raise InvalidInput("birthDate must be a past date after 1900.", field=("birth_date",))
    taken = await session.scalar(
        select(Account.id).where(Account.program_code == program.code, Account.external_ref == ref)
    )
    if taken is not None:
        raise AlreadyExists(
            f"Membership number {ref!r} is already enrolled in {program.code}.",
            field=("external_ref",),
        )
    member = None
    if data.member_id:
        member = await session.get(Member, data.member_id)
        if member is None:
            raise NotFound(f"No member has id {data.member_id!r}.", field=("member_id",))
        if await account_of(session, member.id, program.code) is not None:
            raise AlreadyExists(
                f"Member {member.id} is already enrolled in {program.code}.",
                field=("member_id",),
            )
    return _Checked(program, ref, name, phone, member)


async def enroll(session: AsyncSession, principal: Principal, data: Enrollment) -> Member:
    """Open a member's account in a program: a new member, or a link of an existing one
    (with that member's consent). The partner check of connected programs is
    `enroll_confirmed`'s."""
    checked = await _check(session, principal, data)
    member = checked.member
    if member is None:
        member = Member(
            id=new_id("mbr"),
            display_name=checked.name,
            phone=checked.phone,
            birth_date=data.birth_date,
        )
        session.add(member)
        await session.flush()
    elif data.birth_date is not None and member.birth_date is None:
        member.birth_date = data.birth_date
    session.add(
        Account(
            program_code=checked.program.code,
            kind=AccountKind.MEMBER,
            member_id=member.id,
            external_ref=checked.ref,
        )
    )
    await session.flush()
    return member


async def enroll_confirmed(
    db: Database, factory: ConnectorFactory, principal: Principal, data: Enrollment
) -> Member:
    """enrollMember: the checks, then for a connected program the partner's confirmation of
    the membership number and name (outside any transaction), then the enrollment."""
    async with db.read() as session:
        checked = await _check(session, principal, data)
    if not factory.is_local(checked.program):
        await consent.confirm_membership(factory, checked.program, checked.ref, checked.name, ())
    return await db.transaction(lambda s: enroll(s, principal, data))


async def account_of(session: AsyncSession, member_id: str, program_code: str) -> Account | None:
    """A member's account in a program, read once per transaction (a conversion asks often)."""
    return (await accounts_of(session, member_id, [program_code])).get(program_code)


def _kept_accounts(session: AsyncSession) -> dict[tuple[str, str], Account]:
    """The member accounts this transaction has read, by (member, program)."""
    kept: dict[tuple[str, str], Account] = session.info.setdefault("account_of", {})
    return kept


def remember_account(session: AsyncSession, account: Account) -> None:
    """Keep an account read some other way for account_of in this transaction."""
    cache = _kept_accounts(session)
    if account.member_id is not None:
        cache[(account.member_id, account.program_code)] = account


_MEMBERS = table_of(Member)
_ACCOUNT_ROWS = table_of(Account)


def _program_binds(count: int) -> list[Any]:
    """The bind parameters program_0 .. program_{count-1}: a read's IN list of programs."""
    type_ = _ACCOUNT_ROWS.c.program_code.type
    return [bindparam(f"program_{n}", type_=type_) for n in range(count)]


@functools.cache
def _accounts_in(programs: int, lock: bool) -> Prepared:
    """A member's accounts in `programs` programs; with `lock`, FOR UPDATE in id order."""
    codes = _program_binds(programs)
    query = select(*_ACCOUNT_ROWS.c).where(
        _ACCOUNT_ROWS.c.member_id == bindparam("member", type_=_ACCOUNT_ROWS.c.member_id.type),
        _ACCOUNT_ROWS.c.program_code.in_(codes),
    )
    return Prepared(
        query.order_by(_ACCOUNT_ROWS.c.id).with_for_update(key_share=True) if lock else query,
        autoflush=True,
    )


@functools.cache
def _member_and_accounts_locked(programs: int, postgres: bool) -> Prepared:
    """The member's row and its accounts in `programs` programs, locked (FOR UPDATE, the
    accounts in id order), as one Core read: each column labelled by its table. On
    PostgreSQL the open lots of the first program's account (the one a conversion or a
    redemption debits) come with it (open_lots_with_lock), for the debit not to read them
    again."""
    member = bindparam("member", type_=_MEMBERS.c.id.type)
    codes = _program_binds(programs)
    on = _ACCOUNT_ROWS.c.member_id == _MEMBERS.c.id
    query = labelled_join(_MEMBERS, "m_", _ACCOUNT_ROWS, "a_", on).where(
        _MEMBERS.c.id == member, _ACCOUNT_ROWS.c.program_code.in_(codes)
    )
    locked: list[Any] = []
    if postgres:
        lots, columns = open_lots_with_lock(_ACCOUNT_ROWS, _ACCOUNT_ROWS.c.program_code == codes[0])
        query = query.add_columns(*columns).join(lots, true())
        locked = [_MEMBERS, _ACCOUNT_ROWS]  # not the lots' aggregate
    return Prepared(
        query.order_by(_ACCOUNT_ROWS.c.id).with_for_update(key_share=True, of=locked or None),
        autoflush=True,
    )


def locking_read(member_id: str, program_codes: Sequence[str], *, postgres: bool = True) -> First:
    """lock_member_and_accounts' read: its statement and parameters (for the key's claim to
    send with it, on PostgreSQL: idempotency.once's `first`)."""
    params: dict[str, Any] = {"member": member_id}
    params.update({f"program_{n}": code for n, code in enumerate(program_codes)})
    return _member_and_accounts_locked(len(program_codes), postgres), params


async def lock_member_and_accounts(
    session: AsyncSession, member_id: str, program_codes: Sequence[str]
) -> Member | None:
    """Lock the member's row and its accounts in these programs in one read (FOR UPDATE:
    the member's row, then the accounts in id order, as a read of the member then
    accounts_of(lock=True) would), keeping the accounts for accounts_of. The member, or
    None when the read found no account of it in these programs (no such member, or none
    enrolled there: the caller reads them apart, to say which). A hot path's read: Core,
    its rows made the session's instances without the ORM's loading (db.adopted)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    statement, params = locking_read(member_id, program_codes, postgres=postgres)
    rows = await first_read(session, statement, params)
    if not rows:
        return None
    cache = _kept_accounts(session)
    held = locked_accounts(session)
    for row in rows:
        account = adopted(session, Account, columns_of(row, "a_"))
        cache[(member_id, account.program_code)] = account
        held[account.id] = account
        if postgres:
            keep_open_lots(session, account.id, row)
    return adopted(session, Member, columns_of(rows[0], "m_"))


async def accounts_of(
    session: AsyncSession, member_id: str, program_codes: Sequence[str], *, lock: bool = False
) -> dict[str, Account]:
    """A member's accounts in these programs (those it has), by program; the ones this
    transaction has not read yet in one statement. `lock`: read them locked (FOR UPDATE, in
    id order), as the ledger's Journal.lock would, which then need not read them again."""
    cache = _kept_accounts(session)
    held = locked_accounts(session)
    missing = [
        code
        for code in program_codes
        if (member_id, code) not in cache or (lock and cache[(member_id, code)].id not in held)
    ]
    if missing:
        params: dict[str, Any] = {"member": member_id}
        params.update({f"program_{n}": code for n, code in enumerate(missing)})
        for row in await _accounts_in(len(missing), lock).all(session, params):
            account = adopted(session, Account, row)
            cache[(member_id, account.program_code)] = account
            if lock:
                held[account.id] = account
    return {code: cache[(member_id, code)] for code in program_codes if (member_id, code) in cache}


def membership_number(value: str) -> str:
    """A membership number as enrollment takes it and a look-up reads it: invisible
    characters around it stripped, none inside (a reference), at most 80 characters."""
    return validate.text(value, ("external_ref",), max_length=80, reference=True)


async def member_by_ref(
    session: AsyncSession,
    program_code: str,
    external_ref: str,
    principal: Principal | None = None,
) -> Member | None:
    """The member holding membership number `external_ref` in the program. A MERCHANT
    looks numbers up in its own programs only: a number at another merchant's program
    would tell it where its members are enrolled and as whom (`sees_member` then decides
    the rest). The number is read as enrollment reads it (invisible characters around it
    stripped); one no enrollment would take finds no one."""
    try:
        external_ref = membership_number(external_ref)
    except InvalidInput:
        return None
    query = (
        select(Member)
        .join(Account, Account.member_id == Member.id)
        .where(Account.program_code == program_code, Account.external_ref == external_ref)
    )
    if principal is not None and principal.role == Role.MERCHANT:
        query = query.join(Program, Program.code == Account.program_code).where(
            Program.merchant_id == principal.merchant_id
        )
    return await session.scalar(query)


async def members_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, Member]:
    return await row_by(session, Member, Member.id, ids)


async def accounts_by_member(
    session: AsyncSession, member_ids: Sequence[str]
) -> dict[str, list[Account]]:
    return await rows_by(session, Account, Account.member_id, member_ids, Account.program_code)


async def own_program_codes(session: AsyncSession, principal: Principal) -> list[str]:
    """The codes of the programs the caller's merchant runs (its GREEN one too)."""
    if principal.merchant_id is None:
        return []
    return list(
        await session.scalars(
            select(Program.code).where(Program.merchant_id == principal.merchant_id)
        )
    )


def account_visible(
    principal: Principal, account: Account | AccountView, own_programs: Collection[str]
) -> bool:
    """ADMIN and the member see every account; a merchant sees its own programs' only, and
    so does a session a merchant minted (`own_programs`: the programs of
    `permissions.reading_merchant`)."""
    if principal.role == Role.ADMIN:
        return True
    if principal.role == Role.STOREFRONT:
        if principal.member_id is None or principal.member_id != account.member_id:
            return False
        return reading_merchant(principal) is None or account.program_code in own_programs
    if principal.role == Role.MERCHANT:
        return account.program_code in own_programs
    return False


def sees_member(
    principal: Principal, member_id: str, held: Collection[str], own: Collection[str]
) -> bool:
    """The one rule of who sees a member, for a member already at hand (`visible_members`
    is the same rule as a query): ADMIN; the member itself, through its session; a merchant
    one of whose programs (`own`) the member holds (`held`). Nobody else, FINANCE included."""
    if principal.role == Role.ADMIN:
        return True
    if principal.role == Role.STOREFRONT:
        return principal.member_id == member_id
    if principal.role == Role.MERCHANT:
        return not set(held).isdisjoint(own)
    return False


async def visible_members(
    session: AsyncSession, principal: Principal, member_ids: Sequence[str]
) -> dict[str, Member]:
    """The one rule of who sees a member, for many members in one query: ADMIN; the
    member itself, through its session; a merchant one of whose programs the member
    holds. Nobody else, FINANCE included."""
    query = select(Member)
    if principal.role == Role.ADMIN:
        query = query.where(Member.id.in_(member_ids))
    elif principal.role == Role.STOREFRONT and principal.member_id in member_ids:
        query = query.where(Member.id == principal.member_id)
    elif principal.role == Role.MERCHANT and principal.merchant_id is not None:
        holds_own_program = (
            select(Account.id)
            .join(Program, Program.code == Account.program_code)
            .where(Account.member_id == Member.id, Program.merchant_id == principal.merchant_id)
            .exists()
        )
        query = query.where(Member.id.in_(member_ids), holds_own_program)
    else:
        return {}
    return {m.id: m for m in await session.scalars(query)}


async def visible_member(
    session: AsyncSession, principal: Principal, member_id: str
) -> Member | None:
    """The member if this caller may see it: ADMIN, the member, or a merchant it joined."""
    return (await visible_members(session, principal, [member_id])).get(member_id)


async def require_visible(
    session: AsyncSession, principal: Principal, member_id: str, field: FieldPath
) -> Member:
    """The member, or NotFound when it does not exist or is not this caller's to see."""
    member = await visible_member(session, principal, member_id)
    if member is None:
        raise NotFound(f"No member with id {member_id!r} is visible to this key.", field=field)
    return member


async def member_posting(session: AsyncSession, entry_id: int) -> tuple[Entry, Posting]:
    """An entry with its posting on the member's account (the member's side of it)."""
    row = (
        await session.execute(
            select(Entry, Posting)
            .join(Posting, Posting.entry_id == Entry.id)
            .join(Account, Account.id == Posting.account_id)
            .where(Entry.id == entry_id, Account.kind == AccountKind.MEMBER)
        )
    ).first()
    if row is None:
        raise NotFound(f"No member entry {entry_id}.")
    return row[0], row[1]


async def remember_partner_balances(session: AsyncSession, found: Mapping[int, Any]) -> None:
    """Keep the partners' latest answers (objects with points and as_of) per account id."""
    for account_id, balance in found.items():
        await session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(partner_balance=balance.points, partner_balance_at=balance.as_of)
        )
