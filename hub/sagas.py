"""What the conversion and redemption sagas share: backoff, and the failure they store."""

from __future__ import annotations

import datetime as dt
import json
from typing import Protocol

from hub.enums import ErrorCode
from hub.errors import DomainError

MAX_BACKOFF_SECONDS = 600


class SagaRow(Protocol):
    attempts: int
    next_attempt_at: dt.datetime | None
    failure: str | None


def retry_later(row: SagaRow, now: dt.datetime) -> None:
    """Try the step again after an exponential backoff (2, 4, 8 ... 600 s)."""
    row.attempts += 1
    row.next_attempt_at = now + dt.timedelta(seconds=min(2**row.attempts, MAX_BACKOFF_SECONDS))


def record_failure(row: SagaRow, code: ErrorCode, message: str, field: str) -> None:
    row.failure = json.dumps({"code": code.value, "message": message, "field": field})


def failure_of(row: SagaRow) -> DomainError | None:
    """The error a failed (or reversed) saga reports to its caller, as a userError."""
    if row.failure is None:
        return None
    data = json.loads(row.failure)
    return DomainError(
        data["message"], code=ErrorCode(data["code"]), field=["input", data["field"]]
    )
