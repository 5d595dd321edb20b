"""Member, its program accounts and its history."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

from hub import members as member_service
from hub import merchants, models
from hub.db import utcnow
from hub.enums import CreditLevel as DomainCreditLevel
from hub.enums import EntryKind as DomainEntryKind
from hub.errors import DomainError
from hub.ledger import queries
from hub.member_view import AccountView, MemberView
from hub.partner_balances import PartnerBalance
from hub.permissions import reading_merchant, sees_as_the_member
from hub.privacy import shown_name
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import CreditLevel, EntryKind
from schema.errors import forbidden, partner_error
from schema.pagination import Connection, decode_cursor, decode_int_cursor, page_size
from schema.types.merchants import Program, answered_later, program_field, program_now
from schema.types.tiers import TierStatus

if TYPE_CHECKING:
    from schema.types.mall import Redemption


@strawberry.type
class ExpiringLot:
    points: int
    expires_at: dt.datetime


@strawberry.type(description="A member's account in one program.")
class ProgramAccount:
    external_ref: str = strawberry.field(description="The membership number at the merchant.")
    account: strawberry.Private[AccountView]
    # One of a member's accounts (Member.accounts), not the one asked for (Member.account):
    # a partner's refusal of a balance it gave before shows that balance, not the error.
    listed: strawberry.Private[bool] = False

    @classmethod
    def of(cls, account: AccountView, *, listed: bool = False) -> ProgramAccount:
        return cls(external_ref=account.external_ref or "", account=account, listed=listed)

    # Not coroutines: a hosted program's account answers at once (program_now).

    @strawberry.field
    def program(self, info: Info) -> Program:
        return program_now(info, self.account.program_code)

    def _hosted(self, info: Info) -> bool:
        """Whether the account's program is kept and hosted (its balance is the ledger's);
        False for a connected one and for one this process does not keep yet."""
        program = info.context.runtime.caches.program_now(self.account.program_code)
        return program is not None and not merchants.is_connected(program)

    async def _partner_balance(self, info: Info) -> PartnerBalance | None:
        """The partner's balance for a connected program's account; None when hosted."""
        program = await info.context.loaders.program.load(self.account.program_code)
        if program is None or not merchants.is_connected(program):
            return None
        words = sees_as_the_member(info.context.principal, self.account.member_id or "")
        try:
            found = await info.context.loaders.partner_balance.load(self.account)
        except DomainError as failed:
            raise partner_error(failed, words=words) from None
        if found.refusal is not None and not self.listed:
            raise partner_error(found.refusal, words=words)
        return found

    async def _balance_later(self, info: Info) -> int:
        found = await self._partner_balance(info)
        return found.points if found is not None else self.account.spendable(utcnow())

    async def _balance_as_of_later(self, info: Info) -> dt.datetime | None:
        found = await self._partner_balance(info)
        return found.as_of if found is not None else None

    @strawberry.field(description="Spendable points now (from the partner for connected programs).")
    def balance(self, info: Info) -> int:
        if self._hosted(info):
            return self.account.spendable(utcnow())
        return answered_later(self._balance_later(info))

    @strawberry.field(
        description="When a connected program's balance was read from the partner (it is "
        "the last known one while the partner does not answer); null for hosted programs."
    )
    def balance_as_of(self, info: Info) -> dt.datetime | None:
        if self._hosted(info):
            return None
        return answered_later(self._balance_as_of_later(info))

    @strawberry.field(description="Points on hold for pending redemptions.")
    def held(self) -> int:
        return self.account.held

    @strawberry.field(
        description="The member's tier, what qualifies and what the next tier needs; null "
        "when the program has no tiers."
    )
    async def tier(self, info: Info) -> TierStatus | None:
        assert self.account.member_id is not None
        key = (self.account.program_code, self.account.member_id)
        found = await info.context.loaders.standing.load(key)
        return TierStatus.of(found) if found is not None else None

    @strawberry.field(description="Open lots that expire, soonest first.")
    def expiring(self, info: Info) -> list[ExpiringLot]:
        if self.account.lots is None:  # read without them (never when this field is asked)
            return answered_later(self._expiring_later(info))
        return _expiring(self.account)

    async def _expiring_later(self, info: Info) -> list[ExpiringLot]:
        view = await info.context.loaders.member_view.load(self.account.member_id or "")
        found = [a for a in (view.accounts if view else ()) if a.id == self.account.id]
        return _expiring(found[0]) if found else []


@strawberry.type(description="One movement of a member's points.")
class LedgerEntry:
    id: strawberry.ID
    kind: EntryKind  # type: ignore[valid-type]
    points: int = strawberry.field(description="Signed, from the member account's side.")
    balance_after: int
    occurred_at: dt.datetime
    business_date: dt.date
    reference: str | None
    memo: str | None
    program_code: strawberry.Private[str]
    program: Program = strawberry.field(resolver=program_field)

    @classmethod
    def of(cls, entry: models.Entry, points: int, balance_after: int) -> LedgerEntry:
        """An entry as the member's side of it shows: its points and the balance after."""
        return from_attributes(
            cls,
            entry,
            id=strawberry.ID(str(entry.id)),
            kind=DomainEntryKind(entry.kind),
            points=points,
            balance_after=balance_after,
        )


@strawberry.federation.type(keys=["id"], description="A person enrolled in one or more programs.")
class Member:
    id: strawberry.ID
    row: strawberry.Private[models.Member | MemberView]  # both have id and display_name

    @classmethod
    def from_row(cls, row: models.Member | MemberView) -> Member:
        return cls(id=strawberry.ID(row.id), row=row)

    @classmethod
    async def load(cls, info: Info, member_id: str) -> Member | None:
        row = await info.context.loaders.member.load(member_id)
        return cls.from_row(row) if row else None

    @classmethod
    async def of(cls, info: Info, member_id: str) -> Member:
        """The member a conversion or redemption names, under the rule of member(id:): a
        caller that may not see the member gets a FORBIDDEN error on the field instead."""
        from schema.visibility import loaded_visible_member

        member = await loaded_visible_member(info, member_id)
        if member is None:
            raise forbidden(
                "This key may not see the member: ask for the member only where it is one of "
                "your program's members (member(id:) follows the same rule)."
            )
        return member

    @strawberry.field(
        description="From the external credit system; the member (a session minted by the "
        "platform or ADMIN) and ADMIN only: null for everyone else, a merchant's own session "
        "included, and null when none was given."
    )
    def credit_level(self, info: Info) -> CreditLevel | None:  # type: ignore[valid-type]
        if not sees_as_the_member(info.context.principal, self.row.id):
            return None
        return DomainCreditLevel(self.row.credit_level) if self.row.credit_level else None

    @strawberry.field(description="Masked unless the viewer is the member or ADMIN.")
    def display_name(self, info: Info) -> str:
        return shown_name(info.context.principal, self.row.id, self.row.display_name)

    async def _visible_accounts(self, info: Info) -> list[AccountView]:
        principal = info.context.principal
        own: list[str] = []
        merchant = reading_merchant(principal)
        if merchant is not None:
            programs = await info.context.loaders.programs_of_merchant.load(merchant)
            own = [p.code for p in programs or []]
        if isinstance(self.row, MemberView):
            view: MemberView | None = self.row
        else:
            view = await info.context.loaders.member_view.load(self.row.id)
        accounts = view.accounts if view is not None else ()
        return [a for a in accounts if member_service.account_visible(principal, a, own)]

    @strawberry.field(description="The accounts the viewer may see.")
    async def accounts(self, info: Info) -> list[ProgramAccount]:
        return [ProgramAccount.of(a, listed=True) for a in await self._visible_accounts(info)]

    @strawberry.field
    async def account(self, info: Info, program: strawberry.ID) -> ProgramAccount | None:
        for a in await self._visible_accounts(info):
            if a.program_code == str(program):
                return ProgramAccount.of(a)
        return None

    @strawberry.field(description="The member's ledger entries, newest first.")
    async def history(
        self,
        info: Info,
        program: strawberry.ID | None = strawberry.UNSET,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Connection[LedgerEntry]:
        size = page_size(first)
        before = decode_int_cursor("posting", after or None)
        visible = [a.program_code for a in await self._visible_accounts(info)]
        programs = [p for p in visible if not program or p == str(program)]
        lines, more = await info.context.read(
            lambda s: queries.history(s, self.row.id, programs, size, before)
        )
        return Connection.of(
            "posting",
            [
                (LedgerEntry.of(line.entry, line.points, line.balance_after), line.posting_id)
                for line in lines
            ],
            more,
        )

    @strawberry.field(
        description="The member's redemptions, newest first: ADMIN and the member see all; "
        "a merchant acting for its member sees those of its rewards or paid with its programs."
    )
    async def redemptions(
        self, info: Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[Annotated[Redemption, strawberry.lazy("schema.types.mall")]]:
        from hub.mall.redemption import of_member
        from schema.types.mall import Redemption

        size = page_size(first)
        before = decode_cursor("redemption", after or None)
        principal = info.context.principal
        rows, more = await info.context.read(
            lambda s: of_member(s, principal, self.row.id, size, before)
        )
        return Connection.of("redemption", [(Redemption.from_row(r), r.id) for r in rows], more)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Member | None:
        """_entities: an unknown member, or one the caller may not see, is null."""
        from schema.visibility import loaded_visible_member

        return await loaded_visible_member(info, str(id))


def _expiring(account: AccountView) -> list[ExpiringLot]:
    return [
        ExpiringLot(points=lot.remaining, expires_at=lot.expires_at)
        for lot in account.expiring(utcnow())
    ]
