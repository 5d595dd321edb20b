"""A body that is not a JSON object with a string `query` is a 400 with a GraphQL error
(issue 14), never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from hub.config import Settings
from tests.helpers import ADMIN_KEY, Api, running_app

BODIES = ["null", "42", '"query"', "[]", '{"query": 5}', "[{}]", "true", '{"query": null}']


@pytest.mark.parametrize("body", BODIES)
async def test_a_body_that_is_not_a_query_object_is_a_400(api: Api, body: str) -> None:
    response = await api.client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == "BAD_REQUEST"
    assert "JSON object" in errors[0]["message"]


async def test_a_query_object_still_runs(api: Api) -> None:
    response = await api.client.post(
        "/graphql",
        content='{"query": "{ viewer { role } }"}',
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"role": "ADMIN"}}}


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"query": "query A { __typename } query B { __typename }", "operationName": "C"}, "C"),
        ({"query": "query A { __typename }", "operationName": "B"}, "B"),
    ],
)
async def test_a_request_strawberry_refuses_is_a_json_400_too(
    api: Api, body: dict[str, str], said: str
) -> None:
    """An outside tester's find: an unknown operationName was a text/plain 400. Every 400
    is the same JSON BAD_REQUEST error."""
    response = await api.client.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert said in error["message"]


async def _bad_request(api: Api, body: str) -> dict[str, Any]:
    """The error of a body the hub refuses as a 400 BAD_REQUEST."""
    response = await api.client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    return error


@pytest.mark.parametrize(
    "body",
    [
        # A proxy or a log that reads the first `query` sees another operation than the one
        # the hub would run (Python's decoder keeps the last).
        '{"query": "{ viewer { role } }", "query": "mutation { __typename }"}',
        '{"query": "query Q($n: Int) { __typename }", "variables": {"n": 1, "n": 1000}}',
        '{"query": "{ __typename }", "variables": {}, "variables": {"a": 1}}',
    ],
)
async def test_a_body_naming_a_key_twice_is_a_400(api: Api, body: str) -> None:
    """Which of two values of one key counts is not said by JSON (RFC 8259: names SHOULD be
    unique; decoders differ): such a body is refused rather than read one way here and
    another way by whatever stands in front of the hub."""
    error = await _bad_request(api, body)
    assert "more than once" in error["message"], error


async def test_a_number_too_long_to_read_is_named_so(api: Api) -> None:
    """Outside attack (stop 32, low): a 5,000-digit integer in `variables` was answered
    "the body is not JSON" (Python's decoder stops at 4,300 digits); the body is JSON, the
    number is what the hub does not read."""
    body = '{"query": "query Q($n: Int) { __typename }", "variables": {"n": %s}}' % ("9" * 5000)
    error = await _bad_request(api, body)
    assert "5000 digits" in error["message"], error


async def _client_gone_mid_body(
    app: Any, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A POST to `app` whose client leaves before its body: what the app sent, and what it
    logged. (It raised starlette's ClientDisconnect before stop 45.)"""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"hub.test"),
            (b"content-type", b"application/json"),
            (b"content-length", b"40"),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("hub.test", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with capture_logs() as logged:
        await app(scope, receive, send)
    return sent, logged


async def test_a_client_gone_before_its_body_arrived_is_let_go_quietly(settings: Settings) -> None:
    """A client that sends a POST's headers and leaves before its body (outside attack,
    stop 45: 7,600 sockets reset mid-request put an "Exception in ASGI application" with a
    traceback, and a 500, in the log for each): nothing runs, nothing is answered (no one
    is there), no error is raised, and the access log says 499."""
    headers = [(b"authorization", f"Bearer {ADMIN_KEY}".encode())]
    async with running_app(settings.model_copy(update={"log_level": "INFO"})) as api:
        sent, logged = await _client_gone_mid_body(api.app, "/graphql", headers)
    assert sent == []
    (access,) = [line for line in logged if line["event"] == "request"]
    assert access["status"] == 499, logged
    assert not [line for line in logged if line["log_level"] in ("error", "critical")], logged


async def test_any_route_whose_client_left_mid_body_is_logged_499_not_raised(
    settings: Settings,
) -> None:
    """Every route, not /graphql alone (re-attack, stop 45: a partner's webhook POST and
    an accrual import reset mid-body still logged "Exception in ASGI application" and a
    500): a route reading a body its client never finished ends there, quietly."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from hub.accesslog import AccessLog

    async def reads(request: Request) -> Response:
        await request.body()
        return Response("never")

    # As the hub's app stacks it: Starlette's error middleware outside the access log.
    app = Starlette(
        routes=[Route("/x", reads, methods=["POST"])], middleware=[Middleware(AccessLog)]
    )
    async with running_app(settings.model_copy(update={"log_level": "INFO"})):
        sent, logged = await _client_gone_mid_body(app, "/x", [])  # the hub's logging
    assert sent == []
    (access,) = [line for line in logged if line["event"] == "request"]
    assert access["status"] == 499, logged
