"""A deterministic simulation of the hub, in the spirit of TigerBeetle's VOPR.

One seed draws everything: the operations (accrue, convert through every kind
of route, redeem, cancel by the member and by the merchant, expire, settle,
"time passes"), the sandbox partners' faults (5xx, a timeout before applying,
"apply then lose the answer", slow answers, refused connections) and hub
restarts. The operations go through the hub's GraphQL API over HTTP (the app
in-process, the partners on loopback), like a storefront, a merchant and
finance would call it; expiry runs the ledger job directly.

A model keeps what every member should hold: an operation the hub answered as
failed moved nothing, one answered as completed moved exactly its amounts, and
one answered as pending is settled by reading its final state once the world
quiesces (faults off, sagas driven until nothing is pending). Then every
balance must equal the model, `hub verify` must be clean and every partner
must reconcile. A failure says how to replay it: the same seed and operation
count draw the same operations and faults (the timing of real HTTP may still
differ a little between runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import func, or_, select, update

from hub.config import Settings
from hub.db import utcnow
from hub.exchange import saga as conversion_saga
from hub.ledger.jobs import run_expiry
from hub.mall import saga as redemption_saga
from hub.models import Conversion, Redemption
from hub.runtime import Runtime
from tests.helpers import (
    ADMIN_KEY,
    Api,
    accrue,
    cancel_redemption,
    convert,
    create_key,
    enroll,
    member_session,
    redeem,
    register,
    running_app,
    set_rate,
    upsert_reward,
    verify_ledger,
)
from tests.partners import Partners, partners, register_connected

# Defects of issue 15 that other branches fix. A run "avoids" one by not drawing what
# triggers it, so that the short run in `make test` is about what is not known yet;
# remove a number here once its fix is merged (`--all` replays with none avoided).
#  1: an unreachable partner (refused connection, open breaker) during REFUND,
#     COMPENSATE, RELEASE or UNBOOK is taken as a refusal  -> no refused connections,
#     no breaker
#  3: a refused merchant cancellation leaves compensation for a later member one
#     -> (follows from 1: without refused connections no cancellation is refused)
#  9: a refund after expiry brings points back with a fresh expiry -> a redemption paid
#     with an expiring program before an expiry run is not cancelled afterwards
# 12: a 504 then a connection error ends as "not sent" -> (no refused connections)
KNOWN_BUGS: frozenset[int] = frozenset()

HOSTED = {"haowu": ("HUB", "PLATFORM"), "jade": ("JADE", "RESTAURANT")}
HOSTED_EXPIRING = {"clearview": ("CLEAR", "RETAIL")}
CONNECTED = {
    "skyair": ("SKYMILES", "AIRLINE"),
    "lotus": ("LOTUS", "HOTEL"),
    "carwash": ("WASH", "HTTP"),
}
POINT_VALUE = {
    "HUB": "0.10",
    "JADE": "0.10",
    "CLEAR": "0.05",
    "SKYMILES": "0.08",
    "LOTUS": "0.05",
    "WASH": "0.10",
}
COMPENSATION = {
    "jade": "10",
    "clearview": "5",
    "carwash": "20",
    "haowu": "10",
    "skyair": "10",
    "lotus": "10",
}
RATES = [  # every program to and from HUB, and a few direct pairs; the rest route via HUB
    ("JADE", "HUB", "1"), ("HUB", "JADE", "1"),
    ("CLEAR", "HUB", "0.5"), ("HUB", "CLEAR", "2"),
    ("SKYMILES", "HUB", "0.8"), ("HUB", "SKYMILES", "1.25"),
    ("LOTUS", "HUB", "0.5"), ("HUB", "LOTUS", "2"),
    ("WASH", "HUB", "1"), ("HUB", "WASH", "1"),
    ("JADE", "CLEAR", "2"), ("JADE", "SKYMILES", "1.25"),
    ("LOTUS", "JADE", "0.5"), ("SKYMILES", "LOTUS", "1.6"),
]  # fmt: skip
PROGRAMS = ["HUB", "JADE", "CLEAR", "SKYMILES", "LOTUS", "WASH"]
ACCRUABLE = ["HUB", "JADE", "CLEAR"]
PARTNER_START = 30_000
MEMBERS = 6
OPERATIONS = {  # weights
    "accrue": 12,
    "convert": 40,
    "redeem": 22,
    "cancel_member": 8,
    "cancel_merchant": 6,
    "time_passes": 6,
    "settle": 1,
    "expire": 1,
}
FAULTS = ["5xx", "timeout_before_apply", "lose_response", "slow", "refused"]
FAULT_OPERATIONS: list[list[str] | None] = [
    None,
    ["debit"],
    ["credit"],
    ["reverse"],
    ["book"],
    ["cancel"],
]
TIMEOUT = 0.15  # the hub's partner timeout here; a hang outlasts it
HANG = 0.25
FAULT_RATE = 0.15  # the share of operations before which a partner turns faulty
FRESH_READS = 10  # reads of a member's balances before a partner's own book is taken
BALANCES = """
query Balances($id: ID!) {
  member(id: $id) { accounts { program { code } externalRef balance balanceAsOf } }
}"""


class SimulationFailure(AssertionError):
    pass


@dataclass
class Pending:
    kind: str  # "convert", "redeem", "cancel"
    id: str
    member: str
    detail: dict[str, Any]


@dataclass
class Summary:
    seed: int
    ops: int
    seconds: float
    operations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    quiesces: int = 0

    def line(self) -> str:
        return (
            f"seed {self.seed}: {self.ops} operations in {self.seconds:.1f} s; "
            f"ops {dict(self.operations)}; outcomes {dict(self.outcomes)}; "
            f"faults {dict(self.faults)}; restarts {self.restarts}; quiesced {self.quiesces}x"
        )


class Simulation:
    def __init__(
        self,
        seed: int,
        ops: int,
        settings: Settings,
        *,
        avoid: frozenset[int] = KNOWN_BUGS,
        echo: Callable[[str], object] = print,
    ) -> None:
        self.seed, self.ops, self.avoid, self.echo = seed, ops, avoid, echo
        self.rng = random.Random(seed)
        self.settings = settings
        self.partners: Partners
        self.api: Api
        self.stack = contextlib.AsyncExitStack()
        self.members: list[str] = []
        self.refs: dict[tuple[str, str], str] = {}
        self.expected: dict[str, dict[str, int]] = {}
        self.pending: list[Pending] = []
        self.confirmed: dict[str, dict[str, Any]] = {}  # redemptions that may be cancelled
        self.rewards: list[dict[str, Any]] = []
        self.keys: dict[str, str] = {}
        self.sessions: dict[str, str] = {}
        self.faulty: dict[str, tuple[str, int]] = {}  # merchant -> (fault, ops left)
        self.stopped: set[str] = set()
        self.last_expiry = -1
        self.trace: list[str] = []
        self.summary = Summary(seed, ops, 0.0)
        self.began = utcnow()

    # ---------------------------------------------------------------- running

    async def run(self) -> Summary:
        started = time.perf_counter()
        async with partners() as found:
            self.partners = found
            try:
                for merchant, (_, kind) in CONNECTED.items():
                    await self.partners.start(merchant, kind)
                await self._start_hub()
                await self._world()
                for n in range(self.ops):
                    await self._faults(n)
                    await self._operation(n)
                await self.quiesce()
                await self.check(final=True)
            except SimulationFailure:
                raise
            except Exception as exc:
                self._fail(f"{type(exc).__name__}: {exc}")
            finally:
                await self.stack.aclose()
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def _fail(self, message: str) -> None:
        ids = {m[-8:] for m in re.findall(r"\b(?:rdm|cnv)_[0-9a-z]+", message)}
        involved = [line for line in self.trace if any(i in line for i in ids)]
        tail = "\n  ".join([*involved, "...", *self.trace[-25:]] if involved else self.trace[-25:])
        avoid = "" if self.avoid else " ALL=1"
        raise SimulationFailure(
            f"{message}\nlast operations:\n  {tail}\n"
            f"replay with make simulate SEED={self.seed} OPS={self.ops}{avoid}"
        )

    async def _start_hub(self) -> None:
        settings = self.settings.model_copy(
            update={"partner_secrets": self.partners.secrets(), "allow_private_partners": True}
        )
        self.api = await self.stack.enter_async_context(running_app(settings))

    async def restart(self) -> None:
        """Stop the hub and start a new one on the same database: nothing in memory
        survives (breakers, caches); the sagas left unfinished are resumed later."""
        await self.stack.aclose()
        self.stack = contextlib.AsyncExitStack()
        await self._start_hub()
        self.summary.restarts += 1
        self.sessions.clear()

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.api.app.state.runtime
        return runtime

    # ---------------------------------------------------------------- the world

    async def _world(self) -> None:
        for merchant, (code, category) in HOSTED.items():
            await register(
                self.api,
                merchant,
                code,
                category=category,
                pointValue=POINT_VALUE[code],
                compensationPercent=COMPENSATION[merchant],
            )
        for merchant, (code, category) in HOSTED_EXPIRING.items():
            await register(
                self.api,
                merchant,
                code,
                category=category,
                pointValue=POINT_VALUE[code],
                compensationPercent=COMPENSATION[merchant],
                expiryMonths=12,
            )
        breaker = 1_000_000 if 1 in self.avoid else 3
        for merchant, (code, kind) in CONNECTED.items():
            await register_connected(
                self.api,
                self.partners,
                merchant,
                code,
                kind,
                pointValue=POINT_VALUE[code],
                compensationPercent=COMPENSATION[merchant],
                timeoutSeconds=TIMEOUT,
                retries=1,
                breakerFailures=breaker,
                breakerCooldownSeconds=0.3,
            )
        for source, target, rate in RATES:
            await set_rate(self.api, source, target, rate)
        for merchant in ("jade", "clearview", "carwash"):
            self.keys[merchant] = await create_key(self.api, "MERCHANT", merchant)
        self.keys["storefront"] = await create_key(self.api, "STOREFRONT")
        self.keys["finance"] = await create_key(self.api, "FINANCE")
        meal = await upsert_reward(
            self.api, self.keys["jade"], ref="SET-MEAL", kind="MEAL", title="Set meal", price=200
        )
        lens = await upsert_reward(
            self.api, self.keys["clearview"], ref="LENS", kind="GOODS", title="Lens", price=500
        )
        await self.api.gql("{ rewards(first: 100) { edges { node { id } } } }")  # partner catalogs
        self.rewards = [
            {"id": meal["id"], "merchant": "jade"},
            {"id": lens["id"], "merchant": "clearview"},
            {"id": "carwash:CAR-WASH", "merchant": "carwash"},
        ]
        for n in range(MEMBERS):
            member = ""
            for code in PROGRAMS:
                ref = f"{code[:2]}-{n}"
                merchant = next((m for m, (c, _) in CONNECTED.items() if c == code), None)
                if merchant is not None:
                    await self.partners.member(merchant, ref, PARTNER_START)
                member = await enroll(self.api, code, ref, f"Member {n}", member_id=member or None)
                self.refs[(member, code)] = ref
            self.members.append(member)
            self.expected[member] = {
                code: PARTNER_START if code in ("SKYMILES", "LOTUS", "WASH") else 0
                for code in PROGRAMS
            }
            for code in ACCRUABLE:
                await self._accrue(member, code, 5000)

    # ---------------------------------------------------------------- faults

    async def _faults(self, n: int) -> None:
        for merchant, (fault, left) in list(self.faulty.items()):
            if left > 1:
                self.faulty[merchant] = (fault, left - 1)
                continue
            del self.faulty[merchant]
            await self._clear_fault(merchant)
        if self.rng.random() < FAULT_RATE:
            merchant = self.rng.choice(sorted(CONNECTED))
            fault = self.rng.choice(FAULTS)
            if merchant in self.faulty or (fault == "refused" and 1 in self.avoid):
                return
            ops = self.rng.randint(1, 6)
            operations = self.rng.choice(FAULT_OPERATIONS)
            self.faulty[merchant] = (fault, ops)
            self.summary.faults[fault] += 1
            scope = "every call" if fault == "refused" or not operations else operations
            self.trace.append(f"#{n} fault {merchant} {fault} on {scope} for {ops} ops")
            if fault == "refused":
                await self.partners.stop(merchant)
                self.stopped.add(merchant)
            elif fault == "5xx":
                await self.partners.faults(merchant, error_rate=1.0, operations=operations)
            elif fault == "slow":
                latency = self.rng.randint(5, 60)
                await self.partners.faults(merchant, latency_ms=latency, operations=operations)
            else:
                await self.partners.faults(
                    merchant, **{fault: True}, hang_seconds=HANG, operations=operations
                )
        if self.rng.random() < 0.01:
            self.trace.append(f"#{n} hub restarts")
            await self.restart()

    async def _clear_fault(self, merchant: str) -> None:
        if merchant in self.stopped:
            self.stopped.discard(merchant)
            await self.partners.restart(merchant)
        else:
            await self.partners.faults(merchant)

    # ---------------------------------------------------------------- operations

    async def _operation(self, n: int) -> None:
        kinds, weights = zip(*OPERATIONS.items(), strict=True)
        kind = self.rng.choices(kinds, weights)[0]
        member = self.rng.choice(self.members)
        self.summary.operations[kind] += 1
        if kind == "accrue":
            code = self.rng.choice(ACCRUABLE)
            await self._accrue(member, code, self.rng.randint(1, 2000), n)
        elif kind == "convert":
            source, target = self.rng.sample(PROGRAMS, 2)
            points = self.rng.randint(1, max(1, min(3000, self.expected[member][source] // 2)))
            await self._convert(n, member, source, target, points)
        elif kind == "redeem":
            reward = self.rng.choice(self.rewards)
            pay = self.rng.choice(PROGRAMS)
            await self._redeem(n, member, reward, pay, self.rng.randint(1, 2))
        elif kind in ("cancel_member", "cancel_merchant"):
            if self.confirmed:
                rid = self.rng.choice(sorted(self.confirmed))
                await self._cancel(n, rid, by_member=kind == "cancel_member")
        elif kind == "time_passes":
            self.trace.append(f"#{n} time passes: the sweepers run")
            await self._sweep()
        elif kind == "settle":
            await self._settle(n)
        elif kind == "expire":
            await self._expire(n)

    def _outcome(self, n: int, text: str, status: str) -> None:
        self.summary.outcomes[status] += 1
        self.trace.append(f"#{n} {text} -> {status}")

    async def _accrue(self, member: str, code: str, amount: int, n: int = -1) -> None:
        payload = await accrue(self.api, member, code, str(amount))
        if payload["userErrors"]:
            self._outcome(n, f"accrue {code} {amount}", payload["userErrors"][0]["code"])
            return
        self.expected[member][code] += int(payload["points"])
        self._outcome(n, f"accrue {code} {amount} ({payload['points']} points)", "APPLIED")

    async def _convert(self, n: int, member: str, source: str, target: str, points: int) -> None:
        payload = await convert(self.api, member, source, target, points)
        text = f"convert {member[-6:]} {points} {source}->{target}"
        conversion = payload["conversion"]
        if conversion is None:  # refused: nothing moved
            self._outcome(n, text, payload["userErrors"][0]["code"])
            return
        route = "->".join(p["code"] for p in conversion["route"])
        self._convert_done(member, conversion)
        self._outcome(n, f"{text} via {route}", conversion["status"])

    def _convert_done(self, member: str, conversion: dict[str, Any]) -> None:
        status = conversion["status"]
        if status == "COMPLETED":
            self.expected[member][conversion["from"]["code"]] -= conversion["pointsDebited"]
            self.expected[member][conversion["to"]["code"]] += conversion["pointsCredited"]
        elif status == "PENDING":
            self.pending.append(Pending("convert", conversion["id"], member, {}))

    async def _redeem(
        self, n: int, member: str, reward: dict[str, Any], pay: str, quantity: int
    ) -> None:
        payload = await redeem(self.api, member, reward["id"], pay, quantity=quantity)
        text = f"redeem {member[-6:]} {quantity} x {reward['id']} with {pay}"
        r = payload["redemption"]
        if r is None:
            self._outcome(n, text, payload["userErrors"][0]["code"])
            return
        detail = {"member": member, "merchant": reward["merchant"], "pay": pay, "at": n}
        self._redeem_done(r, detail)
        self._outcome(n, f"{text} ({r['points']} points)", r["status"])

    def _redeem_done(self, r: dict[str, Any], detail: dict[str, Any]) -> None:
        if r["status"] == "CONFIRMED":
            self.expected[detail["member"]][detail["pay"]] -= r["points"]
            self.confirmed[r["id"]] = {**detail, "points": r["points"]}
        elif r["status"] == "PENDING":
            self.pending.append(Pending("redeem", r["id"], detail["member"], detail))

    async def _cancel(self, n: int, rid: str, *, by_member: bool) -> None:
        detail = self.confirmed[rid]
        member = detail["member"]
        if 9 in self.avoid and detail["pay"] == "CLEAR" and detail["at"] < self.last_expiry:
            return  # known bug 9: the refund would bring expired points back
        if by_member:
            token = self.sessions.get(member)
            if token is None:
                token = self.sessions[member] = await member_session(self.api, member)
            payload = await cancel_redemption(
                self.api, rid, key=self.keys["storefront"], member_token=token
            )
        else:
            payload = await cancel_redemption(
                self.api, rid, "MERCHANT_CANCELLED", key=self.keys[detail["merchant"]]
            )
        reason = "member" if by_member else "merchant"
        text = f"cancel by {reason} {rid[-8:]} ({detail['points']} {detail['pay']})"
        r = payload["redemption"]
        if r is None:
            self._outcome(n, text, payload["userErrors"][0]["code"])
            return
        cancel = {**detail, "by_member": by_member}
        self._cancel_done(rid, r, cancel)
        self._outcome(n, text, r["status"] + ("" if r["status"] != "CONFIRMED" else " (pending)"))

    def _cancel_done(self, rid: str, r: dict[str, Any], cancel: dict[str, Any]) -> None:
        if r["status"] == "CANCELLED":
            self.confirmed.pop(rid, None)
            self.expected[cancel["member"]][cancel["pay"]] += cancel["points"] + self._comp(cancel)
        else:  # still confirmed: the cancellation goes on (or was refused); read it later
            self.confirmed.pop(rid, None)
            self.pending.append(Pending("cancel", rid, cancel["member"], cancel))

    def _comp(self, cancel: dict[str, Any]) -> int:
        """The compensation the rules give: none to a member's own cancellation."""
        if cancel["by_member"]:
            return 0
        percent = Decimal(COMPENSATION[cancel["merchant"]])
        return int((Decimal(cancel["points"]) * percent / 100).to_integral_value(ROUND_FLOOR))

    async def _settle(self, n: int) -> None:
        day = self.settings.business_date(utcnow()).isoformat()
        data = await self.api.gql(
            "mutation($d: Date!) { runSettlement(businessDate: $d) "
            "{ batch { id obligationCount } userErrors { code } } }",
            {"d": day},
            key=self.keys["finance"],
        )
        errors = data["runSettlement"]["userErrors"]
        self._outcome(n, f"settle {day}", errors[0]["code"] if errors else "SETTLED")

    async def _expire(self, n: int) -> None:
        """A year passes for the expiring program: what is left of its lots expires. The
        world is quiesced first so that no step of a saga straddles the expiry."""
        await self.quiesce()
        await self.check(final=False)
        result = await run_expiry(
            self.runtime.db, self.runtime.settings, now=utcnow() + dt.timedelta(days=400)
        )
        for member in self.members:
            self.expected[member]["CLEAR"] = 0
        self.last_expiry = n
        self._outcome(n, f"expire CLEAR ({result.points} points)", "EXPIRED")

    # ---------------------------------------------------------------- quiescing

    async def _sweep(self) -> None:
        """Time passes: every saga step waiting for its backoff is due, the sweepers run."""
        runtime = self.runtime
        long_ago = utcnow() - dt.timedelta(seconds=5)
        async with runtime.db.write() as session:
            await session.execute(
                update(Conversion)
                .where(Conversion.status == "PENDING")
                .values(next_attempt_at=None, updated_at=long_ago)
            )
            await session.execute(
                update(Redemption)
                .where(or_(Redemption.status == "PENDING", Redemption.cancel_step.is_not(None)))
                .values(next_attempt_at=None, updated_at=long_ago)
            )
        await conversion_saga.resume_due(runtime.db, runtime.settings, runtime.connectors)
        await redemption_saga.resume_due(runtime.db, runtime.settings, runtime.connectors)

    async def _unfinished(self) -> int:
        async with self.runtime.db.read() as session:
            conversions = await session.scalar(
                select(func.count()).where(Conversion.status == "PENDING")
            )
            redemptions = await session.scalar(
                select(func.count()).where(
                    or_(
                        Redemption.status == "PENDING",
                        Redemption.cancel_step.in_(["CANCEL_BOOKING", "REFUND", "COMPENSATE"]),
                    )
                )
            )
        return int(conversions or 0) + int(redemptions or 0)

    async def quiesce(self) -> None:
        """Faults off, partners back, breakers closed; drive the sagas until none is left,
        then read the final state of every operation answered as pending."""
        self.summary.quiesces += 1
        for merchant in list(self.faulty):
            await self._clear_fault(merchant)
        self.faulty.clear()
        breakers = getattr(self.runtime.connectors, "breakers", {})
        breakers.clear()
        for _ in range(30):
            if await self._unfinished() == 0:
                break
            await self._sweep()
        else:
            self._fail(f"{await self._unfinished()} sagas still unfinished after quiescing")
        pending, self.pending = self.pending, []
        for p in pending:
            await self._resolve(p)

    async def _resolve(self, p: Pending) -> None:
        if p.kind == "convert":
            data = await self.api.gql(
                "query($id: ID!) { conversion(id: $id) { id status pointsDebited "
                "pointsCredited from { code } to { code } } }",
                {"id": p.id},
            )
            conversion = data["conversion"]
            self.trace.append(f"resolved conversion {p.id[-8:]} -> {conversion['status']}")
            self._convert_done(p.member, conversion)
            return
        data = await self.api.gql(
            "query($id: ID!) { redemption(id: $id) { id status points refundedPoints "
            "compensationPoints } }",
            {"id": p.id},
        )
        r = data["redemption"]
        self.trace.append(f"resolved {p.kind} {p.id[-8:]} -> {r['status']}")
        if p.kind == "redeem":
            self._redeem_done(r, p.detail)
        elif r["status"] == "CANCELLED":
            self._cancel_done(p.id, r, p.detail)
        else:  # the cancellation was refused: it may be cancelled again
            self.confirmed[p.id] = {k: v for k, v in p.detail.items() if k != "by_member"}

    # ---------------------------------------------------------------- the checks

    async def _balances(self, member: str, since: dt.datetime) -> dict[str, int]:
        """The member's balances as the hub shows them. A connected program's is asked of
        its partner within the hub's timeout (0.15 s here); on a loaded machine the
        partner may miss it, and the hub then shows the last balance it was given, with a
        `balanceAsOf` from before this check. Such a read is repeated; when the partner
        keeps missing it, its own book (the sandbox's ledger, a connected program's book of
        record) is what the model is held to, and the trace says so."""
        for attempt in range(FRESH_READS):
            data = await self.api.gql(BALANCES, {"id": member})
            accounts = data["member"]["accounts"]
            stale = [
                a
                for a in accounts
                if a["balanceAsOf"] is not None
                and dt.datetime.fromisoformat(a["balanceAsOf"]) < since
            ]
            if not stale:
                break
            await asyncio.sleep(0.05 * (attempt + 1))
        actual = {a["program"]["code"]: int(a["balance"]) for a in accounts}
        for account in stale:
            code = account["program"]["code"]
            merchant = next(m for m, (c, _) in CONNECTED.items() if c == code)
            actual[code] = self.partners.balance(merchant, account["externalRef"])
            self.trace.append(
                f"check: {member[-6:]} {code} shown as of {account['balanceAsOf']} "
                f"({account['balance']}): the partner's own book says {actual[code]}"
            )
        return actual

    async def check(self, *, final: bool) -> None:
        """Balances equal the model, `hub verify` is clean, every partner reconciles."""
        problems = []
        since = utcnow()
        for member in self.members:
            actual = await self._balances(member, since)
            for code in PROGRAMS:
                if actual.get(code) != self.expected[member][code]:
                    problems.append(
                        f"member {member} {code}: hub says {actual.get(code)}, "
                        f"the operations say {self.expected[member][code]}"
                    )
            total_actual = sum(actual.get(c, 0) for c in PROGRAMS)
            total_expected = sum(self.expected[member].values())
            if total_actual != total_expected:
                problems.append(
                    f"member {member} total {total_actual} != expected {total_expected}"
                )
        problems += [f"hub verify: {v}" for v in await verify_ledger(self.settings.database_url)]
        today = self.settings.business_date(utcnow())
        for day in sorted({today, self.settings.business_date(self.began)}):
            for merchant in CONNECTED:
                data = await self.api.gql(
                    "query($m: ID!, $d: Date!) { reconciliation(merchant: $m, businessDate: $d) "
                    "{ status matched breaks { reference externalRef hubPoints partnerPoints } } }",
                    {"m": merchant, "d": day.isoformat()},
                )
                report = data["reconciliation"]
                if report["status"] != "MATCHED":
                    problems.append(
                        f"reconciliation {merchant} {day}: {report['status']} "
                        f"{json.dumps(report['breaks'])}"
                    )
        if problems:
            where = "at the end" if final else "before an expiry"
            self._fail(f"{len(problems)} problem(s) {where}:\n  " + "\n  ".join(problems[:40]))


async def simulate(
    seed: int,
    ops: int,
    database_url: str,
    *,
    avoid: frozenset[int] = KNOWN_BUGS,
    echo: Callable[[str], object] = print,
) -> Summary:
    """One seeded run against an empty, migrated database; raises SimulationFailure."""
    settings = Settings(
        database_url=database_url,
        bootstrap_admin_key=ADMIN_KEY,
        log_level="ERROR",
        background_jobs=False,
    )
    return await Simulation(seed, ops, settings, avoid=avoid, echo=echo).run()
