"""POST /imports/accruals: CSV or NDJSON streamed in, staged, applied; the same rules as
importAccruals, a MERCHANT key for its own program."""

from __future__ import annotations

import datetime as dt
import json

import httpx
from sqlalchemy import func, select

from hub.config import Settings
from hub.db import Database, utcnow
from hub.models import ImportJob, ImportRow, OutboxEvent
from tests.helpers import (
    ADMIN_KEY,
    balances,
    create_key,
    live_app,
    register,
    running_app,
    verify_ledger,
)
from tests.imports.conftest import World, chunks, csv_of, import_rows, wait_for

URL = "/imports/accruals"


def _auth(key: str, content_type: str = "text/csv") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": content_type}


async def _jobs(db_url: str) -> list[ImportJob]:
    db = Database(db_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(ImportJob)))
    finally:
        await db.dispose()


async def test_a_csv_streams_in_and_each_line_is_an_accrual(world: World, db_url: str) -> None:
    api, jade = world.api, world.jade_key
    m = world.members
    last_week = (utcnow() - dt.timedelta(days=7)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    body = (
        "\ufeffmemberId,externalRef,orderRef,amount,occurredAt\r\n"
        f"{m[0]},,C-1,100.00,{last_week.isoformat(timespec='seconds')}\r\n"
        ",J-1,C-2,50,\r\n"
        f'{m[2]},,"C-3, with a comma",25\r\n'
        "\r\n"
        f"{m[0]},,C-1,100,\r\n"
        f"{m[1]},,C-6,lots,\r\n"
        f"{m[1]},,C-7,1,2,3,4\r\n"
        f'{m[3]},,"C-8\nsecond line",8,\r\n'
        f"{m[3]},,C-9,9\r\n"
    ).encode()
    response = await api.client.post(
        f"{URL}?program=JADE", content=chunks(body), headers=_auth(jade)
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "RUNNING" and answer["total"] == 8 and answer["rejected"] == 3
    job = await wait_for(api, answer["id"], jade)
    assert (job["status"], job["accepted"], job["rejected"]) == ("COMPLETED", 4, 4)
    # Lines as an editor numbers them: the header is 1, the blank line 5 counts, the quoted
    # line break of line 9 makes the next record line 11. (A line break inside an order
    # reference is refused, as in accruePoints: it is no reference one reads as it is.)
    assert [(e["line"], e["code"]) for e in job["errors"]] == [
        (6, "ALREADY_EXISTS"),
        (7, "INVALID_INPUT"),
        (8, "INVALID_INPUT"),
        (9, "INVALID_INPUT"),
    ]
    assert (await balances(api, m[0]))["JADE"] == 100
    assert (await balances(api, m[1]))["JADE"] == 50
    assert (await balances(api, m[2]))["JADE"] == 25
    assert (await balances(api, m[3]))["JADE"] == 9
    assert await verify_ledger(db_url) == []


async def test_ndjson_with_numbers_or_strings_for_amounts(world: World, db_url: str) -> None:
    api, jade = world.api, world.jade_key
    lines = [
        {"memberId": world.members[0], "orderRef": "N-1", "amount": 12.75},
        {"externalRef": "J-1", "orderRef": "N-2", "amount": "30"},
        [1, 2],
        {"memberId": world.members[0], "orderRef": "N-4", "amount": 0.001},
    ]
    body = "\n".join(json.dumps(x) for x in lines).encode() + b"\n{not json"
    body += b"\n" + b"[" * 5000 + b"]" * 5000  # deeper than Python's decoder goes
    # Which amount? JSON does not say (Python's decoder keeps the last, others the first).
    twice = f'{{"memberId": "{world.members[1]}", "orderRef": "N-7", "amount": 1, "amount": 900}}'
    body += b"\n" + twice.encode()
    response = await api.client.post(
        f"{URL}?program=JADE", content=body, headers=_auth(jade, "application/x-ndjson")
    )
    assert response.status_code == 202, response.text
    job = await wait_for(api, response.json()["id"], jade)
    assert [(e["line"], e["code"]) for e in job["errors"]] == [
        (3, "INVALID_INPUT"),
        (4, "INVALID_INPUT"),
        (5, "INVALID_INPUT"),
        (6, "INVALID_INPUT"),
        (7, "INVALID_INPUT"),
    ]
    assert '"amount" more than once' in job["errors"][-1]["message"], job["errors"]
    assert (await balances(api, world.members[0]))["JADE"] == 12
    assert (await balances(api, world.members[1]))["JADE"] == 30
    assert await verify_ledger(db_url) == []


async def test_a_line_older_than_accrue_points_allows_earns_nothing(
    world: World, db_url: str
) -> None:
    """Attack: accruePoints refuses a purchase more than HUB_ACCRUAL_BACKDATE_DAYS back; a
    file must not be the way around it (points under an old promotion, an old tier)."""
    api, jade, m = world.api, world.jade_key, world.members
    now = utcnow()
    body = csv_of(
        [
            [m[0], "OLD-1", "10", (now - dt.timedelta(days=91)).isoformat()],
            [m[0], "OLD-2", "10", (now - dt.timedelta(days=400)).isoformat()],
            [m[0], "OK-1", "10", (now - dt.timedelta(days=89)).isoformat()],
        ],
        header="memberId,orderRef,amount,occurredAt",
    )
    response = await api.client.post(f"{URL}?program=JADE", content=body, headers=_auth(jade))
    assert response.status_code == 202, response.text
    job = await wait_for(api, response.json()["id"], jade)
    assert [(e["line"], e["code"]) for e in job["errors"]] == [
        (2, "INVALID_INPUT"),
        (3, "INVALID_INPUT"),
    ]
    assert "at most 90 days back" in job["errors"][0]["message"]
    assert (await balances(api, m[0]))["JADE"] == 10


async def test_amounts_are_plain_decimals_as_in_graphql(world: World, db_url: str) -> None:
    """Attack: "1e2", 1e3 and Arabic-Indic digits read as amounts by Python's Decimal; the
    GraphQL Decimal scalar refuses them, and so does a file. A plain JSON number is exact."""
    api, jade, m = world.api, world.jade_key, world.members
    member = json.dumps(m[0])
    amounts = ['"1e2"', "1e3", '"\u0661\u0662"', '"1_000"', "true", "10.50"]
    body = "".join(
        f'{{"memberId": {member}, "orderRef": "E-{n}", "amount": {amount}}}\n'
        for n, amount in enumerate(amounts, start=1)
    ).encode()
    response = await api.client.post(
        f"{URL}?program=JADE", content=body, headers=_auth(jade, "application/x-ndjson")
    )
    assert response.status_code == 202, response.text
    job = await wait_for(api, response.json()["id"], jade)
    assert [(e["line"], e["code"]) for e in job["errors"]] == [
        (n, "INVALID_INPUT") for n in range(1, 6)
    ]
    assert (await balances(api, m[0]))["JADE"] == 10
    csv_body = csv_of([[m[1], "E-7", "2E1"], [m[1], "E-8", "+5"], [m[1], "E-9", "7"]])
    response = await api.client.post(f"{URL}?program=JADE", content=csv_body, headers=_auth(jade))
    job = await wait_for(api, response.json()["id"], jade)
    assert [(e["line"], e["code"]) for e in job["errors"]] == [
        (2, "INVALID_INPUT"),
        (3, "INVALID_INPUT"),
    ]
    assert (await balances(api, m[1]))["JADE"] == 7
    assert await verify_ledger(db_url) == []


async def test_refusals_start_no_job(world: World, db_url: str) -> None:
    api, jade = world.api, world.jade_key
    good = csv_of([[world.members[0], "Z-1", "10"]])
    cases = [
        ({"Content-Type": "text/csv"}, "JADE", good, 401),
        (_auth(world.lotus_key), "JADE", good, 403),  # another merchant's program
        (_auth(await create_key(api, "FINANCE")), "JADE", good, 403),
        (_auth(jade), "NOPE", good, 404),
        (_auth(jade), "", good, 400),
        (_auth(jade, "application/json"), "JADE", good, 415),
        (_auth(jade), "JADE", b"member,order,amount\nx,y,1\n", 400),  # no usable header
        (_auth(jade), "JADE", b"memberId,orderRef,amount\n", 400),  # nothing to import
        (_auth(jade), "JADE", b"", 400),
    ]
    for headers, program, body, status in cases:
        response = await api.client.post(f"{URL}?program={program}", content=body, headers=headers)
        assert response.status_code == status, (program, headers, response.text)
        if status != 401:
            assert response.json()["code"] in {"FORBIDDEN", "NOT_FOUND", "INVALID_INPUT"}
    assert await _jobs(db_url) == []
    assert (await balances(api, world.members[0]))["JADE"] == 0


async def test_admin_imports_for_any_program_through_http(world: World) -> None:
    api = world.api
    response = await api.client.post(
        f"{URL}?program=LOTUS",
        content=csv_of([[world.outsider, "A-1", "40"]]),
        headers=_auth(ADMIN_KEY, "text/csv; charset=utf-8"),
    )
    assert response.status_code == 202, response.text
    job = await wait_for(api, response.json()["id"], ADMIN_KEY)
    assert job["accepted"] == 1
    assert (await balances(api, world.outsider))["LOTUS"] == 40


async def test_events_for_each_imported_accrual_when_someone_listens(
    world: World, db_url: str, settings: Settings
) -> None:
    """POINTS_ACCRUED per accepted line, like accruePoints, written with the chunk; none while
    no subscription would receive them (delivery reaches only earlier subscriptions)."""
    api, jade = world.api, world.jade_key
    quiet = await api.client.post(
        f"{URL}?program=JADE", content=csv_of([[world.members[0], "E-0", "5"]]), headers=_auth(jade)
    )
    await wait_for(api, quiet.json()["id"], jade)
    assert await _events(db_url) == []
    async with running_app(settings.model_copy(update={"allow_private_partners": True})) as hub:
        made = await hub.gql(
            "mutation($i: WebhookInput!) { subscribeWebhook(input: $i) { userErrors { code } } }",
            {"i": {"url": "http://127.0.0.1:9/hooks", "events": ["POINTS_ACCRUED"]}},
            key=jade,
        )
        assert made["subscribeWebhook"]["userErrors"] == []
    rows = [[world.members[i % 4], f"E-{i}", "10"] for i in range(1, 8)] + [["mbr_x", "E-99", "1"]]
    loud = await api.client.post(f"{URL}?program=JADE", content=csv_of(rows), headers=_auth(jade))
    job = await wait_for(api, loud.json()["id"], jade)
    assert (job["accepted"], job["rejected"]) == (7, 1)
    events = await _events(db_url)
    assert len(events) == 7
    assert {e["type"] for e in events} == {"POINTS_ACCRUED"}
    assert {e["merchantId"] for e in events} == {"jade"}
    assert len({e["id"] for e in events}) == 7
    data = sorted((e["data"] for e in events), key=lambda d: d["orderRef"])
    assert data[0]["orderRef"] == "E-1" and data[0]["points"] == 10
    assert data[0]["memberId"] == world.members[1] and data[0]["program"] == "JADE"
    assert {d["importJobId"] for d in data} == {job["id"]}


async def _events(db_url: str) -> list[dict[str, object]]:
    db = Database(db_url)
    try:
        async with db.read() as session:
            payloads = await session.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id))
            return [json.loads(p) for p in payloads]
    finally:
        await db.dispose()


async def test_a_large_file_streams_through_a_real_socket_in_bounded_batches(
    world: World, db_url: str, settings: Settings
) -> None:
    """20,000 lines over uvicorn, staged 500 at a time: every line imported once."""
    small = settings.model_copy(update={"import_chunk_rows": 500})
    rows = [[world.members[i % 4], f"L-{i}", "3"] for i in range(20_000)]
    async with live_app(small) as (url, hub):

        async def body():  # type: ignore[no-untyped-def]
            data = csv_of(rows)
            for start in range(0, len(data), 65_536):
                yield data[start : start + 65_536]

        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            response = await client.post(
                f"{URL}?program=JADE", content=body(), headers=_auth(world.jade_key)
            )
        assert response.status_code == 202, response.text
        job = await wait_for(hub, response.json()["id"], world.jade_key, seconds=180)
    assert (job["accepted"], job["rejected"], job["points"]) == (20_000, 0, 60_000)
    for member in world.members:
        assert (await balances(world.api, member))["JADE"] == 15_000
    db = Database(db_url)
    try:
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(ImportRow)) == 0
    finally:
        await db.dispose()
    assert await verify_ledger(db_url) == []


async def test_a_connected_program_imports_nothing(
    world: World, db_url: str, settings: Settings
) -> None:
    """Balances of a connected program live at the partner: accrue there (INVALID_STATE)."""
    config = {"baseUrl": "http://127.0.0.1:9/sky", "secretRef": "SKY"}
    async with running_app(settings.model_copy(update={"allow_private_partners": True})) as hub:
        await register(
            hub,
            "skyair",
            "SKYMILES",
            category="AIRLINE",
            connector="AIRLINE",
            connectorConfig=json.dumps(config),
        )
        rows = [{"externalRef": "SK-1", "orderRef": "S-1", "amount": "10"}]
        refused = await import_rows(hub, "SKYMILES", rows, ADMIN_KEY)
        assert refused["job"] is None
        assert refused["userErrors"][0]["code"] == "INVALID_STATE"
        response = await hub.client.post(
            f"{URL}?program=SKYMILES",
            content=b"externalRef,orderRef,amount\nSK-1,S-1,10\n",
            headers=_auth(ADMIN_KEY),
        )
        assert response.status_code == 409
        assert response.json()["code"] == "INVALID_STATE"
    assert await _jobs(db_url) == []
