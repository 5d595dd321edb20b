"""registerMerchant, createApiKey, revokeApiKey, createMemberSession."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from hub import auth, consent, merchants
from hub.caches import PROGRAMS
from hub.enums import ConnectorKind as DomainConnectorKind
from hub.enums import MerchantCategory as DomainCategory
from hub.enums import ProgramKind as DomainProgramKind
from hub.enums import Role as DomainRole
from hub.permissions import Action
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import ConnectorKind, MerchantCategory, ProgramKind, Role
from schema.errors import ARGUMENTS, UserError, attempt
from schema.types.merchants import ApiKey, Merchant, Program


@strawberry.input
class RegisterMerchantInput:
    id: strawberry.ID
    name: str
    category: MerchantCategory  # type: ignore[valid-type]
    program_code: strawberry.ID
    program_name: str
    unit_name: str = "point"
    connector: ConnectorKind = DomainConnectorKind.HOSTED  # type: ignore[valid-type]
    connector_config: str | None = strawberry.field(
        default=None, description="JSON: base URL, secret reference, timeouts."
    )
    point_value: Decimal
    accrual_rate: Decimal = Decimal("1")
    expiry_months: int | None = None
    compensation_percent: Decimal = Decimal("10")

    def to_domain(self) -> merchants.NewMerchant:
        return from_attributes(
            merchants.NewMerchant,
            self,
            id=str(self.id),
            category=DomainCategory(self.category),
            program_code=str(self.program_code),
            connector=DomainConnectorKind(self.connector),
        )


@strawberry.type
class RegisterMerchantPayload:
    merchant: Merchant | None
    user_errors: list[UserError]


@strawberry.input
class RegisterProgramInput:
    merchant_id: strawberry.ID
    code: strawberry.ID
    name: str
    unit_name: str = "point"
    kind: ProgramKind = DomainProgramKind.STANDARD  # type: ignore[valid-type]
    point_value: Decimal
    accrual_rate: Decimal = Decimal("1")
    expiry_months: int | None = None

    def to_domain(self) -> merchants.NewProgram:
        return from_attributes(
            merchants.NewProgram,
            self,
            merchant_id=str(self.merchant_id),
            code=str(self.code),
            kind=DomainProgramKind(self.kind),
        )


@strawberry.type
class RegisterProgramPayload:
    program: Program | None
    user_errors: list[UserError]


@strawberry.input
class CreateApiKeyInput:
    role: Role  # type: ignore[valid-type]
    merchant_id: strawberry.ID | None = strawberry.UNSET
    label: str


@strawberry.type
class CreateApiKeyPayload:
    secret: str | None = strawberry.field(description="Shown once.")
    key_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None
    user_errors: list[UserError]


@strawberry.type
class MemberSessionPayload:
    token: str | None = strawberry.field(
        description="Send as header X-Member-Token with a STOREFRONT key."
    )
    expires_at: dt.datetime | None
    user_errors: list[UserError]


def _registered(info: Info, row: object | None) -> None:
    """After a merchant or program is registered: this process reads the programs again
    before it answers (the answer's merchant lists the new one), and the other kept kinds'
    counters on the next request."""
    caches = info.context.runtime.caches
    if row is not None:
        caches.drop(PROGRAMS)
    caches.recheck()


@strawberry.type
class AdminMutations:
    @strawberry.mutation(description="ADMIN: a merchant with its program.")
    async def register_merchant(
        self, info: Info, input: RegisterMerchantInput
    ) -> RegisterMerchantPayload:
        info.context.require(Action.REGISTER_MERCHANT)
        data = input.to_domain()
        private = info.context.settings.allow_private_partners
        row, errors = await info.context.write(
            lambda s: merchants.register_merchant(s, data, allow_private_partners=private)
        )
        _registered(info, row)
        return RegisterMerchantPayload(
            merchant=Merchant.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(
        description="ADMIN: a merchant's second program, hosted in the hub's ledger (a GREEN "
        "one, earned on green-tagged purchase lines); one program of each kind per merchant."
    )
    async def register_program(
        self, info: Info, input: RegisterProgramInput
    ) -> RegisterProgramPayload:
        info.context.require(Action.REGISTER_PROGRAM)
        data = input.to_domain()
        row, errors = await info.context.write(lambda s: merchants.register_program(s, data))
        _registered(info, row)
        return RegisterProgramPayload(
            program=Program.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(description="ADMIN: a new API key; its secret is shown once.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        principal = info.context.require(Action.CREATE_API_KEY)
        created, errors = await info.context.write(
            lambda s: auth.create_api_key(
                s,
                role=DomainRole(input.role),
                label=input.label,
                merchant_id=str(input.merchant_id) if input.merchant_id else None,
                created_by=principal.key_id,
            )
        )
        if created is None:
            return CreateApiKeyPayload(secret=None, key_id=None, user_errors=errors)
        key, secret = created
        return CreateApiKeyPayload(secret=secret, key_id=strawberry.ID(key.id), user_errors=[])

    @strawberry.mutation(
        description="ADMIN: revoke a key: refused from the next request on by this process, "
        "by every other worker and replica within HUB_CACHE_CHECK_SECONDS (2 s)."
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyPayload:
        info.context.require(Action.REVOKE_API_KEY)
        row, errors = await info.context.write(
            lambda s: auth.revoke_api_key(s, str(id)), under=ARGUMENTS
        )
        info.context.runtime.caches.recheck()  # refused here from the next request on
        return RevokeApiKeyPayload(
            api_key=ApiKey.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(
        description="MERCHANT (a member of its program) or ADMIN: a session token for one "
        "member. A merchant's session spends only that merchant's points; the platform's and "
        "ADMIN's spend any."
    )
    async def create_member_session(
        self, info: Info, member_id: strawberry.ID
    ) -> MemberSessionPayload:
        principal = info.context.require(Action.CREATE_MEMBER_SESSION)
        runtime = info.context.runtime

        minted, errors = await attempt(
            runtime.db.transaction(
                lambda s: consent.open_session(s, runtime.tokens, principal, str(member_id))
            ),
            under=ARGUMENTS,
        )
        if minted is None:
            return MemberSessionPayload(token=None, expires_at=None, user_errors=errors)
        return MemberSessionPayload(
            token=minted.token, expires_at=minted.expires_at, user_errors=[]
        )
