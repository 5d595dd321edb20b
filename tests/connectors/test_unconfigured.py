"""A connected merchant whose secret the hub was not given: nothing moves, and every
answer says what to configure."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import update

from hub import members
from hub.auth import Principal
from hub.db import utcnow
from hub.enums import Role
from hub.exchange.saga import MAX_CREDIT_ATTEMPTS, resume_due
from hub.models import Conversion
from tests.helpers import ENROLL, Api, accrue, convert, enroll, register, set_rate

ADMIN = Principal(key_id="test", role=Role.ADMIN)


async def test_a_partner_without_a_secret_is_refused_not_guessed(api: Api) -> None:
    config = json.dumps({"baseUrl": "https://skyair.example/hub", "secretRef": "NOSUCH"})
    await register(
        api, "skyair", "SKYMILES", category="AIRLINE", connector="AIRLINE", connectorConfig=config
    )
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    # The partner cannot confirm the membership number, so the hub does not link it ...
    refused = await api.gql(
        ENROLL,
        {
            "input": {
                "program": "SKYMILES",
                "externalRef": "S-1",
                "displayName": "Li Wei",
                "memberId": member,
            }
        },
    )
    assert refused["enrollMember"]["member"] is None
    [error] = refused["enrollMember"]["userErrors"]
    assert error["code"] == "PARTNER_UNAVAILABLE"
    assert "HUB_PARTNER_SECRET_NOSUCH" in error["message"]
    # ... but an account linked while the secret was still configured stays, and is refused.
    runtime = api.app.state.runtime
    link = members.Enrollment("SKYMILES", "S-1", "Li Wei", member_id=member)
    await runtime.db.transaction(lambda s: members.enroll(s, ADMIN, link))
    await accrue(api, member, "JADE", "100")
    await set_rate(api, "JADE", "SKYMILES", "1")
    response = await api.post(
        "query($id: ID!) { member(id: $id) { accounts { balance } } }", {"id": member}
    )
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == "PARTNER_UNAVAILABLE"
    payload = await convert(api, member, "JADE", "SKYMILES", 50)
    # Not sent: the credit is retried for a while, then the debit is reversed.
    assert payload["conversion"]["status"] == "PENDING"
    async with runtime.db.write() as session:
        await session.execute(
            update(Conversion).values(
                attempts=MAX_CREDIT_ATTEMPTS,
                next_attempt_at=None,
                updated_at=utcnow() - dt.timedelta(seconds=5),
            )
        )
    await resume_due(runtime.db, runtime.settings, runtime.connectors)
    done = await api.gql(
        "query($id: ID!) { conversion(id: $id) { status } }", {"id": payload["conversion"]["id"]}
    )
    assert done["conversion"]["status"] == "REVERSED"
    balance = await api.gql(
        'query($id: ID!) { member(id: $id) { account(program: "JADE") { balance } } }',
        {"id": member},
    )
    assert balance["member"]["account"]["balance"] == 100
    catalog = await api.gql("{ rewards { unavailableMerchants { id } } }")
    assert catalog["rewards"]["unavailableMerchants"] == [{"id": "skyair"}]
