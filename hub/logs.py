"""Logging: one redacting pipeline for the hub's own structlog lines and for every library
that logs through the standard library (strawberry, uvicorn, httpx, SQLAlchemy).

JSON lines in production, readable lines in development. Before anything is written:
fields that hold personal data are replaced, phone numbers and the passwords in URLs
(HUB_DATABASE_URL) are masked in every string, exception texts included. Names cannot
be recognised in free text, so the code never logs documents, variables or bodies.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from hub.config import Settings

# Keys whose values are personal data; they are dropped from every log line.
PERSONAL = frozenset(
    {"phone", "display_name", "displayName", "name", "token", "secret", "variables", "query"}
)

# Libraries whose records are redacted at the source, so that no handler (pytest's
# caplog, a log shipper added later) ever sees the raw text.
FOREIGN = ("strawberry", "strawberry.execution", "uvicorn", "uvicorn.error", "uvicorn.access")

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@/\s]+)@")
# 7 to 15 digits, optionally grouped by spaces or hyphens, optionally with + or a (area);
# not inside a longer word, so ids, hex request ids and ISO timestamps stay readable.
_PHONE = re.compile(r"(?<![\w.:/-])(?:\+|\(\d{1,4}\)\s?)?\d(?:[ -]?\d){6,14}(?![\w.:/-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A compact date (20261206) is left readable only where a URL or a line names it a date
# (`bizDate=`, `date=`): eight digits anywhere else may be a phone number.
_COMPACT_DATE = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _DATE.fullmatch(text):
        return text
    named = match.string[: match.start()].lower().endswith("date=")
    if named and _COMPACT_DATE.fullmatch(text):
        return text
    return "[phone]"


def redact(text: str) -> str:
    """The text with URL passwords and phone numbers masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", text)
    return _PHONE.sub(_mask_phone, text)


def safe_url(url: str) -> str:
    """A database URL fit to print: its password replaced by ***."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", url)


def _drop_personal(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in PERSONAL & event.keys():
        event[key] = "[redacted]"
    return event


def _redact_strings(
    _: object, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


class Redacting(logging.Filter):
    """Rewrites a standard-library record in place: message and exception text redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event: redacted in its own chain
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the template only
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """Writes to whatever sys.stderr is at the time (pytest's capsys replaces it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


_HANDLER_NAME = "hub-redacting"
_FILTER = Redacting()


# Libraries whose debug lines carry the data they send (aiosqlite logs each statement with
# its parameters, a member's name among them: outside attack helper-78; httpcore and
# hpack a partner call's headers): never below INFO, whatever the hub's own level.
QUIET_AT_DEBUG = ("aiosqlite", "asyncpg", "httpcore", "hpack")


def configure(settings: Settings) -> None:
    """Route every log of the process through the redacting pipeline (idempotent)."""
    json_lines = settings.log_json if settings.log_json is not None else settings.is_production
    level = logging.getLevelName(settings.log_level.upper())
    level = level if isinstance(level, int) else logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            _drop_personal,
            structlog.processors.format_exc_info,
            _redact_strings,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            stamp,
            structlog.processors.format_exc_info,
            _redact_strings,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    handler.addFilter(_FILTER)
    root.addHandler(handler)
    root.setLevel(level)
    for name in FOREIGN:
        logger = logging.getLogger(name)
        logger.handlers.clear()  # uvicorn's own configuration writes around the redactor
        logger.propagate = True
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    for name in QUIET_AT_DEBUG:  # what they send: statements' parameters, request bodies
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    # Each request is logged once, by hub.accesslog, without its query string.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
