"""The one driver of the hub's sagas (conversions, redemptions): advance, record, resume.

A saga's state lives on its row. Each saga says what its next step is (the program
whose connector acts, and the call) and how an outcome moves the row on; this
module runs the steps. A local step (a hosted program) runs inside the current
transaction together with the state change. A partner step is called between
transactions with an idempotency key derived from the row's id, so that repeating
it after a lost answer, a crash or a restart applies it at most once; its outcome
is then recorded under a lock on the row. `resume_due` (at boot and on a timer)
picks up every saga left unfinished once its backoff has passed.

With several workers or replicas every sweeper sees the same due sagas. Each takes a
saga by a conditional UPDATE of its next attempt (a claim: the first to move it past
now wins, the others leave the saga alone) and keeps it so between its steps, so that
a saga is resumed by one process at a time and each partner call goes out once. The
outcome of the step sets the next attempt; a sweeper that died holding a claim leaves
the saga to another once the claim has run out.
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import BookingResult, CallResult, Connector, ConnectorFactory, Outcome
from hub.config import Settings
from hub.db import Database, insert_or_skip, utcnow
from hub.enums import ErrorCode
from hub.errors import WITHHELD, DomainError, Failure
from hub.models.partners import PartnerOutcome

log = structlog.get_logger(__name__)

MAX_BACKOFF_SECONDS = 600
MAX_STEPS = 8  # per advance: every step of the longest saga, with room for a retried one
# How long a sweeper keeps a saga it resumes before another may take it: past any one
# partner call (each attempt's timeout, with the retries), so a live sweeper keeps it.
CLAIM_SECONDS = 60

Result = CallResult | BookingResult
Action = Callable[[Connector], Awaitable[Result]]


class SagaRow(Protocol):
    id: Any
    member_id: Any
    actor: Any
    attempts: Any
    next_attempt_at: Any
    failure: Any
    created_at: Any
    updated_at: Any


Row = TypeVar("Row", bound=SagaRow)


@dataclass(frozen=True)
class Next:
    """A saga's next step: the program whose connector acts, the step's name, the call."""

    program: Any
    step: str
    action: Action


@dataclass(frozen=True)
class Saga(Generic[Row]):
    """What the driver needs to know of one kind of saga."""

    name: str
    model: type[Row]
    next_step: Callable[[AsyncSession, Row], Awaitable[Next | None]]
    apply: Callable[[AsyncSession, Settings, Row, str, Result], Awaitable[None]]
    unfinished: Callable[[], Any]  # a WHERE clause on the model
    # Steps whose confirmation names what an earlier step of the same saga made (a
    # cancellation names its booking), and that step: the one reference a partner may
    # give twice (_own_reference).
    names_earlier: Mapping[str, str] = field(default_factory=dict)


def retry_later(row: SagaRow, now: dt.datetime) -> None:
    """Try the step again after an exponential backoff (2, 4, 8 ... 600 s)."""
    row.attempts += 1
    row.next_attempt_at = now + dt.timedelta(seconds=min(2**row.attempts, MAX_BACKOFF_SECONDS))


def record_failure(
    row: SagaRow, code: ErrorCode, message: str, field: str, *, said: str | None = None
) -> None:
    """Keep why a saga failed, with the field of its request it concerns (a domain name;
    older rows hold the contract's spelling, `memberId`, which reads the same).

    `said`: the partner's own words in `message` (its refusal). They may name the member
    or give its phone, email or card number, which free text cannot be masked of reliably
    (outside attacks helper-76 and -77), so the failure also keeps a telling without them,
    for those who may not see the member (a merchant, a session a merchant minted, the
    webhooks): `failure_of`."""
    row.failure = Failure(code=code.value, message=message, field=field)
    if said and said in message:
        row.failure["withheld"] = message.replace(said, WITHHELD)


BEING_RETURNED = "The points are being returned."
RETURNED = "The points were returned."


def as_sentence(reason: str) -> str:
    """A partner's reason ("Account frozen") as a sentence another can follow."""
    reason = reason.strip()
    return reason if reason.endswith((".", "!", "?", "。")) else f"{reason}."


def being_returned(reason: str) -> str:
    """A failure whose points are on their way back, in the partner's words ("Account
    frozen.") then the hub's: what a saga says until the give-back has landed."""
    return f"{as_sentence(reason)} {BEING_RETURNED}"


def being_credited(reason: str) -> str:
    """A cancellation's compensation the partner refused for now, in its words then the
    hub's, as being_returned says a refund's."""
    return f"{as_sentence(reason)} The compensation is being credited."


def say_returned(row: SagaRow) -> None:
    """The give-back landed: the failure now says the points are back, no longer on their
    way."""
    failure = row.failure
    if failure is not None and failure["message"].endswith(BEING_RETURNED):
        told = {
            k: f"{v.removesuffix(BEING_RETURNED).rstrip()} {RETURNED}"
            for k, v in failure.items()
            if k in ("message", "withheld")
        }
        row.failure = Failure(**{**failure, **told})  # type: ignore[typeddict-item]


def refusal(result: Result) -> ErrorCode:
    """The code a step's refusal is reported with. The hub took the request; a partner that
    does not know the account it was asked to move (it answered 404) refused the move, which
    is PARTNER_REJECTED, not a NOT_FOUND of anything the caller sent. Its own words stay in
    the message."""
    if result.code is None or result.code == ErrorCode.NOT_FOUND:
        return ErrorCode.PARTNER_REJECTED
    return result.code


def failure_of(row: SagaRow, *, words: bool) -> DomainError | None:
    """The error a failed (or reversed) saga reports to its caller, as a userError; with
    the partner's own words only for a caller who may see the member (`words`)."""
    if row.failure is None:
        return None
    data = row.failure
    message = data["message"] if words else data.get("withheld", data["message"])
    return DomainError(message, code=ErrorCode(data["code"]), field=(data["field"],))


async def run_local(
    session: AsyncSession,
    settings: Settings,
    factory: ConnectorFactory,
    saga: Saga[Row],
    row: Row,
    *,
    check: Callable[[str, Result], None] | None = None,
) -> None:
    """Run every next step whose connector is local, in this transaction.

    `check` sees each local outcome before it is applied and may raise, so that a
    refusal the caller must hear of rolls back everything instead of being stored.
    """
    while True:
        found = await saga.next_step(session, row)
        if found is None or not factory.is_local(found.program):
            return
        result = await found.action(factory.for_program(found.program, session, row.actor))
        if check is not None:
            check(found.step, result)
        await saga.apply(session, settings, row, found.step, result)
        if row.next_attempt_at is not None:  # to be tried again later
            return


def _gave_back(result: Result, saga: str, row_id: str, found: Next) -> Result:
    """A reversal a saga sends undoes a call the partner confirmed (a debit, a hold): one
    answered "voided nothing" ({"voided": false}: the partner says it never got that call)
    gave nothing back, whatever its status. It is asked again, with the same key, until the
    partner voids the call (outside attack helper-70: a refund so answered showed the
    member the points back while the partner kept them)."""
    if isinstance(result, CallResult) and result.applied and result.voided is False:
        log.warning(
            "a partner voided nothing of a call it had confirmed",
            program=found.program.code,
            saga=saga,
            id=row_id,
            step=str(found.step),
            ref=result.partner_ref,
        )
        return CallResult(
            Outcome.UNKNOWN,
            message="The partner has not given the points back yet; it is asked again.",
            code=ErrorCode.PARTNER_UNAVAILABLE,
        )
    return result


MAX_REFERENCE = 120  # partner_outcomes.partner_ref


def _reference(result: Result) -> str | None:
    """The partner's own reference for what it applied, in the form compared and kept:
    Unicode's compatibility form (a full-width "Ｔ1" is T1), surrounding spaces dropped."""
    if isinstance(result, CallResult):
        ref = result.movement_ref or result.partner_ref
    else:
        ref = result.booking_ref
    return unicodedata.normalize("NFKC", ref).strip() if ref else None


def _not_a_reference(ref: str) -> bool:
    """Longer than any reference kept, or with a character no one can see or type (a
    zero-width space, a control character): an answer that does not confirm anything."""
    return len(ref) > MAX_REFERENCE or not ref.isprintable()


async def _own_reference(
    session: AsyncSession, saga: Saga[Row], row_id: str, found: Next, result: Result
) -> Result:
    """A partner confirms each call with a reference of its own. One that confirms a call
    with the reference it gave another call (it keys its replies by member, or replays a
    cached answer under another key), of another saga or of an earlier step of this one,
    has not said it applied this one: the answer is UNKNOWN, and the call is asked again
    with its own key (outside attacks helper-72 and helper-73: a payment, a refund, a
    compensation so confirmed moved nothing at the partner). The one reference that may
    come back is what an earlier step made that this step names (a cancellation, its
    booking: Saga.names_earlier)."""
    ref = _reference(result)
    if not ref:
        return result
    if _not_a_reference(ref):
        log.error(
            "a partner confirmed a call with something that is not a reference",
            program=found.program.code,
            saga=saga.name,
            id=row_id,
            step=str(found.step),
            length=len(ref),
        )
        return _unknown(result, f"{found.program.code} confirmed this without a usable reference")
    step = str(found.step)
    named = saga.names_earlier.get(step)
    given = await session.execute(
        select(PartnerOutcome.saga_id, PartnerOutcome.step)
        .where(
            PartnerOutcome.program_code == found.program.code,
            PartnerOutcome.ref_key == ref.lower(),  # T1 is t1
            or_(PartnerOutcome.saga_id != row_id, PartnerOutcome.step != step),
        )
        .limit(2)
    )
    others = [(other, at) for other, at in given if not (other == row_id and at == named)]
    if not others:
        return result
    other = others[0][0]
    log.error(
        "a partner confirmed a call with the reference it gave another call",
        program=found.program.code,
        ref=ref,
        saga=saga.name,
        id=row_id,
        step=step,
        other=other,
    )
    return _unknown(
        result, f"{found.program.code} confirmed this with the reference of another call"
    )


def _unknown(result: Result, why: str) -> Result:
    return type(result)(
        Outcome.UNKNOWN, message=f"{why}; it is asked again.", code=ErrorCode.PARTNER_UNAVAILABLE
    )


async def _confirmed(
    session: AsyncSession, saga: Saga[Row], row_id: str, found: Next, result: Result
) -> None:
    """Keep a partner's answer that it applied a step: what `hub verify` holds every
    partner-side movement of a finished saga to. Recorded once, whoever records it."""
    ref = _reference(result)
    row = {
        "saga": saga.name,
        "saga_id": row_id,
        "step": str(found.step),
        "program_code": found.program.code,
        "partner_ref": ref,
        "ref_key": ref.lower() if ref else None,
        "confirmed_at": utcnow(),
    }
    await session.execute(insert_or_skip(session, PartnerOutcome).values(**row))


async def _record(
    settings: Settings,
    factory: ConnectorFactory,
    saga: Saga[Row],
    row_id: str,
    found_then: Next,
    result: Result | None,
    hold: dt.timedelta | None,
    session: AsyncSession,
) -> bool:
    """Store a partner step's outcome and run the local steps after it; False to wait.
    With `hold`, a saga that goes on keeps its claim (next attempt moved past the next
    step) until that step is recorded in turn."""
    step = found_then.step
    if result is not None and result.outcome == Outcome.APPLIED:
        result = await _own_reference(session, saga, row_id, found_then, result)
    if result is not None and result.outcome == Outcome.APPLIED:
        await _confirmed(session, saga, row_id, found_then, result)
    fresh = await session.scalar(
        select(saga.model)
        .where(saga.model.id == row_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    found = await saga.next_step(session, fresh)
    if found is None or found.step != step:
        return True  # another worker moved it on meanwhile
    if result is not None:
        await saga.apply(session, settings, fresh, step, result)
        if fresh.next_attempt_at is not None:
            return False
    await run_local(session, settings, factory, saga, fresh)
    if fresh.next_attempt_at is not None:
        return False
    if hold is not None and await saga.next_step(session, fresh) is not None:
        fresh.next_attempt_at = utcnow() + hold
    return True


async def advance(
    db: Database,
    settings: Settings,
    factory: ConnectorFactory,
    saga: Saga[Row],
    row_id: str,
    hold: dt.timedelta | None = None,
) -> Row:
    """Take a saga as far as its partners answer now; its row afterwards. `hold`: the
    caller claimed the saga, and keeps it claimed between steps for so long."""
    for _ in range(MAX_STEPS):
        async with db.read() as session:
            row = await session.get(saga.model, row_id)
            assert row is not None
            found = await saga.next_step(session, row)
            actor = row.actor
        if found is None:
            break
        result: Result | None = None
        if not factory.is_local(found.program):  # a local step left over runs in _record
            answer = await found.action(factory.for_program(found.program, None, actor))
            result = _gave_back(answer, saga.name, row_id, found)
        record = functools.partial(_record, settings, factory, saga, row_id, found, result, hold)
        if not await db.transaction(record):
            break
    async with db.read() as session:
        final = await session.get(saga.model, row_id)
        assert final is not None
        return final


async def resume_due(
    db: Database, settings: Settings, factory: ConnectorFactory, saga: Saga[Row]
) -> int:
    """Advance every unfinished saga of this kind whose next attempt is due and that this
    process claims first; how many it advanced."""
    now = utcnow()
    model: Any = saga.model
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(model.id).where(*_due(saga, now)).order_by(model.created_at).limit(500)
            )
        )
    hold = dt.timedelta(seconds=CLAIM_SECONDS)
    advanced = 0
    for row_id in ids:
        if not await db.transaction(functools.partial(_claim, saga, row_id, hold)):
            continue  # another sweeper took it (or a request moved it on) meanwhile
        advanced += 1
        try:
            await advance(db, settings, factory, saga, row_id, hold)
        except Exception:  # the claim runs out and the saga is tried again
            log.exception("saga step failed", saga=saga.name, id=row_id)
    return advanced


def _due(saga: Saga[Row], now: dt.datetime) -> tuple[Any, ...]:
    """Unfinished, its backoff (or another's claim) over, and not touched this second
    (a request may be advancing it)."""
    model: Any = saga.model
    return (
        saga.unfinished(),
        or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now),
        model.updated_at <= now - dt.timedelta(seconds=1),
    )


async def _claim(saga: Saga[Row], row_id: str, hold: dt.timedelta, session: AsyncSession) -> bool:
    """Take a due saga for this process: only the first of several sweepers moves its
    next attempt past now (the condition is checked again on the locked row)."""
    now = utcnow()
    model: Any = saga.model
    taken = await session.execute(
        update(model)
        .where(model.id == row_id, *_due(saga, now))
        .values(next_attempt_at=now + hold)
        .execution_options(synchronize_session=False)
    )
    return int(taken.rowcount or 0) == 1  # type: ignore[attr-defined]
