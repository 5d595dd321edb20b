"""What partners tell the hub: the outcome of each partner step of a saga that a partner
applied, and the events partners send (stored once each)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import JSONText, utcnow
from hub.models.base import Base, BigId


class PartnerOutcome(Base):
    """A partner answered that it applied a saga's step (a debit, credit, hold, reversal...).

    The hub believes a partner-side movement happened only on such an answer; `hub verify`
    checks that every movement a finished saga stands for has its row here. The call's
    idempotency key is `<saga_id>:<step in lower case>`; `partner_ref` is the partner's own
    reference for it when the partner gave one.
    """

    __tablename__ = "partner_outcomes"
    __table_args__ = (
        UniqueConstraint("saga_id", "step", name="uq_partner_outcomes_step"),
        # A confirmation's reference, looked up before it is believed (sagas._own_reference).
        Index("ix_partner_outcomes_ref", "program_code", "ref_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    saga: Mapped[str] = mapped_column(String(20))
    saga_id: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(30))
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    partner_ref: Mapped[str | None] = mapped_column(String(120))
    # The reference as the reuse check compares it (lower case): hub.sagas._own_reference.
    ref_key: Mapped[str | None] = mapped_column(String(120))
    confirmed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PartnerEvent(Base):
    """A partner's signed webhook, kept once (replays are refused), with what came of it."""

    __tablename__ = "partner_events"
    __table_args__ = (
        UniqueConstraint("merchant_id", "event_id", name="uq_partner_events_merchant_event"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    event_id: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONText)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(Text)
