"""`hub verify`: check the ledger as a bank would, in SQL, and list every violation."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from hub import verify_amounts
from hub.enums import (
    AccountKind,
    BatchStatus,
    ConnectorKind,
    ConversionStatus,
    EntryKind,
    HoldStatus,
    ObligationKind,
    RedemptionStatus,
)
from hub.exchange.saga import Step as ConversionStep
from hub.mall.saga import Step as RedemptionStep
from hub.models import (
    Account,
    Conversion,
    ConversionLeg,
    Entry,
    Hold,
    Lot,
    LotUse,
    NetPosition,
    Obligation,
    PartnerOutcome,
    Posting,
    Program,
    Redemption,
    SettlementBatch,
    Statement,
    StatementAdjustment,
)
from hub.models.base import as_text
from hub.obligation_rules import batch_of


@dataclass(frozen=True)
class Violation:
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


def _total(key: Any, amount: Any) -> Any:
    """`amount` summed per `key`, as a subquery with columns (key, total)."""
    return select(key, func.sum(amount).label("total")).group_by(key).subquery()


def _per_program(amount: Any, on: Any, where: Any) -> Any:
    """`amount` of the rows `where` holds, summed per program of the account they join
    `on`, as a subquery with columns (program_code, total)."""
    return (
        select(Account.program_code, func.sum(amount).label("total"))
        .join_from(Account, amount.class_, on)
        .where(where)
        .group_by(Account.program_code)
        .subquery()
    )


def _checks() -> list[tuple[str, str, Any]]:
    posted = _total(Posting.account_id, Posting.amount)
    lots = _total(Lot.account_id, Lot.remaining)
    used = _total(LotUse.lot_id, LotUse.points)
    last = (
        select(Posting.account_id, func.max(Posting.id).label("last_id"))
        .group_by(Posting.account_id)
        .subquery()
    )
    held_postings = _per_program(
        Posting.amount, Posting.account_id == Account.id, Account.kind == AccountKind.HELD
    )
    pending = _per_program(
        Hold.points, Hold.account_id == Account.id, Hold.status == HoldStatus.PENDING
    )
    member = Account.kind == AccountKind.MEMBER
    return [
        (
            "entry balanced",
            "entry {0}: postings sum to {1} over {2} posting(s)",
            select(Posting.entry_id, func.sum(Posting.amount), func.count())
            .group_by(Posting.entry_id)
            .having(func.sum(Posting.amount) != 0),
        ),
        (
            "entry has postings",
            "entry {0} ({1}) has fewer than two postings",
            select(Entry.id, Entry.kind)
            .outerjoin(Posting, Posting.entry_id == Entry.id)
            .group_by(Entry.id, Entry.kind)
            .having(func.count(Posting.id) < 2),
        ),
        (
            "posting in its entry's program",
            "posting {0} of entry {1} is in {2}, the entry in {3}",
            select(Posting.id, Entry.id, Account.program_code, Entry.program_code)
            .join(Entry, Entry.id == Posting.entry_id)
            .join(Account, Account.id == Posting.account_id)
            .where(Account.program_code != Entry.program_code),
        ),
        (
            "program total conserved",
            "program {0}: the accounts sum to {1}, not 0",
            select(Account.program_code, func.sum(Posting.amount))
            .join(Posting, Posting.account_id == Account.id)
            .group_by(Account.program_code)
            .having(func.sum(Posting.amount) != 0),
        ),
        (
            "balance equals postings",
            "account {0} ({1}): cached balance {2}, postings sum to {3}",
            select(
                Account.id, Account.program_code, Account.balance, func.coalesce(posted.c.total, 0)
            )
            .outerjoin(posted, posted.c.account_id == Account.id)
            .where(member, Account.balance != func.coalesce(posted.c.total, 0)),
        ),
        (
            "no negative balance",
            "account {0} ({1}) has balance {2}",
            select(Account.id, Account.program_code, Account.balance).where(
                member, Account.balance < 0
            ),
        ),
        (
            "balance equals open lots",
            "account {0} ({1}): balance {2}, open lots hold {3}",
            select(
                Account.id, Account.program_code, Account.balance, func.coalesce(lots.c.total, 0)
            )
            .join(Program, Program.code == Account.program_code)
            .outerjoin(lots, lots.c.account_id == Account.id)
            .where(
                member,
                Program.connector == ConnectorKind.HOSTED,
                Account.balance != func.coalesce(lots.c.total, 0),
            ),
        ),
        (
            "lot consistent with its uses",
            "lot {0}: {1} earned, {2} remaining, uses total {3}",
            select(Lot.id, Lot.points, Lot.remaining, func.coalesce(used.c.total, 0))
            .outerjoin(used, used.c.lot_id == Lot.id)
            .where(
                (Lot.remaining != Lot.points - func.coalesce(used.c.total, 0))
                | (Lot.remaining < 0)
                | (Lot.remaining > Lot.points)
            ),
        ),
        (
            "balance after of the last posting",
            "account {0}: balance {1}, last posting says {2}",
            select(Account.id, Account.balance, Posting.balance_after)
            .join(last, last.c.account_id == Account.id)
            .join(Posting, Posting.id == last.c.last_id)
            .where(member, Posting.balance_after != Account.balance),
        ),
        (
            "held equals pending holds",
            "program {0}: held account {1}, pending holds {2}",
            select(
                Program.code,
                func.coalesce(held_postings.c.total, 0),
                func.coalesce(pending.c.total, 0),
            )
            .outerjoin(held_postings, held_postings.c.program_code == Program.code)
            .outerjoin(pending, pending.c.program_code == Program.code)
            .where(func.coalesce(held_postings.c.total, 0) != func.coalesce(pending.c.total, 0)),
        ),
    ]


def _obligation_checks() -> list[tuple[str, str, Any]]:
    """Every cross-merchant move has exactly the obligations it should, and every
    settled obligation sits in a closed batch whose positions net to zero."""
    owed = (
        select(Obligation.reference, Obligation.kind, func.count().label("n"))
        .group_by(Obligation.reference, Obligation.kind)
        .subquery()
    )
    legs = (
        select(ConversionLeg.conversion_id, func.count().label("n"))
        .group_by(ConversionLeg.conversion_id)
        .subquery()
    )
    conversion_owed = func.coalesce(
        select(func.sum(owed.c.n))
        .where(owed.c.reference == Conversion.id, owed.c.kind == ObligationKind.CONVERSION)
        .scalar_subquery(),
        0,
    )
    completed = Conversion.status == ConversionStatus.COMPLETED
    payer = select(Program.merchant_id).where(Program.code == Redemption.paid_with)
    cross = Redemption.merchant_id != payer.scalar_subquery()

    def count_of(kind: ObligationKind) -> Any:
        return func.coalesce(
            select(func.sum(owed.c.n))
            .where(owed.c.reference == Redemption.id, owed.c.kind == kind)
            .scalar_subquery(),
            0,
        )

    expected_redemption = case(
        (
            cross & Redemption.status.in_([RedemptionStatus.CONFIRMED, RedemptionStatus.CANCELLED]),
            1,
        ),
        else_=0,
    )
    expected_refund = case((cross & (Redemption.status == RedemptionStatus.CANCELLED), 1), else_=0)
    batch_net = (
        select(NetPosition.batch_id, func.sum(NetPosition.net).label("total"))
        .group_by(NetPosition.batch_id)
        .subquery()
    )
    return [
        (
            "obligation per conversion leg",
            "conversion {0} ({1}): {2} leg(s), {3} obligation(s)",
            select(Conversion.id, Conversion.status, func.coalesce(legs.c.n, 0), conversion_owed)
            .outerjoin(legs, legs.c.conversion_id == Conversion.id)
            .where(conversion_owed != case((completed, func.coalesce(legs.c.n, 0)), else_=0)),
        ),
        (
            "obligations of a redemption",
            "redemption {0} ({1}): {2} redemption and {3} refund obligation(s)",
            select(
                Redemption.id,
                Redemption.status,
                count_of(ObligationKind.REDEMPTION),
                count_of(ObligationKind.REFUND),
            ).where(
                (count_of(ObligationKind.REDEMPTION) != expected_redemption)
                | (count_of(ObligationKind.REFUND) != expected_refund)
            ),
        ),
        (
            "settled obligation in a closed batch",
            "obligation {0} names batch {1}, which is {2}",
            select(
                Obligation.id,
                Obligation.batch_id,
                func.coalesce(as_text(SettlementBatch.status), "missing"),
            )
            .outerjoin(SettlementBatch, SettlementBatch.id == Obligation.batch_id)
            .where(
                Obligation.batch_id.is_not(None),
                func.coalesce(as_text(SettlementBatch.status), "missing") != BatchStatus.CLOSED,
            ),
        ),
        (
            "batch positions net to zero",
            "batch {0}: net positions sum to {1}",
            select(batch_net.c.batch_id, batch_net.c.total).where(batch_net.c.total != 0),
        ),
    ]


def _adjustment_checks(dialect: str) -> list[tuple[str, str, Any]]:
    """Each accepted adjustment is one ADJUSTMENT obligation of its amount, settled in exactly
    one batch later than the disputed statement's (a closed batch is never edited)."""
    carried = SettlementBatch.business_date
    signed = case(
        (Obligation.creditor_id == Statement.merchant_id, Obligation.amount),
        else_=-Obligation.amount,
    )
    parties_ok = (
        (Obligation.debtor_id == Statement.merchant_id)
        & (Obligation.creditor_id == StatementAdjustment.counterparty_id)
    ) | (
        (Obligation.creditor_id == Statement.merchant_id)
        & (Obligation.debtor_id == StatementAdjustment.counterparty_id)
    )
    return [
        (
            "adjustment settles once, later",
            "adjustment {0} of statement {1}: obligation {2} ({3}, {4}) dated {5}, batch of {6}",
            select(
                StatementAdjustment.id,
                StatementAdjustment.statement_id,
                StatementAdjustment.obligation_id,
                func.coalesce(as_text(Obligation.kind), "missing"),
                Obligation.amount,
                Obligation.business_date,
                carried,
            )
            .join(Statement, Statement.id == StatementAdjustment.statement_id)
            .outerjoin(Obligation, Obligation.id == StatementAdjustment.obligation_id)
            .outerjoin(SettlementBatch, SettlementBatch.id == batch_of(dialect))
            .where(
                Obligation.id.is_(None)
                | (Obligation.kind != ObligationKind.ADJUSTMENT)
                | (signed != StatementAdjustment.amount)
                | ~parties_ok
                | (Obligation.business_date <= Statement.business_date)
                | (carried.is_not(None) & (carried <= Statement.business_date))
            ),
        ),
        (
            "adjustment obligation has its dispute",
            "obligation {0}: ADJUSTMENT of {1} with no accepted dispute behind it",
            select(Obligation.id, Obligation.amount)
            .outerjoin(StatementAdjustment, StatementAdjustment.obligation_id == Obligation.id)
            .where(
                Obligation.kind == ObligationKind.ADJUSTMENT,
                StatementAdjustment.id.is_(None),
            ),
        ),
    ]


def _saga_checks() -> list[tuple[str, str, Any]]:
    """Every move a finished redemption says happened at a hosted program is there: a
    cancelled one's refund and compensation are posted, its hold settled the right way."""
    hosted_payer = (
        select(Program.code)
        .where(
            Program.code == Redemption.paid_with,
            Program.connector == ConnectorKind.HOSTED,
        )
        .exists()
    )

    def posted(step: str, kind: EntryKind) -> Any:
        return (
            select(Entry.id)
            .where(
                Entry.program_code == Redemption.paid_with,
                Entry.idempotency_key == Redemption.id + f":{step}",
                Entry.kind == kind,
            )
            .exists()
        )

    cancelled = Redemption.status == RedemptionStatus.CANCELLED
    settled_as = case(
        (Redemption.status == RedemptionStatus.FAILED, HoldStatus.RELEASED),
        else_=HoldStatus.CAPTURED,
    )
    return [
        (
            "refund of a cancelled redemption posted",
            "redemption {0} is cancelled, but no refund of {1} {2} was posted",
            select(Redemption.id, Redemption.points, Redemption.paid_with).where(
                cancelled, hosted_payer, ~posted("refund", EntryKind.REFUND)
            ),
        ),
        (
            "compensation of a cancelled redemption posted",
            "redemption {0} is cancelled with {1} {2} compensation, none was posted",
            select(Redemption.id, Redemption.compensation_points, Redemption.paid_with).where(
                cancelled,
                Redemption.compensation_points > 0,
                hosted_payer,
                ~posted("compensate", EntryKind.COMPENSATION),
            ),
        ),
        (
            "hold of a finished redemption settled",
            "redemption {0} is {1}; its hold {2} is {3}, not {4}",
            select(Redemption.id, Redemption.status, Hold.id, Hold.status, settled_as)
            .join(Hold, Hold.id == Redemption.hold_ref)
            .where(Redemption.status != RedemptionStatus.PENDING, Hold.status != settled_as),
        ),
    ]


def _partner_checks() -> list[tuple[str, str, Any]]:
    """Every partner-side movement a saga stands for has the partner's confirmation.

    The hub believes a partner debited, credited, held, released, refunded or compensated
    only when the partner answered that it applied the call (`partner_outcomes`, written by
    the saga driver); a saga that moved past such a step on anything else (an unreachable
    partner taken for a refusal, a lost answer taken for a success) shows here.
    """
    connected = select(Program.code).where(Program.connector != ConnectorKind.HOSTED)

    def owed(saga: str, row: Any, status: Any, program: Any, steps: list[str], *when: Any) -> Any:
        confirmed = (
            select(PartnerOutcome.id)
            .where(PartnerOutcome.saga_id == row.id, PartnerOutcome.step.in_(steps))
            .exists()
        )
        shown = as_text(status)  # a conversion's or a redemption's, in one column
        return select(literal(saga), row.id, shown, program, literal(" or ".join(steps))).where(
            program.in_(connected), ~confirmed, *when
        )

    c, r = Conversion, Redemption
    debited = or_(
        c.status.in_([ConversionStatus.COMPLETED, ConversionStatus.REVERSED]),
        c.step.in_([ConversionStep.CREDIT.value, ConversionStep.REVERSE.value]),
    )
    taken = or_(
        r.status.in_([RedemptionStatus.CONFIRMED, RedemptionStatus.CANCELLED]),
        r.step.in_([RedemptionStep.BOOK.value, RedemptionStep.CAPTURE.value]),
        and_(r.status == RedemptionStatus.FAILED, r.hold_ref.is_not(None)),
    )
    cancelled = r.status == RedemptionStatus.CANCELLED
    completed = c.status == ConversionStatus.COMPLETED
    reversed_ = c.status == ConversionStatus.REVERSED
    owed_steps = union_all(
        owed("conversion", c, c.status, c.from_code, ["DEBIT"], debited),
        owed("conversion", c, c.status, c.to_code, ["CREDIT"], completed),
        owed("conversion", c, c.status, c.from_code, ["REVERSE"], reversed_),
        owed("redemption", r, r.status, r.paid_with, ["DEBIT", "HOLD"], taken),
        owed(
            "redemption",
            r,
            r.status,
            r.paid_with,
            ["RELEASE"],
            r.status == RedemptionStatus.FAILED,
            r.hold_ref.is_not(None),
        ),
        owed("redemption", r, r.status, r.paid_with, ["REFUND"], cancelled),
        owed(
            "redemption",
            r,
            r.status,
            r.paid_with,
            ["COMPENSATE"],
            cancelled,
            r.compensation_points > 0,
        ),
    ).subquery()
    return [
        (
            "partner movement confirmed",
            "{0} {1} is {2}, but {3} never confirmed its {4}",
            select(owed_steps),
        )
    ]


EXTRA_CHECKS: list[tuple[str, str, Any]] = []  # for plug-ins


@functools.cache
def _built_in_checks(dialect: str) -> tuple[tuple[str, str, Any], ...]:
    """The checks are statements that depend on the dialect only, so they are built once: building
    them cost as much as running them on a small ledger (40% of a `verify`)."""
    return (
        *_checks(),
        *_obligation_checks(),
        *_saga_checks(),
        *_partner_checks(),
        *_adjustment_checks(dialect),
        *verify_amounts.checks(dialect),
    )


def _all_checks(dialect: str) -> list[tuple[str, str, Any]]:
    return [*_built_in_checks(dialect), *EXTRA_CHECKS]


async def verify(session: AsyncSession, limit: int = 100) -> list[Violation]:
    """Every violation found, at most `limit` per check."""
    found: list[Violation] = []
    for name, template, query in _all_checks(session.get_bind().dialect.name):
        if callable(query):  # a check that replays a rule in Python
            rows = await query(session, limit)
        else:
            rows = (await session.execute(query.limit(limit))).all()
        found.extend(Violation(name, template.format(*row)) for row in rows)
    return found


def checks() -> list[str]:
    """The names of the checks, in the order they run."""
    return [name for name, _, _ in _all_checks("postgresql")]
