"""structlog configuration: JSON lines in production, readable lines in development."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from hub.config import Settings

# Keys whose values are personal data; they are dropped from every log line.
PERSONAL = frozenset({"phone", "display_name", "displayName", "name", "token", "secret"})


def _drop_personal(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in PERSONAL & event.keys():
        event[key] = "[redacted]"
    return event


def configure(settings: Settings) -> None:
    json_lines = settings.log_json if settings.log_json is not None else settings.is_production
    level = logging.getLevelName(settings.log_level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_personal,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            level if isinstance(level, int) else 20
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
