"""accruePoints: points earned for a real purchase, in the merchant's own program, and
for its green-tagged lines in the merchant's GREEN program (hub.green), in one entry each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import eligibility, green, idempotency, promotions, validate
from hub.auth import Principal
from hub.caches import Loyalty
from hub.config import Settings
from hub.db import utcnow
from hub.enums import AccountKind, EntryKind, WebhookEvent
from hub.errors import AlreadyExists, BalanceLimit, InvalidInput, InvalidState, NotFound
from hub.ledger.core import Movement, locked_accounts
from hub.ledger.points import Points, expire_overdue, expiry_of
from hub.members import remember_account
from hub.merchants import get_program, is_connected
from hub.models import Account, Entry, Member, Program, Promotion, Tier
from hub.permissions import require_merchant
from hub.tiers import standing
from hub.tiers.ladder import ladder
from hub.webhooks import outbox

MAX_AMOUNT = Decimal(100_000_000)  # money per purchase


@dataclass(frozen=True)
class Purchase:
    member_id: str
    program: str
    order_ref: str
    amount: Decimal
    occurred_at: dt.datetime | None
    idempotency_key: str
    lines: Sequence[green.PurchaseLine] | None = None


@dataclass(frozen=True)
class Accrued:
    entry_id: int
    points: int
    green_points: int | None = None
    green_entry_id: int | None = None
    # When this call made the entry (not a replay): the entry and the member's balance
    # after it, so that the answer needs no read back.
    made: tuple[Entry, int] | None = None


def applying(
    active: Sequence[Promotion],
    profile: eligibility.Profile | None,
    day: dt.date,
    lines: Sequence[promotions.Line],
) -> list[Promotion]:
    """The active promotions a purchase earns: those the member is eligible for on `day`
    (their local date) that cover one of its lines' tags (accruePoints and imports alike)."""
    return [
        p
        for p in active
        if eligibility.applies(p, profile, day)
        and any(promotions.covers(p, line.tags) for line in lines)
    ]


def multiplier_of(tier: Tier | None) -> Decimal:
    """The member's tier multiplier, on which promotions stack (x1 below the first tier)."""
    return tier.accrual_multiplier if tier is not None else Decimal(1)


def memo_labels(
    tier: Tier | None,
    applied: Sequence[Promotion],
    lines: Sequence[promotions.Line] = (promotions.Line(Decimal(0)),),
) -> str:
    """Why a purchase earned what it did, as its entry's memo says: the tier, then each
    promotion that multiplied it (one that only discounts redemptions earned nothing more),
    and "held to x20" when a line's multipliers stacked past MAX_ACCRUAL_MULTIPLIER."""
    earning = [p for p in applied if p.accrual_multiplier != 1]
    labels = ", ".join(
        ([f"{tier.name} x{tier.accrual_multiplier.normalize():f}"] if tier else [])
        + [p.label for p in earning]
    )
    base = multiplier_of(tier)
    capped = any(
        promotions.stacked([p for p in earning if promotions.covers(p, line.tags)], base)
        > promotions.MAX_ACCRUAL_MULTIPLIER
        for line in lines
    )
    return f"{labels}; held to x{promotions.MAX_ACCRUAL_MULTIPLIER}" if capped else labels


_ACCOUNT_AND_EARLIER = select(
    Account,
    select(Entry.id)
    .where(
        Entry.program_code == bindparam("program"),
        Entry.kind == EntryKind.ACCRUAL,
        Entry.reference == bindparam("order_ref"),
    )
    .limit(1)
    .scalar_subquery(),
).where(Account.member_id == bindparam("member"), Account.program_code == bindparam("program"))
# Locked (the credit would lock it anyway): accruals to one account run one after the other
# from here, so each reads the member's tier and promotions after the one before raised
# them, as purchases sent one by one would (outside attack helper-85).
_ACCOUNT_AND_EARLIER_LOCKED = _ACCOUNT_AND_EARLIER.with_for_update(of=Account, key_share=True)


async def _account_and_earlier(
    session: AsyncSession, member_id: str, program: Program, order_ref: str
) -> tuple[Account | None, int | None]:
    """The member's account in the program, locked (the ledger's Journal.lock then need not
    read it again), and the entry by which this order already earned there (if it did), in
    one statement."""
    found = (
        await session.execute(
            _ACCOUNT_AND_EARLIER_LOCKED,
            {"member": member_id, "program": program.code, "order_ref": order_ref},
        )
    ).first()
    if found is None:
        return None, None
    account, entry_id = found
    remember_account(session, account)
    locked_accounts(session)[account.id] = account
    return account, entry_id


async def accrue(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    data: Purchase,
    program: Program | None = None,
    loyalty: Loyalty | None = None,
) -> Accrued:
    """Credit a member for a purchase, once per idempotency key and once per order.
    `program`, `loyalty`: the program, its promotions and tiers as this process keeps them
    (hub.caches), read when not given."""
    made: list[tuple[Entry, int]] = []
    request: dict[str, object] = {
        "memberId": data.member_id,
        "program": data.program,
        "orderRef": data.order_ref,
        "amount": data.amount,  # normalised: 1000 and 1000.00 are one amount
        "occurredAt": data.occurred_at.isoformat() if data.occurred_at else None,
    }
    if data.lines is not None:  # keys stored before lines existed still match their retries
        request["lines"] = green.request_lines(data.lines)

    async def effect() -> idempotency.Result:
        nonlocal program
        if program is None or program.code != data.program:
            program = await get_program(session, data.program, ("program",))
        require_merchant(principal, program.merchant_id, ("program",))
        green.refuse_direct_accrual(program, ("program",))
        if is_connected(program):
            raise InvalidState(
                f"{program.code} balances live in the partner's own system; accrue there.",
                field=("program",),
            )
        order_ref = validate.text(
            data.order_ref, ("order_ref",), max_length=validate.MAX_ORDER_REF, reference=True
        )
        amount = validate.money(data.amount, ("amount",), high=MAX_AMOUNT, positive=True)
        lines = green.checked_lines(data.lines, amount, ("lines",), MAX_AMOUNT)
        now = utcnow()
        window = validate.PurchaseWindow(now, settings.accrual_backdate_days)
        occurred = window.check(data.occurred_at or now, ("occurred_at",))
        account, already = await _account_and_earlier(session, data.member_id, program, order_ref)
        # The purchase is made now that the account is this transaction's: a purchase that
        # waited for the one before is made after it, so the tier it earns at, and the
        # spend that one counted, follow the order the purchases ran in.
        now = utcnow()
        if data.occurred_at is None:
            occurred = now
        if account is None and await session.get(Member, data.member_id) is None:
            # An account names its member: the member is read only when there is none.
            raise NotFound(f"No member has id {data.member_id!r}.", field=("member_id",))
        if account is None:
            raise NotFound(
                f"Member {data.member_id} is not enrolled in {program.code}; enroll them first.",
                field=("member_id",),
            )
        if already is not None:
            raise AlreadyExists(
                f"Order {order_ref!r} has already earned points in {program.code}.",
                field=("order_ref",),
            )
        if loyalty is not None:
            active, tiers = loyalty.active(program.code, occurred), loyalty.ladder(program.code)
        else:
            active = await promotions.active(session, program.code, occurred)
            tiers = await ladder(session, program.code)
        profile = None
        if tiers or any(promotions.targeted(p) for p in active):
            profile = await eligibility.profile_of(
                session, data.member_id, now, settings.tz, {program.code: tiers}
            )
        # The purchase earns at the tier held when it is made; the tier it qualifies the
        # member for counts from the next one.
        tier = profile.tiers.get(program.code) if profile else None
        day = occurred.astimezone(settings.tz).date()
        active = applying(active, profile, day, lines)
        points = promotions.points_on(lines, program.accrual_rate, active, multiplier_of(tier))
        if points < 1:
            raise InvalidInput(
                f"{amount} at {program.accrual_rate} points per unit earns no whole point.",
                field=("amount",),
            )
        if points > validate.MAX_POINTS_PER_MOVEMENT:
            raise InvalidInput(
                f"This purchase would earn {points:,} points; one accrual earns at most "
                f"{validate.MAX_POINTS_PER_MOVEMENT:,}.",
                field=("amount",),
            )
        labels = memo_labels(tier, active, lines)
        movement = Movement(
            actor=principal.actor,
            business_date=settings.business_date(occurred),
            occurred_at=occurred,
            reference=order_ref,
            memo=f"purchase of {amount}" + (f" ({labels})" if labels else ""),
            idempotency_key=data.idempotency_key,
        )
        ends = expiry_of(occurred, program.expiry_months)
        try:
            entry = await Points(session).credit(
                account, points, EntryKind.ACCRUAL, AccountKind.ISSUED, movement, expires_at=ends
            )
        except BalanceLimit as full:  # the purchase's points would not fit the balance
            full.field = full.field or ("amount",)
            raise
        if ends is not None and ends <= now:
            # A purchase dated past its points' expiry earns them (its spend counts for
            # tiers and insights) and they expire at once, in this transaction: the balance
            # and the history never disagree until the expiry job runs (helper-89).
            at_once = Movement(
                actor=principal.actor, business_date=settings.business_date(now), occurred_at=now
            )
            await expire_overdue(Points(session), account, at_once)
        await standing.record_purchase(
            session,
            entry_id=entry.id,
            program_code=program.code,
            member_id=data.member_id,
            amount=amount,
            occurred_at=occurred,
        )
        await standing.raise_after_accrual(session, tiers, program.merchant_id, data.member_id, now)
        accrued: idempotency.Result = {"entry_id": entry.id, "points": points}
        made.append((entry, account.balance))
        earned = [(program.code, points, entry)]
        eco = await green.accrue_green(
            session, program, data.member_id, lines, movement, occurred, ("lines",)
        )
        if eco is not None:
            accrued["green_points"] = eco.points
            if eco.entry is not None:
                accrued["green_entry_id"] = eco.entry.id
                earned.append((eco.program, eco.points, eco.entry))
        for code, earned_points, earned_entry in earned:
            await outbox.emit(
                session,
                WebhookEvent.POINTS_ACCRUED,
                [program.merchant_id],
                {
                    "memberId": data.member_id,
                    "program": code,
                    "points": earned_points,
                    "orderRef": order_ref,
                    "entryId": str(earned_entry.id),
                },
            )
        return accrued

    result = await idempotency.once(
        session,
        scope=principal.idempotency_scope,
        key=data.idempotency_key,
        operation="accruePoints",
        request=request,
        effect=effect,
    )
    green_points = result.get("green_points")
    green_entry = result.get("green_entry_id")
    return Accrued(
        entry_id=int(result["entry_id"]),
        points=int(result["points"]),
        green_points=None if green_points is None else int(green_points),
        made=made[-1] if made else None,
        green_entry_id=None if green_entry is None else int(green_entry),
    )
