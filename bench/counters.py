"""What a process did during a phase: CPU time, SQL statements, pool checkouts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

Probe = Callable[[], dict[str, float]]


class SqlCounter:
    """Counts the statements engines send and the connections they hand out (a Database's
    sync_engines: on a SQLite file, its reads of one statement have an engine of their own)."""

    def __init__(self, *sync_engines: Any) -> None:
        self.statements = 0
        self.checkouts = 0
        for engine in sync_engines:
            event.listen(engine, "before_cursor_execute", self._statement)
            event.listen(engine.pool, "checkout", self._checkout)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1


def probe(sql: SqlCounter | None = None) -> Probe:
    """This process's CPU seconds and, given a counter, its SQL statements and checkouts."""

    def read() -> dict[str, float]:
        found = {"cpu": time.process_time()}
        if sql is not None:
            found["statements"] = sql.statements
            found["checkouts"] = sql.checkouts
        return found

    return read
