"""Personal data and database passwords never reach a log line or the terminal: not
through strawberry's own error logger, not through uvicorn's, not in CLI output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from hub import logs
from hub.config import Settings
from tests.helpers import register, running_app

NAME, PHONE = "Ouyang Xiaofeng", "13912345678"
PASSWORD = "pw-Zq81xYv"


@pytest.fixture
def loud(settings: Settings) -> Settings:
    return settings.model_copy(update={"log_level": "DEBUG"})


def _everything(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr()
    records = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records
    )
    return "\n".join((out.out, out.err, records))


async def test_a_failing_request_logs_neither_name_nor_phone(
    loud: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_app(loud) as api:
        await register(api, "jade", "JADE")
        # 1. A validation error: strawberry printed the document with the literals in it.
        await api.post(
            f'mutation {{ enrollMember(input: {{program: "JADE", externalRef: "J-1", '
            f'displayName: "{NAME}", phone: "{PHONE}", nosuch: 1}}) {{ member {{ id }} }} }}'
        )
        # 2. A variable that does not coerce: graphql-core quotes the value in its message.
        await api.post(
            "mutation E($input: EnrollMemberInput!) { enrollMember(input: $input) "
            "{ member { id } } }",
            {"input": {"program": "JADE", "externalRef": 7, "displayName": NAME, "phone": PHONE}},
        )

        # 3. An internal error while the document carries the member's name and phone.
        async def broken(*_: Any, **__: Any) -> Any:
            raise RuntimeError(f"insert failed for phone {PHONE}")

        monkeypatch.setattr("hub.members.enroll", broken)
        response = await api.post(
            f'mutation {{ enrollMember(input: {{program: "JADE", externalRef: "J-2", '
            f'displayName: "{NAME}", phone: "{PHONE}"}}) {{ member {{ id }} }} }}'
        )
        assert response.json()["errors"]
    logged = _everything(caplog, capsys)
    assert "RuntimeError" in logged  # the failure itself is logged...
    assert NAME not in logged and "Ouyang" not in logged  # ...but not who it was about
    assert PHONE not in logged


async def test_a_member_enrolled_at_debug_level_is_not_logged(
    loud: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside attack helper-78 (low): at DEBUG, aiosqlite logged every statement it ran
    with its parameters, a member's name and phone among them. The database drivers' and
    HTTP clients' debug lines (what they send) stay off at every level."""
    caplog.set_level(logging.DEBUG)
    async with running_app(loud) as api:
        await register(api, "jade", "JADE")
        data = await api.gql(
            "mutation E($input: EnrollMemberInput!) { enrollMember(input: $input) "
            "{ member { id } userErrors { code } } }",
            {
                "input": {
                    "program": "JADE",
                    "externalRef": "J-1",
                    "displayName": NAME,
                    "phone": PHONE,
                }
            },
        )
        assert data["enrollMember"]["userErrors"] == [], data
    logged = _everything(caplog, capsys)
    assert NAME not in logged and "Ouyang" not in logged
    assert PHONE not in logged


def test_redaction_masks_phones_and_url_passwords() -> None:
    line = logs.redact(
        f"call {PHONE} or +86 139-1234-5678 via postgresql+asyncpg://hub:{PASSWORD}@db:5432/hub"
    )
    assert PHONE not in line and "1234-5678" not in line and PASSWORD not in line
    assert "postgresql+asyncpg://hub:***@db:5432/hub" in line
    assert logs.safe_url(f"postgresql://hub:{PASSWORD}@db/hub") == "postgresql://hub:***@db/hub"
    assert logs.safe_url("sqlite+aiosqlite:///./hub.db") == "sqlite+aiosqlite:///./hub.db"


def test_settings_never_show_secrets_in_their_repr() -> None:
    settings = Settings(
        database_url=f"postgresql+asyncpg://hub:{PASSWORD}@db/hub",
        bootstrap_admin_key="boot-secret-1",
        secret_key="sign-secret-2",
    )
    shown = repr(settings) + str(settings)
    assert PASSWORD not in shown and "boot-secret-1" not in shown and "sign-secret-2" not in shown


def _hub(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_LOG_LEVEL": "INFO"}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [["migrate"], ["verify"], ["keys", "list"]])
def test_the_cli_prints_the_database_url_masked(command: list[str]) -> None:
    url = f"postgresql+asyncpg://hub:{PASSWORD}@127.0.0.1:1/hub"  # nothing listens on port 1
    result = _hub(*command, url=url)
    assert result.returncode != 0
    assert PASSWORD not in result.stdout + result.stderr
    if command == ["migrate"]:
        assert "postgresql+asyncpg://hub:***@127.0.0.1:1/hub" in result.stderr


async def test_startup_with_an_unreachable_database_logs_no_password(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(
        database_url=f"postgresql+asyncpg://hub:{PASSWORD}@127.0.0.1:1/hub",
        background_jobs=False,
        log_level="DEBUG",
    )
    async with running_app(settings) as api:
        assert (await api.client.get("/readyz")).status_code == 503
        await api.post("{ viewer { role } }")
    logged = _everything(caplog, capsys)
    assert "database" in logged
    assert PASSWORD not in logged


def test_uvicorn_and_strawberry_loggers_go_through_the_redactor(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(settings.model_copy(update={"log_level": "INFO"}))
    logging.getLogger("uvicorn.error").error("client %s said %s", "1.2.3.4", PHONE)
    logging.getLogger("strawberry.execution").error("document: phone %s", PHONE)
    logging.getLogger("uvicorn.access").info('1.2.3.4 - "GET /mall?phone=%s HTTP/1.1" 200', PHONE)
    err = capsys.readouterr().err
    assert "client 1.2.3.4 said" in err and "document: phone" in err
    assert PHONE not in err


def test_a_date_a_partner_url_names_stays_readable_and_phones_do_not() -> None:
    """A movements listing asks `bizDate=20261206`: a date, not a phone (outside attacks
    helper-70 and helper-71: the log read `bizDate=[phone]`). Eight digits elsewhere, or
    a phone given under a date's name, are masked still."""
    line = logs.redact("GET http://127.0.0.1:8103/transactions?bizDate=20261206&page=2")
    assert "bizDate=20261206" in line
    assert logs.redact("date=2026-12-06") == "date=2026-12-06"
    for masked in ("tel=20261206", "call 20261206", "bizDate=13800138000", "date=20261399"):
        assert logs.redact(masked).endswith("[phone]"), masked
