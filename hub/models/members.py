"""Members: the people enrolled in one or more programs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Date,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import utcnow
from hub.models.base import Base


class Member(Base):
    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)  # the member and ADMIN only
    # From an external credit system through setMemberCredit; the member and ADMIN only.
    credit_level: Mapped[str | None] = mapped_column(String(20))
    credit_level_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
