"""Green points: purchase lines tagged `green` earn the merchant's GREEN program beside its
usual points, and GREEN points pay for green-tagged rewards only.

A GREEN program is a program like any other (its own rate, expiry, point value, system
accounts and exchange rates), registered beside the merchant's primary one; what sets
it apart is where its points come from and what they may buy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub import promotions, tags, validate
from hub.enums import AccountKind, EntryKind, ProgramKind
from hub.errors import FieldPath, InvalidInput, InvalidState, RetryTransaction
from hub.ledger.core import Movement
from hub.ledger.points import Points, expiry_of
from hub.members import account_of
from hub.merchants import program_of_kind
from hub.models import Account, Entry, Program, Reward
from hub.models.mall import RewardLike

MAX_LINES = 200


@dataclass(frozen=True)
class PurchaseLine:
    sku: str
    amount: Decimal
    tags: list[str]


def is_green(program: Program) -> bool:
    return program.kind == ProgramKind.GREEN


def checked_lines(
    lines: Sequence[PurchaseLine] | None, amount: Decimal, field: FieldPath, max_amount: Decimal
) -> list[promotions.Line]:
    """The purchase as lines for accrual: the lines given (each checked, summing to the
    amount exactly), or the whole amount as one untagged line."""
    if lines is None:
        return [promotions.Line(amount)]
    if not lines:
        raise InvalidInput(
            "lines is empty: leave it out, or give the purchase's lines.", field=field
        )
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"At most {MAX_LINES} lines per purchase.", field=field)
    found = []
    for index, line in enumerate(lines):
        at = (*field, str(index))
        validate.text(line.sku, (*at, "sku"), max_length=120)
        validate.money(line.amount, (*at, "amount"), high=max_amount, positive=True)
        found.append(promotions.Line(line.amount, tuple(tags.checked(line.tags, (*at, "tags")))))
    total = sum((line.amount for line in found), Decimal(0))
    if total != amount:
        raise InvalidInput(
            f"The lines sum to {total}, the amount is {amount}: they must be equal.", field=field
        )
    return found


def request_lines(lines: Sequence[PurchaseLine] | None) -> list[dict[str, object]] | None:
    """The lines as the idempotency record compares them."""
    if lines is None:
        return None
    return [
        {"sku": line.sku, "amount": str(line.amount), "tags": sorted(line.tags)} for line in lines
    ]


def refuse_direct_accrual(program: Program, field: FieldPath) -> None:
    """GREEN points come only from green-tagged lines of a purchase in the primary program."""
    if is_green(program):
        raise InvalidInput(
            f"{program.code} is a GREEN program: its points are earned on the green-tagged "
            "lines of purchases accrued in the merchant's primary program.",
            field=field,
        )


@dataclass(frozen=True)
class GreenAccrual:
    program: str
    points: int
    entry: Entry | None


async def accrue_green(
    session: AsyncSession,
    primary: Program,
    member_id: str,
    lines: Sequence[promotions.Line],
    movement: Movement,
    occurred: dt.datetime,
    field: FieldPath,
) -> GreenAccrual | None:
    """Credit the merchant's GREEN program for the green-tagged lines, at its own rate,
    promotions and expiry; None when no line is green or the merchant runs no GREEN
    program. The member's
    GREEN account is opened on their first green purchase, under the membership number
    they hold in the primary program."""
    eco = [line for line in lines if tags.GREEN in line.tags]
    if not eco:
        return None
    green = await program_of_kind(session, primary.merchant_id, ProgramKind.GREEN)
    if green is None:
        return None
    active = await promotions.active(session, green.code, occurred)
    points = promotions.points_on(eco, green.accrual_rate, active)
    if points < 1:
        return GreenAccrual(program=green.code, points=0, entry=None)
    if points > validate.MAX_POINTS_PER_MOVEMENT:
        raise InvalidInput(
            f"The green lines would earn {points:,} {green.code} points; one accrual earns at "
            f"most {validate.MAX_POINTS_PER_MOVEMENT:,}.",
            field=field,
        )
    account = await _green_account(session, green, primary, member_id, field)
    labels = ", ".join(p.label for p in active if any(promotions.covers(p, x.tags) for x in eco))
    green_amount = sum((line.amount for line in eco), Decimal(0))
    entry = await Points(session).credit(
        account,
        points,
        EntryKind.ACCRUAL,
        AccountKind.ISSUED,
        Movement(
            actor=movement.actor,
            business_date=movement.business_date,
            occurred_at=movement.occurred_at,
            reference=movement.reference,
            memo=f"green lines of {green_amount}" + (f" ({labels})" if labels else ""),
            idempotency_key=movement.idempotency_key,
        ),
        expires_at=expiry_of(occurred, green.expiry_months),
    )
    return GreenAccrual(program=green.code, points=points, entry=entry)


async def _green_account(
    session: AsyncSession, green: Program, primary: Program, member_id: str, field: FieldPath
) -> Account:
    account = await account_of(session, member_id, green.code)
    if account is not None:
        return account
    own = await account_of(session, member_id, primary.code)
    assert own is not None, "the purchase's own account exists"
    taken = await session.scalar(
        select(Account.member_id).where(
            Account.program_code == green.code, Account.external_ref == own.external_ref
        )
    )
    if taken is not None:
        raise InvalidState(
            f"Membership number {own.external_ref!r} is another member's in {green.code}; "
            "enroll this member there under their own number first.",
            field=field,
        )
    account = Account(
        program_code=green.code,
        kind=AccountKind.MEMBER,
        member_id=member_id,
        external_ref=own.external_ref,
    )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError as exc:  # opened meanwhile (an enrollment): run again to find it
        raise RetryTransaction() from exc
    return account


def may_pay(program: Program, reward: RewardLike) -> bool:
    """GREEN points pay for green-tagged rewards only; other programs for any."""
    return not is_green(program) or tags.is_green(reward.tags)


def require_payable(program: Program, reward: Reward, field: FieldPath) -> None:
    if not may_pay(program, reward):
        raise InvalidInput(
            f"{program.code} is a GREEN program: its points pay only for rewards tagged "
            f"'green' (the mall's green zone), and {reward.title} is not one.",
            field=field,
        )


def refuse_conversion(source: Program, target: Program, field: FieldPath) -> None:
    """GREEN points are neither bought nor sold: converting them into another program
    would spend them beyond green rewards, converting into them would earn them without
    a green purchase."""
    for program, side in ((source, "from"), (target, "to")):
        if is_green(program):
            raise InvalidInput(
                f"{program.code} is a GREEN program: its points are earned on green purchases "
                "and spent on green rewards only, never converted.",
                field=(*field, side),
            )
