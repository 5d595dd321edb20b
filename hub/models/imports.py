"""Bulk accrual imports: the job, its staged rows (a queue the chunks consume), its rejects."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import utcnow
from hub.enums import ImportStatus
from hub.models.base import Base, stored


class ImportJob(Base):
    """One file (or one importAccruals call) of purchases becoming accruals.

    `staged` is set once every row is in `import_rows`; the rows are then applied in chunks,
    each chunk one transaction that posts its accruals and deletes its staged rows, so what
    is left staged is exactly what is left to do. The lease says which process applies the
    job; a lease that runs out (the process died) lets another take the job over.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (
        Index("ix_import_jobs_status", "status", "lease_expires_at"),
        Index("ix_import_jobs_merchant", "merchant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))  # the program's
    actor: Mapped[str] = mapped_column(String(100))  # recorded on every entry it posts
    source: Mapped[str] = mapped_column(String(20))  # graphql, http, cli
    status: Mapped[ImportStatus] = mapped_column(stored(ImportStatus, 20))
    staged: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(default=0)  # credited so far
    failures: Mapped[int] = mapped_column(Integer, default=0)  # chunk attempts that failed in a row
    failure: Mapped[str | None] = mapped_column(Text)  # why a FAILED job stopped
    lease_holder: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()


class ImportRow(Base):
    """A staged row, checked for form; deleted by the chunk that applies it.

    Amount and moment are kept as plain integers (cents, microseconds since the epoch in
    UTC): a million rows pass through here, and these need no conversion on the way in or
    out (NUMERIC and timestamps cost a Python conversion per value on SQLite). On SQLite
    the table is its primary key (WITHOUT ROWID): one B-tree to write, scan and delete
    instead of two."""

    __tablename__ = "import_rows"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012

    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    member_id: Mapped[str | None] = mapped_column(String(40))
    external_ref: Mapped[str | None] = mapped_column(String(80))
    order_ref: Mapped[str] = mapped_column(String(120))
    amount_cents: Mapped[int] = mapped_column()
    occurred_us: Mapped[int] = mapped_column()


class ImportRejection(Base):
    """A line that did not import, with the code and sentence accruePoints would have given."""

    __tablename__ = "import_errors"

    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)
