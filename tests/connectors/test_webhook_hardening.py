"""Inbound partner webhooks: replays are told apart by the id inside the signed body, a
malformed signature is a 401, and an oversized body is refused before any hashing."""

from __future__ import annotations

import json

import httpx
import pytest

from connectors import signing
from connectors.webhooks import MAX_BODY_BYTES
from tests.helpers import Api
from tests.partners import Partners, register_connected


async def _events(api: Api) -> list[str]:
    from sqlalchemy import select

    from hub.models import PartnerEvent

    async with api.app.state.runtime.db.read() as session:
        return list(await session.scalars(select(PartnerEvent.event_id)))


async def _skyair(hub: Api, live_partners: Partners) -> str:
    await register_connected(hub, live_partners, "skyair", "SKYMILES", "AIRLINE")
    return live_partners.sandbox("skyair").secret


async def _post(hub: Api, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await hub.client.post(
        "/webhooks/skyair", content=body, headers={**headers, "Content-Type": "application/json"}
    )


async def test_the_same_signed_body_under_another_header_id_runs_once(
    hub: Api, live_partners: Partners
) -> None:
    secret = await _skyair(hub, live_partners)
    body = json.dumps(
        {"eventId": "E-42", "type": "flight.cancelled", "flight": "SA101", "bookings": []}
    ).encode()
    first = await _post(
        hub, body, {**signing.headers(secret, body, prefix="Partner"), "X-Partner-Event-Id": "A"}
    )
    assert first.status_code == 200, first.text
    assert first.json()["received"] == "E-42"
    # An eavesdropper replays the signed body with a fresh (unsigned) header value.
    replay = await _post(
        hub, body, {**signing.headers(secret, body, prefix="Partner"), "X-Partner-Event-Id": "B"}
    )
    assert replay.status_code in (400, 409), replay.text
    plain = await _post(hub, body, signing.headers(secret, body, prefix="Partner"))
    assert plain.status_code == 409
    assert await _events(hub) == ["E-42"]


async def test_a_body_without_a_signed_event_id_is_refused(
    hub: Api, live_partners: Partners
) -> None:
    secret = await _skyair(hub, live_partners)
    body = json.dumps({"type": "flight.cancelled", "bookings": []}).encode()
    headers = {**signing.headers(secret, body, prefix="Partner"), "X-Partner-Event-Id": "E-1"}
    response = await _post(hub, body, headers)
    assert response.status_code == 400
    assert "eventId" in response.json()["error"]
    assert await _events(hub) == []


async def test_a_signed_body_naming_a_key_twice_is_refused(
    hub: Api, live_partners: Partners
) -> None:
    """Which eventId is it? JSON does not say, and the partner's encoder may have meant the
    other one: the body is refused, nothing recorded."""
    secret = await _skyair(hub, live_partners)
    body = b'{"eventId": "E-1", "type": "flight.cancelled", "bookings": [], "eventId": "E-2"}'
    headers = signing.headers(secret, body, prefix="Partner")
    response = await _post(hub, body, headers)
    assert response.status_code == 400
    assert '"eventId" more than once' in response.json()["error"]
    assert await _events(hub) == []


@pytest.mark.parametrize("header", ["X-Partner-Signature", "X-Partner-Timestamp"])
async def test_a_non_ascii_signature_header_is_401_not_500(
    hub: Api, live_partners: Partners, header: str
) -> None:
    secret = await _skyair(hub, live_partners)
    body = json.dumps({"eventId": "E-7", "type": "flight.cancelled", "bookings": []}).encode()
    headers = signing.headers(secret, body, prefix="Partner")
    raw = [(k.encode(), v.encode()) for k, v in headers.items() if k != header]
    value = "v1=é" if header == "X-Partner-Signature" else "١٧٠٠٠٠٠٠٠٠"  # Arabic-Indic digits
    raw.append((header.encode(), value.encode("utf-8")))
    raw.append((b"content-type", b"application/json"))
    response = await hub.client.post("/webhooks/skyair", content=body, headers=raw)
    assert response.status_code == 401, response.text
    assert await _events(hub) == []


async def test_a_body_over_64_kib_is_413_before_the_signature_is_computed(
    hub: Api, live_partners: Partners, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = await _skyair(hub, live_partners)
    signed: list[int] = []
    real_sign = signing.sign

    def counting(secret_: str, timestamp: str, body_: bytes) -> str:
        signed.append(len(body_))
        return real_sign(secret_, timestamp, body_)

    monkeypatch.setattr(signing, "sign", counting)
    big = json.dumps(
        {"eventId": "E-9", "type": "flight.cancelled", "pad": "x" * MAX_BODY_BYTES}
    ).encode()
    headers = {
        "X-Partner-Timestamp": "1",
        "X-Partner-Signature": "v1=" + "0" * 64,
        "Content-Type": "application/json",
    }
    response = await hub.client.post("/webhooks/skyair", content=big, headers=headers)
    assert response.status_code == 413
    # A lying Content-Length does not help: the body is read with a limit.
    lying = await hub.client.post(
        "/webhooks/skyair", content=big, headers={**headers, "Content-Length": "10"}
    )
    assert lying.status_code in (400, 413)
    streamed = await hub.client.post(
        "/webhooks/skyair", content=_chunks(big), headers=headers
    )  # chunked: no Content-Length at all
    assert streamed.status_code == 413
    assert signed == []
    assert await _events(hub) == []
    # A body just under the limit is read and verified as usual.
    small = json.dumps({"eventId": "E-10", "type": "flight.cancelled", "bookings": []}).encode()
    assert len(small) < MAX_BODY_BYTES
    ok = await _post(hub, small, signing.headers(secret, small, prefix="Partner"))
    assert ok.status_code == 200, ok.text


async def _chunks(body: bytes):  # type: ignore[no-untyped-def]
    for start in range(0, len(body), 8192):
        yield body[start : start + 8192]


async def test_a_booking_of_no_redemption_of_the_partner_is_named_in_the_outcome(
    hub: Api, live_partners: Partners
) -> None:
    """A cancellation naming a booking the partner has no redemption for changes nothing,
    and its outcome says which booking (outside attack helper-72: an empty reference read
    ": no redemption")."""
    secret = await _skyair(hub, live_partners)
    body = json.dumps(
        {
            "eventId": "E-77",
            "type": "flight.cancelled",
            "bookings": [{"bookingRef": ""}, {"bookingRef": "PNR-NONE"}],
        }
    ).encode()
    answer = await _post(hub, body, signing.headers(secret, body, prefix="Partner"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == (
        "booking '': no redemption of yours; booking 'PNR-NONE': no redemption of yours"
    ), answer.json()
