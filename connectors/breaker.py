"""A circuit breaker per merchant: fail fast while a partner is down, probe to recover.

Hand-written rather than a library's: it counts failures by the outcome of a
partner call (no answer, 5xx), not by exceptions, and lets exactly one probe
through when half-open.
"""

from __future__ import annotations

import time
from enum import StrEnum


class State(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class Breaker:
    def __init__(self, failures_to_open: int = 5, cooldown_seconds: float = 10.0) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_seconds = cooldown_seconds
        self.state = State.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether a call may go out now (one probe at a time once the cooldown passed)."""
        if self.state == State.CLOSED:
            return True
        if self.state == State.OPEN and time.monotonic() - self.opened_at >= self.cooldown_seconds:
            self.state = State.HALF_OPEN
        if self.state == State.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self.state = State.CLOSED
        self.failures = 0
        self._probing = False

    def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.state == State.HALF_OPEN or self.failures >= self.failures_to_open:
            self.state = State.OPEN
            self.opened_at = time.monotonic()
