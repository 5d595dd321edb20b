"""The merchants, members and rates most tests start from, built through the API.

Each test file used to register its own platform, restaurant and hotel, enrol its
members and set its rates in a dozen lines of its own; `World` says it in one: which
programs (each always the same merchant and category, so a failure names a world the
reader already knows), which member holds which accounts and points, which rates and
keys. The `world` fixture (tests/conftest.py) hands a test an empty one over its `api`;
a file that wants more builds it in a fixture of the same name that takes `world`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import Api, accrue, create_key, enroll, register, set_rate

# Each program the tests use: its merchant and the merchant's category.
PROGRAMS: dict[str, tuple[str, str]] = {
    "HUB": ("haowu", "PLATFORM"),
    "JADE": ("jade", "RESTAURANT"),
    "LOTUS": ("lotus", "HOTEL"),
    "SKYMILES": ("skyair", "AIRLINE"),
    "CLEAR": ("clearview", "RETAIL"),
}


@dataclass
class World:
    api: Api
    keys: dict[tuple[str, str | None], str] = field(default_factory=dict)

    async def programs(self, *codes: str, **terms: Any) -> None:
        """Register each program's merchant; `terms` is what every one of them gets
        (`accrualRate="1"`), or per program a mapping (`LOTUS={"pointValue": "0.05"}`)."""
        shared = {k: v for k, v in terms.items() if k not in PROGRAMS}
        for code in codes:
            merchant, category = PROGRAMS[code]
            await register(
                self.api, merchant, code, category=category, **shared | terms.get(code, {})
            )

    async def member(
        self, name: str, accounts: Mapping[str, str], points: Mapping[str, str] | None = None
    ) -> str:
        """Enrol `name` in each program (code -> external ref, the first one first), then
        accrue each purchase amount in `points`; the member's id."""
        (first, ref), *more = accounts.items()
        member = await enroll(self.api, first, ref, name)
        for code, other in more:
            await enroll(self.api, code, other, member_id=member)
        for code, amount in (points or {}).items():
            earned = await accrue(self.api, member, code, amount)
            assert earned["userErrors"] == [], earned
        return member

    async def rates(self, *pairs: tuple[str, str, str]) -> None:
        """Set each (from, to, rate)."""
        for source, target, rate in pairs:
            await set_rate(self.api, source, target, rate)

    async def key(self, role: str, merchant: str | None = None) -> str:
        """A key of `role` (for `merchant`), made once per world."""
        if (role, merchant) not in self.keys:
            self.keys[role, merchant] = await create_key(self.api, role, merchant)
        return self.keys[role, merchant]
