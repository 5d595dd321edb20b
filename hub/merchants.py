"""Merchants and their programs: registration and lookups."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import partner_urls, validate
from hub.db import KEPT, row_by
from hub.enums import AccountKind, ConnectorKind, MerchantCategory, MerchantStatus, ProgramKind
from hub.errors import AlreadyExists, FieldPath, InvalidInput, NotFound
from hub.models import Account, Merchant, Program

if TYPE_CHECKING:
    from hub.caches import Caches

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
PROGRAM_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,19}$")
SYSTEM_ACCOUNTS = [k for k in AccountKind if k != AccountKind.MEMBER]


@dataclass(frozen=True)
class NewMerchant:
    id: str
    name: str
    category: MerchantCategory
    program_code: str
    program_name: str
    unit_name: str
    connector: ConnectorKind
    connector_config: str | None
    point_value: Decimal
    accrual_rate: Decimal
    expiry_months: int | None
    compensation_percent: Decimal


def _check_code(code: str, field: FieldPath, *, example: str) -> None:
    if not PROGRAM_CODE.fullmatch(code):
        raise InvalidInput(
            f"{validate.name_of(field)} must be 2-20 characters, upper-case letters, digits "
            f"and '_', starting with a letter (e.g. {example!r}).",
            field=field,
        )


def _checked(data: NewMerchant, allow_private_partners: bool) -> NewMerchant:
    if not SLUG.fullmatch(data.id):
        raise InvalidInput(
            "id must be a slug: 2-40 characters, lower-case letters, digits and '-', "
            "starting with a letter (e.g. 'skyair').",
            field=("id",),
        )
    _check_code(data.program_code, ("program_code",), example="SKYMILES")
    _check_terms(data.point_value, data.accrual_rate, data.expiry_months)
    validate.percent(data.compensation_percent, ("compensation_percent",), high=Decimal(100))
    return NewMerchant(
        id=data.id,
        name=validate.text(data.name, ("name",), max_length=200),
        category=data.category,
        program_code=data.program_code,
        program_name=validate.text(data.program_name, ("program_name",), max_length=200),
        unit_name=validate.text(data.unit_name, ("unit_name",), max_length=40),
        connector=data.connector,
        connector_config=_checked_config(
            data.connector, data.connector_config, allow_private_partners
        ),
        point_value=data.point_value,
        accrual_rate=data.accrual_rate,
        expiry_months=data.expiry_months,
        compensation_percent=data.compensation_percent,
    )


def _check_terms(point_value: Decimal, accrual_rate: Decimal, expiry_months: int | None) -> None:
    """A program's money and time terms: what a point is worth, earns, and how long it lasts."""
    validate.decimal_in_range(
        point_value,
        ("point_value",),
        low=Decimal(0),
        high=Decimal(1_000_000),
        places=6,
        low_inclusive=False,
    )
    validate.decimal_in_range(
        accrual_rate, ("accrual_rate",), low=Decimal(0), high=Decimal(100_000), places=6
    )
    if expiry_months is not None and not 1 <= expiry_months <= 240:
        raise InvalidInput(
            "expiryMonths must be between 1 and 240, or null for points that never expire.",
            field=("expiry_months",),
        )


def _checked_config(kind: ConnectorKind, raw: str | None, allow_private: bool) -> str | None:
    field = ("connector_config",)
    if raw is None or not raw.strip():
        if kind != ConnectorKind.HOSTED:
            raise InvalidInput(
                f"A {kind} connector needs connectorConfig, e.g. "
                '{"baseUrl": "https://partner.example/hub", "secretRef": "SKYAIR"}.',
                field=field,
            )
        return None
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"connectorConfig is not valid JSON: {exc}.", field=field) from exc
    if not isinstance(config, dict):
        raise InvalidInput("connectorConfig must be a JSON object.", field=field)
    if any("secret" in k.lower() and k != "secretRef" for k in config):
        raise InvalidInput(
            "Secrets never go into the database: put the shared secret in the environment "
            "variable HUB_PARTNER_SECRET_<REF> and give <REF> as secretRef.",
            field=field,
        )
    if kind != ConnectorKind.HOSTED and not isinstance(config.get("baseUrl"), str):
        raise InvalidInput("connectorConfig needs baseUrl, the partner's API root.", field=field)
    if "baseUrl" in config:
        why = partner_urls.problem(str(config["baseUrl"]), allow_private=allow_private)
        if why:
            raise InvalidInput(f"connectorConfig: {why}", field=field)
    for name, (low, high, whole) in TUNING.items():
        value = config.get(name)
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (whole and not isinstance(value, int)) or not low <= value <= high:
            wanted = "a whole number" if whole else "a number of seconds"
            raise InvalidInput(
                f"connectorConfig: {name} must be {wanted} from {low} to {high}, not {value!r}.",
                field=field,
            )
    return json.dumps(config, sort_keys=True)


# What connectorConfig may tune about calling a partner: (lowest, highest, whole number).
TUNING: dict[str, tuple[float, float, bool]] = {
    "timeoutSeconds": (0.1, 120, False),
    "retries": (0, 10, True),
    "breakerFailures": (1, 1000, True),
    "breakerCooldownSeconds": (0.1, 3600, False),
}


async def register_merchant(
    session: AsyncSession, data: NewMerchant, *, allow_private_partners: bool = False
) -> Merchant:
    """Create a merchant, its program and the program's system accounts."""
    data = _checked(data, allow_private_partners)
    if await session.get(Merchant, data.id) is not None:
        raise AlreadyExists(f"A merchant with id {data.id!r} exists.", field=("id",))
    if await session.get(Program, data.program_code) is not None:
        raise AlreadyExists(
            f"A program with code {data.program_code!r} exists.", field=("program_code",)
        )
    if data.category == MerchantCategory.PLATFORM and await platform_program(session) is not None:
        raise AlreadyExists(
            "The platform merchant is already registered; there is one platform program.",
            field=("category",),
        )
    merchant = Merchant(
        id=data.id,
        name=data.name,
        category=data.category,
        status=MerchantStatus.ACTIVE,
        compensation_percent=data.compensation_percent,
    )
    program = Program(
        code=data.program_code,
        merchant_id=data.id,
        kind=ProgramKind.STANDARD,
        name=data.program_name,
        unit_name=data.unit_name,
        connector=data.connector,
        connector_config=data.connector_config,
        point_value=data.point_value,
        accrual_rate=data.accrual_rate,
        expiry_months=data.expiry_months,
    )
    session.add(merchant)
    await session.flush()
    await _open(session, program)
    return merchant


@dataclass(frozen=True)
class NewProgram:
    merchant_id: str
    code: str
    name: str
    unit_name: str
    kind: ProgramKind
    point_value: Decimal
    accrual_rate: Decimal
    expiry_months: int | None


async def register_program(session: AsyncSession, data: NewProgram) -> Program:
    """A merchant's second program (a GREEN one), hosted in the hub's ledger, with its
    system accounts. A merchant runs one program of each kind."""
    merchant = await session.get(Merchant, data.merchant_id)
    if merchant is None:
        raise NotFound(f"No merchant has id {data.merchant_id!r}.", field=("merchant_id",))
    _check_code(data.code, ("code",), example="HUB_GREEN")
    _check_terms(data.point_value, data.accrual_rate, data.expiry_months)
    name = validate.text(data.name, ("name",), max_length=200)
    unit = validate.text(data.unit_name, ("unit_name",), max_length=40)
    if await session.get(Program, data.code) is not None:
        raise AlreadyExists(f"A program with code {data.code!r} exists.", field=("code",))
    same_kind = await session.scalar(
        select(Program.code).where(Program.merchant_id == merchant.id, Program.kind == data.kind)
    )
    if same_kind is not None:
        raise AlreadyExists(
            f"{merchant.id} already runs the {data.kind} program {same_kind}; a merchant runs "
            "one program of each kind.",
            field=("kind",),
        )
    program = Program(
        code=data.code,
        merchant_id=merchant.id,
        kind=data.kind,
        name=name,
        unit_name=unit,
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=data.point_value,
        accrual_rate=data.accrual_rate,
        expiry_months=data.expiry_months,
    )
    await _open(session, program)
    return program


async def _open(session: AsyncSession, program: Program) -> None:
    """Store a new program with its system accounts (ISSUED, REDEEMED, ...); every process
    reads the programs again."""
    session.add(program)
    await session.flush()
    session.add_all(Account(program_code=program.code, kind=kind) for kind in SYSTEM_ACCOUNTS)
    await session.flush()
    from hub.caches import PROGRAMS, bump

    await bump(session, PROGRAMS)


async def list_merchants(session: AsyncSession) -> Sequence[Merchant]:
    return (await session.scalars(select(Merchant).order_by(Merchant.id))).all()


async def list_programs(session: AsyncSession) -> Sequence[Program]:
    return (await session.scalars(select(Program).order_by(Program.code))).all()


async def merchants_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, Merchant]:
    return await row_by(session, Merchant, Merchant.id, ids)


async def programs_by_code(session: AsyncSession, codes: Sequence[str]) -> dict[str, Program]:
    return await row_by(session, Program, Program.code, codes)


async def primary_program(session: AsyncSession, merchant_id: str) -> Program | None:
    """The merchant's STANDARD program: the one its rewards are priced in (from the process's
    memory when it keeps the programs, else read)."""
    kept = session.info.get(KEPT)
    found: Program | None = kept.primary_now(merchant_id) if kept is not None else None
    if found is not None:
        return found
    return await program_of_kind(session, merchant_id, ProgramKind.STANDARD)


async def program_of_kind(
    session: AsyncSession, merchant_id: str, kind: ProgramKind
) -> Program | None:
    return await session.scalar(
        select(Program).where(Program.merchant_id == merchant_id, Program.kind == kind)
    )


def is_connected(program: Program) -> bool:
    """Whether the program's balances live in a partner's system (not the hub's ledger)."""
    return program.connector != ConnectorKind.HOSTED


async def program_of(session: AsyncSession, code: str) -> Program | None:
    """A program by code: from the process's memory when it keeps the programs (they never
    change once registered; hub.caches), else read."""
    kept = session.info.get(KEPT)
    found = kept.program_now(code) if kept is not None else None
    return found if found is not None else await session.get(Program, code)


async def get_program(session: AsyncSession, code: str, field: FieldPath) -> Program:
    program = await program_of(session, code)
    if program is None:
        raise NotFound(f"No program has code {code!r}.", field=field)
    return program


async def platform_code(session: AsyncSession) -> str | None:
    """The code of the platform's own program: from the process's memory when it keeps the
    programs (a program never changes once registered), else read."""
    kept: Caches | None = session.info.get(KEPT)
    if kept is not None:
        return (await kept.programs()).platform
    platform = await platform_program(session)
    return platform.code if platform is not None else None


async def platform_program(session: AsyncSession) -> Program | None:
    """The platform's own program (HUB in the demo), accepted by every merchant."""
    return await session.scalar(
        select(Program)
        .join(Merchant, Merchant.id == Program.merchant_id)
        .where(
            Merchant.category == MerchantCategory.PLATFORM,
            Program.kind == ProgramKind.STANDARD,
        )
    )


async def partner_secret_ref(session: AsyncSession, merchant_id: str) -> str | None:
    """The name under which a connected merchant's shared secret is configured."""
    program = await primary_program(session, merchant_id)
    if program is None or not is_connected(program):
        return None
    config = json.loads(program.connector_config or "{}")
    return str(config.get("secretRef") or merchant_id).upper()
