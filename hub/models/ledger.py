"""The double-entry ledger: accounts, entries, postings, lots and holds."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import utcnow
from hub.enums import AccountKind, EntryKind, HoldStatus
from hub.models.base import Base, BigId, partial_index, stored


class Account(Base):
    """A member's account in one program, or a program's system account (member_id NULL)."""

    __tablename__ = "accounts"
    __table_args__ = (
        partial_index(
            "uq_accounts_program_member",
            "program_code",
            "member_id",
            where="member_id IS NOT NULL",
            unique=True,
        ),
        partial_index(
            "uq_accounts_program_ref",
            "program_code",
            "external_ref",
            where="external_ref IS NOT NULL",
            unique=True,
        ),
        partial_index(
            "uq_accounts_program_system",
            "program_code",
            "kind",
            where="member_id IS NULL",
            unique=True,
        ),
        Index("ix_accounts_member", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    kind: Mapped[AccountKind] = mapped_column(stored(AccountKind, 20))
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"))
    external_ref: Mapped[str | None] = mapped_column(String(80))
    balance: Mapped[int] = mapped_column(default=0)
    # Connected programs: the partner's last answer, served while it does not answer.
    partner_balance: Mapped[int | None] = mapped_column()
    partner_balance_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# The kinds of entry a hub call (a saga step at a hosted program) writes, keyed by the
# hub's own call key (`rdm_…:hold`): exactly one entry per program and key.
HUB_CALL_KINDS = (
    "REDEMPTION",
    "CONVERSION_OUT",
    "CONVERSION_IN",
    "COMPENSATION",
    "REFUND",
    "HOLD",
    "CAPTURE",
    "RELEASE",
)
_HUB_CALL = "idempotency_key IS NOT NULL AND kind IN ({})".format(
    ", ".join(f"'{kind}'" for kind in HUB_CALL_KINDS)
)


class Entry(Base):
    """A journal entry: append-only; its postings sum to zero."""

    __tablename__ = "entries"
    __table_args__ = (
        Index("ix_entries_reference", "reference"),
        # A program's entries of a period (merchant insights).
        Index("ix_entries_program_date", "program_code", "business_date"),
        partial_index(
            "uq_entries_hub_call",
            "program_code",
            "idempotency_key",
            where=_HUB_CALL,
            unique=True,
        ),
        # An order earns points once per program, whatever the idempotency key.
        partial_index(
            "uq_entries_accrual_order",
            "program_code",
            "reference",
            where="kind = 'ACCRUAL'",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[EntryKind] = mapped_column(stored(EntryKind, 20))
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"))
    actor: Mapped[str] = mapped_column(String(100))  # an API key id, or "system:<job>"
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    business_date: Mapped[dt.date] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(120))
    memo: Mapped[str | None] = mapped_column(Text)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        Index("ix_postings_account_id", "account_id", "id"),
        Index("ix_postings_entry_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column()
    balance_after: Mapped[int | None] = mapped_column()  # member accounts only


class Lot(Base):
    """Points earned together, with one expiry; spending consumes soonest-expiring first."""

    __tablename__ = "lots"
    __table_args__ = (Index("ix_lots_account_open", "account_id", "remaining"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    points: Mapped[int] = mapped_column()
    remaining: Mapped[int] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LotUse(Base):
    """How much of a lot an entry took (positive) or gave back (negative)."""

    __tablename__ = "lot_uses"
    __table_args__ = (Index("ix_lot_uses_entry", "entry_id"), Index("ix_lot_uses_lot", "lot_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    points: Mapped[int] = mapped_column()


class Hold(Base):
    """Points set aside (two-phase): captured on confirmation or released."""

    __tablename__ = "holds"
    __table_args__ = (
        Index("ix_holds_pending", "status", "expires_at"),
        # A member's points on hold, read with its balances (hub.member_view): pending only.
        partial_index(
            "ix_holds_account_pending",
            "account_id",
            where="status = 'PENDING'",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    points: Mapped[int] = mapped_column()
    status: Mapped[HoldStatus] = mapped_column(stored(HoldStatus, 20))
    reference: Mapped[str | None] = mapped_column(String(120))
    hold_entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    resolve_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    expires_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
