"""Partner reconciliation: the last report per connected merchant and business date."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import utcnow
from hub.models.base import Base


class ReconciliationReport(Base):
    """What the last comparison of the hub's movements at a partner with the partner's own
    found for one business date; a new run replaces it. `breaks` is a JSON list."""

    __tablename__ = "reconciliation_reports"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(30))
    matched: Mapped[int] = mapped_column(Integer)
    breaks: Mapped[str] = mapped_column(Text)
    generated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
