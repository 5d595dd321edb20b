"""convertPoints: debit the source, credit the destination, one obligation per leg.

Every conversion is a small saga whose state is stored on its row. Steps whose
connector is local (hosted programs) run inside the current transaction, so a
conversion between hosted programs completes in the one transaction that
creates it. A step at a partner runs between transactions: the state is stored
before the call, the call carries an idempotency key, and the outcome is
recorded after (see saga.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory
from hub import consent, green, idempotency, validate
from hub.auth import Principal
from hub.config import Settings
from hub.db import NO_KEY_UPDATE, Database, append, new_row, utcnow
from hub.enums import ConversionStatus
from hub.errors import InvalidInput, NotFound, QuoteExpired
from hub.exchange import pricing, saga
from hub.exchange.rates import rates_by_id
from hub.exchange.saga import Step, run_local
from hub.ids import new_id
from hub.ledger.core import over_limit
from hub.members import accounts_of, lock_member_and_accounts, locking_read
from hub.merchants import get_program
from hub.models import Conversion, ConversionLeg, ExchangeRate, Member, Quote
from hub.models.base import new_row_values, table_of
from hub.permissions import acts_for_member, require_member
from hub.validate import MAX_BALANCE


@dataclass(frozen=True)
class ConvertRequest:
    member_id: str
    from_code: str
    to_code: str
    points: int
    quote_id: str | None
    idempotency_key: str


# The contract's names of the fields `spelled` does not give (see idempotency.asked).
_CONTRACT_NAMES = {"from_code": "from", "to_code": "to"}


async def _priced(
    session: AsyncSession, request: ConvertRequest, settings: Settings
) -> pricing.Priced:
    now = utcnow()
    if request.quote_id:
        quote = await session.get(Quote, request.quote_id)
        if quote is None or quote.member_id != request.member_id:
            raise NotFound(f"No quote {request.quote_id!r} for this member.", field=("quote_id",))
        if (quote.from_code, quote.to_code, quote.points) != (
            request.from_code,
            request.to_code,
            request.points,
        ):
            raise InvalidInput(
                "The quote was for other programs or another amount; quote again.",
                field=("quote_id",),
            )
        if quote.expires_at <= now:
            raise QuoteExpired(
                "The quote has expired; ask for a new quote.",
                field=("quote_id",),
            )
        used = await session.scalar(
            select(Conversion.id).where(
                Conversion.quote_id == quote.id,
                Conversion.status != ConversionStatus.FAILED,
            )
        )
        if used is not None:  # a quote holds its rate for one conversion (review F6)
            raise QuoteExpired(
                f"The quote was used by conversion {used}; ask for a new quote.",
                field=("quote_id",),
            )
        ids = quote.rate_ids
        found = await rates_by_id(session, ids)
        rates: list[ExchangeRate] = [found[i] for i in ids]
    else:
        rates = await pricing.find_route(session, request.from_code, request.to_code, now)
    return pricing.price(rates, request.points)


async def check_request(
    session: AsyncSession,
    principal: Principal,
    member_id: str,
    from_code: str,
    to_code: str,
    points: int,
    *,
    lock: bool = False,
) -> Member:
    """The checks a quote and a conversion share: who, which programs, how many points; the
    member. `lock`: hold the member's row to the end of the transaction (FOR UPDATE)."""
    require_member(principal, member_id, ("member_id",))
    # Locked, the member and both accounts are one read (and its accounts are not read
    # again below) when it is enrolled in both.
    member = (
        await lock_member_and_accounts(session, member_id, [from_code, to_code]) if lock else None
    )
    if member is None:
        member = await session.get(
            Member, member_id, with_for_update=NO_KEY_UPDATE if lock else None
        )
    if member is None:
        raise NotFound(f"No member has id {member_id!r}.", field=("member_id",))
    source = await get_program(session, from_code, ("from",))
    target = await get_program(session, to_code, ("to",))
    consent.require_debit(principal, source, ("from",))
    green.refuse_conversion(source, target, ())
    if source.code == target.code:
        raise InvalidInput("from and to must be different programs.", field=("to",))
    validate.points_in_range(points, ("points",))
    held = await accounts_of(session, member_id, [source.code, target.code], lock=lock)
    for program, field in ((source, "from"), (target, "to")):
        if program.code not in held:
            raise NotFound(
                f"The member is not enrolled in {program.code}; enroll them there first.",
                field=(field,),
            )
    return member


async def _check_room(
    session: AsyncSession, factory: ConnectorFactory, request: ConvertRequest, receive: int
) -> None:
    """A hosted destination has room for what the conversion credits, or the conversion is
    refused now, before any point moves. (A partner's destination answers for itself: a
    credit it refuses is reversed.)"""
    target = await get_program(session, request.to_code, ("to",))
    if not factory.is_local(target):
        return
    account = (await accounts_of(session, request.member_id, [target.code]))[target.code]
    if account.balance + receive > MAX_BALANCE:
        raise over_limit(account.balance, receive, field=("points",))


@dataclass(frozen=True)
class Converted:
    """A conversion as its transaction left it, and the member's row as that transaction
    read it (None for a replay, which reads no member): the answer's `member` needs no
    read of its own, since the caller acted for this member (require_member) and so may
    see it."""

    conversion: Conversion
    member: Member | None


async def start(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    factory: ConnectorFactory,
    request: ConvertRequest,
) -> Converted:
    """Create the conversion and run its local steps, once per idempotency key; the row as
    it stands at commit (a replay returns the first call's conversion)."""

    made: list[Converted] = []
    conversion_id = new_id("cnv")

    async def effect() -> idempotency.Result:
        member = await check_request(
            session,
            principal,
            request.member_id,
            request.from_code,
            request.to_code,
            request.points,
            lock=True,  # one conversion at a time per member: the daily limit counts under it
        )
        priced = await _priced(session, request, settings)
        now = utcnow()
        business_date = settings.business_date(now)
        await pricing.check_limits(session, request.member_id, priced, business_date)
        await _check_room(session, factory, request, priced.receive)
        conversion = new_row(
            Conversion,
            id=conversion_id,
            member_id=request.member_id,
            from_code=request.from_code,
            to_code=request.to_code,
            points_debited=priced.points,
            points_credited=priced.receive,
            route=priced.route,
            status=ConversionStatus.PENDING,
            step=Step.DEBIT.value,
            quote_id=request.quote_id,
            actor=principal.actor,
            business_date=business_date,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        legs = pricing.stored_legs(
            ConversionLeg,
            priced.legs,
            request.member_id,
            business_date,
            conversion_id=conversion.id,
        )
        await pricing.conversion_legs(session, conversion.id, made=legs)
        await run_local(session, settings, factory, conversion)
        # The row and its legs are appended after the local steps, as they then stand:
        # nothing in the transaction reads them back (the steps change the row in memory).
        await append(session, table_of(Conversion), [new_row_values(conversion)])
        await append(session, table_of(ConversionLeg), [new_row_values(leg) for leg in legs])
        made.append(Converted(conversion, member))
        return {"conversion_id": conversion.id}

    result = await idempotency.once_for(
        session,
        principal,
        "convertPoints",
        request,
        effect,
        known={"conversion_id": conversion_id},
        named=_CONTRACT_NAMES,
        # The member and both accounts locked with the key's claim (check_request's read),
        # for a caller who may act for the member (no lock is taken for one who may not).
        first=locking_read(request.member_id, [request.from_code, request.to_code])
        if acts_for_member(principal, request.member_id)
        else None,
    )
    if made:
        return made[0]
    conversion = await session.get(Conversion, result["conversion_id"])  # a replay
    assert conversion is not None
    return Converted(conversion, None)


async def convert(
    db: Database,
    principal: Principal,
    settings: Settings,
    factory: ConnectorFactory,
    request: ConvertRequest,
) -> Converted:
    """Convert points: start the conversion, then take it as far as its partners answer now.

    Raises a DomainError when it is refused up front (nothing then happened); a
    conversion a partner refused ends FAILED or REVERSED with its failure, one a
    partner has not answered yet is PENDING and the saga finishes it later. A retried
    request gets the conversion as it stands (idempotency.replayed).
    """

    async def work(session: AsyncSession) -> tuple[Converted, bool]:
        started = await start(session, principal, settings, factory, request)
        return started, idempotency.replayed(session)

    started, replay = await idempotency.transaction(db, work)
    if replay or started.conversion.status != ConversionStatus.PENDING:
        return started
    advanced = await saga.advance(db, settings, factory, started.conversion.id)
    return Converted(advanced, started.member)
