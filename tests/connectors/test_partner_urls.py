"""Partner base URLs reach the partner and nothing else: no metadata service, no
link-local, loopback or private address unless HUB_ALLOW_PRIVATE_PARTNERS=1; and a
member's externalRef cannot change which partner path is called."""

from __future__ import annotations

import json

import httpx
import pytest

from connectors.base import MemberAccount, PointsCall, Purpose
from connectors.breaker import Breaker
from connectors.dialects import AirlineDialect, Dialect
from connectors.http import PartnerClient, PartnerConfig
from connectors.partner import PartnerConnector
from hub.config import Settings
from tests.helpers import REGISTER, Api, merchant_input, running_app

ALWAYS_REFUSED = [
    "ftp://partner.example/hub",
    "file:///etc/passwd",
    "gopher://partner.example/",
    "javascript:alert(1)",
    "http://",
    "https://user:secret@partner.example/hub",  # credentials never go into the database
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./",
    "http://169.254.10.1/",  # link-local
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "http://0.0.0.0:8101/",
    "http://partner.example\\@169.254.169.254/",  # parsers disagree on where the host is
    "http://partner.example /hub",
]
PRIVATE = [
    "http://127.0.0.1:8101",
    "http://localhost:8101/",
    "http://api.localhost/",
    "http://[::1]:8101/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://127.1/",  # short IPv4 forms resolve to loopback too
    "http://2130706433/",
    "http://0x7f.0.0.1/",
    "http://10.1.2.3/",
    "http://172.16.0.9/",
    "http://192.168.1.20:8080/",
    "http://100.64.0.1/",  # carrier-grade NAT
]


async def _register(api: Api, base_url: str) -> dict[str, object]:
    config = json.dumps({"baseUrl": base_url, "secretRef": "SKYAIR"})
    data = await api.gql(
        REGISTER,
        {
            "input": merchant_input(
                "skyair", "SKYMILES", "AIRLINE", connector="AIRLINE", connectorConfig=config
            )
        },
    )
    payload: dict[str, object] = data["registerMerchant"]
    return payload


async def _merchants(api: Api) -> list[str]:
    return [m["id"] for m in (await api.gql("{ merchants { id } }"))["merchants"]]


@pytest.mark.parametrize("url", ALWAYS_REFUSED + PRIVATE)
async def test_a_base_url_that_is_not_a_public_partner_is_refused(api: Api, url: str) -> None:
    payload = await _register(api, url)
    assert payload["merchant"] is None
    errors = payload["userErrors"]
    assert isinstance(errors, list)
    assert errors[0]["code"] == "INVALID_INPUT"
    assert errors[0]["field"] == ["input", "connectorConfig"]
    assert await _merchants(api) == []


async def test_a_public_https_partner_is_accepted(api: Api) -> None:
    payload = await _register(api, "https://api.skyair.example/hub/v1")
    assert payload["userErrors"] == []


@pytest.mark.parametrize("url", PRIVATE[:3])
async def test_loopback_partners_are_allowed_when_configured(settings: Settings, url: str) -> None:
    async with running_app(settings.model_copy(update={"allow_private_partners": True})) as api:
        payload = await _register(api, url)
        assert payload["userErrors"] == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://metadata.google.internal/"])
async def test_metadata_stays_refused_even_when_private_partners_are_allowed(
    settings: Settings, url: str
) -> None:
    async with running_app(settings.model_copy(update={"allow_private_partners": True})) as api:
        payload = await _register(api, url)
        assert payload["merchant"] is None


async def test_a_stored_private_url_is_not_called_once_private_partners_are_off(
    settings: Settings,
) -> None:
    """A program registered while HUB_ALLOW_PRIVATE_PARTNERS=1 is not called after the hub
    restarts without it: the connector refuses instead of calling."""
    allowed = settings.model_copy(
        update={"allow_private_partners": True, "partner_secrets": {"SKYAIR": "s"}}
    )
    async with running_app(allowed) as api:
        assert (await _register(api, "http://127.0.0.1:9"))["userErrors"] == []
    async with running_app(settings.model_copy(update={"partner_secrets": {"SKYAIR": "s"}})) as api:
        runtime = api.app.state.runtime
        async with runtime.db.read() as session:
            from hub.models import Program

            program = await session.get(Program, "SKYMILES")
            assert program is not None
            connector = runtime.connectors.for_program(program, session, "test")
            assert not await connector.health()
            result = await connector.debit(
                PointsCall(
                    account=MemberAccount("mbr_x", "SKYMILES", "S-1"),
                    points=1,
                    idempotency_key="k",
                    purpose=Purpose.CONVERSION,
                    reference="r",
                    memo="m",
                )
            )
            assert result.code is not None and result.code.value == "PARTNER_UNAVAILABLE"
            assert "HUB_ALLOW_PRIVATE_PARTNERS" in (result.message or "")


@pytest.mark.parametrize("dialect", [Dialect(), AirlineDialect()])
async def test_an_external_ref_is_one_path_segment(dialect: Dialect) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"balance": 1, "miles": 1, "transactionId": "t"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        partner = PartnerClient(
            "skyair",
            PartnerConfig(base_url="https://partner.example/api", secret="s", retries=0),
            client,
            Breaker(failures_to_open=5, cooldown_seconds=10),
        )
        connector = PartnerConnector(dialect, partner)
        for ref in ("VICTIM/credit?x=", "..", "a b#c", "%2e%2e"):
            await connector.debit(
                PointsCall(
                    account=MemberAccount("mbr_x", "SKYMILES", ref),
                    points=1,
                    idempotency_key="k",
                    purpose=Purpose.CONVERSION,
                    reference="r",
                    memo="m",
                )
            )
    prefix = "/api" + dialect.debit.path.split("{ref}")[0]
    suffix = dialect.debit.path.split("{ref}")[1]
    segments = [path.removeprefix(prefix).removesuffix(suffix) for path in seen]
    assert all(path.startswith(prefix) and path.endswith(suffix) for path in seen), seen
    assert segments == ["VICTIM%2Fcredit%3Fx%3D", "%2E%2E", "a%20b%23c", "%252e%252e"]
