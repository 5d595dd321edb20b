"""Settlement: the obligations between merchants, nightly batches, net positions, payment
instructions, statements."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, Date, FetchedValue, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import ExactDecimal, utcnow
from hub.enums import BatchStatus, ObligationKind, StatementStatus
from hub.models.base import Base, BigId, stored


class SettlementBatch(Base):
    __tablename__ = "settlement_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date, unique=True)
    status: Mapped[BatchStatus] = mapped_column(stored(BatchStatus, 10))
    currency: Mapped[str] = mapped_column(String(3))
    fee_bps: Mapped[int] = mapped_column(Integer)
    obligation_count: Mapped[int] = mapped_column(default=0)
    gross_amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4), default=Decimal(0))
    run_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    # The obligations it claimed: claim key (hub.obligation_rules.claim_key) in
    # [claim_low, claim_high) and dated on or before business_date; NULL for an empty range.
    claim_low: Mapped[int | None] = mapped_column(BigInteger, index=True, unique=True)
    claim_high: Mapped[int | None] = mapped_column(BigInteger)


class SettlementCarried(Base):
    """An obligation inside a batch's range but dated after it: claimed one by one (its
    batch_id set) by the first run of a date on or after its own."""

    __tablename__ = "settlement_carried"

    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), primary_key=True)


class NetPosition(Base):
    __tablename__ = "net_positions"

    batch_id: Mapped[str] = mapped_column(ForeignKey("settlement_batches.id"), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    receivable: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    payable: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    fees: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    net: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))


class PaymentInstruction(Base):
    __tablename__ = "payment_instructions"
    __table_args__ = (Index("ix_payment_instructions_batch", "batch_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("settlement_batches.id"))
    from_merchant: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    to_merchant: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))


class Statement(Base):
    """One merchant's statement of one batch; its id is "<batch>:<merchant>"."""

    __tablename__ = "statements"
    __table_args__ = (Index("ix_statements_merchant", "merchant_id", "business_date"),)

    id: Mapped[str] = mapped_column(String(90), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("settlement_batches.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    business_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[StatementStatus] = mapped_column(stored(StatementStatus, 10))
    receivable: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    payable: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    fees: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    net: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    dispute_reason: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    paid_at: Mapped[dt.datetime | None] = mapped_column()
    paid_reference: Mapped[str | None] = mapped_column(String(120))
    resolution: Mapped[str | None] = mapped_column(Text)  # finance's answer to a dispute
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StatementCounterparty(Base):
    __tablename__ = "statement_counterparties"

    statement_id: Mapped[str] = mapped_column(ForeignKey("statements.id"), primary_key=True)
    counterparty_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    receivable: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    payable: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))


class StatementAdjustment(Base):
    """An amount finance accepted on a disputed statement, settled by an ADJUSTMENT obligation
    in a later batch (a closed batch is never edited)."""

    __tablename__ = "statement_adjustments"
    __table_args__ = (Index("ix_statement_adjustments_statement", "statement_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    statement_id: Mapped[str] = mapped_column(ForeignKey("statements.id"))
    counterparty_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))  # signed for the merchant
    reason: Mapped[str] = mapped_column(Text)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StatementEvent(Base):
    """Who did what to a statement, and when: the workflow's audit trail."""

    __tablename__ = "statement_events"
    __table_args__ = (Index("ix_statement_events_statement", "statement_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    statement_id: Mapped[str] = mapped_column(ForeignKey("statements.id"))
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SettlementLease(Base):
    """Which replica runs a date's settlement; taken before the run, released after."""

    __tablename__ = "settlement_leases"

    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime] = mapped_column()


class Obligation(Base):
    """Money one merchant owes another for one cross-merchant move; settlement reads these."""

    __tablename__ = "obligations"
    __table_args__ = (
        Index("ix_obligations_unsettled", "batch_id", "business_date"),
        Index("ix_obligations_reference", "reference"),
        Index("ix_obligations_batch_debtor", "batch_id", "debtor_id", "id"),
        Index("ix_obligations_batch_creditor", "batch_id", "creditor_id", "id"),
        Index("ix_obligations_txn", "txn"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[ObligationKind] = mapped_column(stored(ObligationKind, 20))
    debtor_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    creditor_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    points: Mapped[int] = mapped_column()
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    reference: Mapped[str] = mapped_column(String(120))
    occurred_at: Mapped[dt.datetime] = mapped_column()
    business_date: Mapped[dt.date] = mapped_column(Date)
    # Set only on the rows a batch claims one by one (its fee, a carried late obligation);
    # the others belong to the batch whose range holds them (hub.obligation_rules.batch_of).
    batch_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # PostgreSQL: the id of the writing transaction (default pg_current_xact_id()), the key a
    # batch's range is of; NULL on SQLite, where the range is one of ids.
    txn: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())
