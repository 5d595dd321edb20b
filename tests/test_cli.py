"""The operator's CLI, run as a process against a real database."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import Api, accrue, enroll, register

HUB = [sys.executable, "-m", "hub"]


def _run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_DATABASE_URL": db_url, "HUB_LOG_LEVEL": "WARNING"}
    return subprocess.run([*HUB, *args], env=env, capture_output=True, text=True, timeout=120)


async def test_migrate_keys_verify_and_expire(api: Api, db_url: str) -> None:
    assert _run(db_url, "migrate").returncode == 0
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    await accrue(api, member, "JADE", "10")
    created = _run(
        db_url,
        "keys",
        "create",
        "--role",
        "MERCHANT",
        "--merchant",
        "jade",
        "--label",
        "jade backend",
    )
    assert created.returncode == 0, created.stderr
    key_id, secret = created.stdout.strip().split("\t")
    assert key_id.startswith("key_") and secret.startswith("hub_")
    data = await api.gql("{ viewer { merchant { id } } }", key=secret)
    assert data["viewer"]["merchant"] == {"id": "jade"}
    refused = _run(db_url, "keys", "create", "--role", "MERCHANT", "--label", "x")
    assert refused.returncode == 1
    assert "merchantId" in refused.stderr
    verified = _run(db_url, "verify")
    assert verified.returncode == 0, verified.stdout
    assert "ledger sound" in verified.stdout
    expired = _run(db_url, "expire")
    assert expired.returncode == 0
    assert "expired 0 points in 0 accounts" in expired.stdout


async def test_verify_reports_a_tampered_balance(api: Api, db_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    await accrue(api, member, "JADE", "10")
    engine = create_async_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE accounts SET balance = balance + 5 WHERE kind = 'MEMBER'"))
    await engine.dispose()
    verified = _run(db_url, "verify")
    assert verified.returncode == 1
    assert "balance equals postings" in verified.stdout
    assert "balance equals open lots" in verified.stdout


async def test_verify_reports_a_missing_obligation(api: Api, db_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.helpers import convert, set_rate

    await register(api, "jade", "JADE")
    await register(api, "lotus", "LOTUS")
    member = await enroll(api, "JADE", "J-1")
    await enroll(api, "LOTUS", "L-1", member_id=member)
    await accrue(api, member, "JADE", "100")
    await set_rate(api, "JADE", "LOTUS", "2")
    await convert(api, member, "JADE", "LOTUS", 50)
    assert _run(db_url, "verify").returncode == 0
    engine = create_async_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM obligations"))
    await engine.dispose()
    verified = _run(db_url, "verify")
    assert verified.returncode == 1
    assert "obligation per conversion leg" in verified.stdout


async def test_settle_refuses_a_date_that_has_not_begun(api: Api, db_url: str) -> None:
    """`hub settle` follows runSettlement's rule: a business date that has not begun where
    settlement keeps time is refused, and no batch is made (its obligations are still to
    come)."""
    import datetime as dt

    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
    refused = _run(db_url, "settle", "--date", tomorrow)
    assert refused.returncode != 0, refused.stdout
    assert "has not begun" in refused.stderr, refused.stderr
    found = await api.gql(
        "query($d: Date!) { settlementBatch(businessDate: $d) { id } }", {"d": tomorrow}
    )
    assert found["settlementBatch"] is None, found
