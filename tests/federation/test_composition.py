"""The hub composes into a supergraph beside a second subgraph that extends Member,
with Apollo's own composition library (@apollo/composition from the npm registry)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import Api

HERE = Path(__file__).parent
REVIEWS = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])

type Member @key(fields: "id") {
  id: ID!
  loyaltyTier: String
  reviews: [Review!]!
}

type Review {
  id: ID!
  stars: Int!
  reward: Reward
}

type Reward @key(fields: "id", resolvable: false) {
  id: ID!
}

type Query {
  topReviews: [Review!]!
}
"""


def _node_ready() -> bool:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return False
    if not (HERE / "node_modules" / "@apollo" / "composition").exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(HERE)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return True


def _compose(hub: Path, reviews: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(HERE / "compose.mjs"), f"hub={hub}", f"reviews={reviews}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
    )


def _compose(hub: Path, reviews: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(HERE / "compose.mjs"), f"hub={hub}", f"reviews={reviews}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
async def test_hub_sdl_composes_with_a_subgraph_extending_member(api: Api, tmp_path: Path) -> None:
    assert _node_ready()
    sdl = (await api.gql("{ _service { sdl } }"))["_service"]["sdl"]
    hub, reviews = tmp_path / "hub.graphql", tmp_path / "reviews.graphql"
    hub.write_text(sdl)
    reviews.write_text(REVIEWS)
    result = _compose(hub, reviews)
    assert result.returncode == 0, result.stderr
    supergraph = result.stdout
    assert 'join__type(graph: HUB, key: "id")' in supergraph
    assert "loyaltyTier" in supergraph and "convertPoints" in supergraph


async def test_entities_resolve_merchant_program_member_and_reward(api: Api) -> None:
    from tests.helpers import enroll, register

    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1", "Ma Lin")
    data = await api.gql(
        "query($reps: [_Any!]!) { _entities(representations: $reps) { "
        "... on Merchant { id name } ... on Program { code } ... on Member { id displayName } } }",
        {
            "reps": [
                {"__typename": "Merchant", "id": "jade"},
                {"__typename": "Program", "code": "JADE"},
                {"__typename": "Member", "id": member},
                {"__typename": "Member", "id": "mbr_missing"},
            ]
        },
    )
    assert data["_entities"] == [
        {"id": "jade", "name": "Jade"},
        {"code": "JADE"},
        {"id": member, "displayName": "Ma Lin"},
        None,
    ]
