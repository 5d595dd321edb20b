"""Partner reconciliation: the last report per connected merchant and business date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import JSONText, utcnow
from hub.enums import ReconciliationStatus
from hub.models.base import Base, stored


class ReconciliationReport(Base):
    """What the last comparison of the hub's movements at a partner with the partner's own
    found for one business date; a new run replaces it. `breaks` is a JSON list."""

    __tablename__ = "reconciliation_reports"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[ReconciliationStatus] = mapped_column(stored(ReconciliationStatus, 30))
    matched: Mapped[int] = mapped_column(Integer)
    breaks: Mapped[list[list[Any]]] = mapped_column(JSONText)  # [reference, ref, hub, partner]
    generated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
