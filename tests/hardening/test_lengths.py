"""Free text has a length limit wherever a client may send it (outside review, 2026-12-04:
a reward's description of 20,000 characters and a statement's approval note of 5,000
were stored as sent)."""

from __future__ import annotations

import datetime as dt

from hub.db import utcnow
from tests.helpers import UPSERT, Api
from tests.world import World

APPROVE = """mutation A($id: ID!, $note: String) {
  approveStatement(id: $id, note: $note) { statement { status } userErrors { field code } }
}"""


async def test_a_rewards_description_past_its_limit_is_refused(world: World) -> None:
    await world.programs("JADE")
    jade = await world.key("MERCHANT", "jade")
    reward = {"ref": "MEAL", "kind": "MEAL", "title": "Set meal", "price": 100}
    refused = await world.api.gql(
        UPSERT, {"input": {**reward, "description": "x" * 4001}}, key=jade
    )
    errors = refused["upsertReward"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        (["input", "description"], "INVALID_INPUT")
    ]
    assert (await world.api.gql("{ rewards(first: 5) { edges { node { id } } } }"))["rewards"][
        "edges"
    ] == []
    made = await world.api.gql(UPSERT, {"input": {**reward, "description": "x" * 4000}}, key=jade)
    assert made["upsertReward"]["userErrors"] == []


async def test_a_statements_approval_note_past_its_limit_is_refused(api: Api) -> None:
    world = World(api)
    await world.programs("HUB", "JADE")
    member = await world.member("Li Wei", {"HUB": "H-1", "JADE": "J-1"}, points={"HUB": "500"})
    await world.rates(("HUB", "JADE", "1"))
    convert = await api.gql(
        "mutation C($i: ConvertPointsInput!) { convertPoints(input: $i) { userErrors { code } } }",
        {
            "i": {
                "memberId": member,
                "from": "HUB",
                "to": "JADE",
                "points": 100,
                "idempotencyKey": "c-1",
            }
        },
    )
    assert convert["convertPoints"]["userErrors"] == []
    today = utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    run = await api.gql(
        f'mutation {{ runSettlement(businessDate: "{today}") '
        "{ batch { statements { id } } } }"
    )
    statement = run["runSettlement"]["batch"]["statements"][0]["id"]
    finance = await world.key("FINANCE")
    refused = await api.gql(APPROVE, {"id": statement, "note": "n" * 2001}, key=finance)
    assert refused["approveStatement"]["userErrors"] == [
        {"field": ["note"], "code": "INVALID_INPUT"}
    ]
    done = await api.gql(APPROVE, {"id": statement, "note": "n" * 2000}, key=finance)
    assert done["approveStatement"]["statement"]["status"] == "APPROVED"
