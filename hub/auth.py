"""API keys, the authenticated principal, and member session tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import validate
from hub.db import NO_KEY_UPDATE, utcnow
from hub.enums import Role
from hub.errors import InvalidInput, NotFound
from hub.ids import new_id
from hub.models import ApiKey, HubSetting, Merchant

_TOKEN_AUDIENCE = "hub:member-session"
MAX_TOKENS = 10_000  # verified session tokens kept; beyond, the map starts again
_SIGNING_KEY_SETTING = "member_session_signing_key"


@dataclass(frozen=True)
class SessionGrant:
    """A member session as minted: for which member, by which key, and whose points it may
    spend. `universal` sessions (minted by ADMIN or the platform merchant) may debit every
    program the member holds; the others only the minting merchant's programs."""

    member_id: str
    minted_by: str  # the minting key's id
    role: Role  # the minting key's role
    merchant_id: str | None  # the minting key's merchant
    universal: bool

    def may_debit(self, merchant_id: str) -> bool:
        """Whether this session may take points out of a program of this merchant."""
        return self.universal or merchant_id == self.merchant_id


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key, and when a member session token came with it, the member
    it acts for (`member_id`) and what that session allows (`session`)."""

    key_id: str
    role: Role
    merchant_id: str | None = None
    member_id: str | None = None
    session: SessionGrant | None = None

    @property
    def actor(self) -> str:
        """The actor recorded on every entry this caller causes."""
        return self.key_id if self.member_id is None else f"{self.key_id}/{self.member_id}"

    @property
    def idempotency_scope(self) -> str:
        """Whose idempotency keys these are: a merchant's keys share them (a retry through
        another key of the same merchant is the same request); a member session's are its
        member's, as far as the session reaches: every universal session of the member
        shares them, a session a merchant minted (that spends and sees that merchant's
        points only) has its own, so that replaying a wider session's key through it is a
        request of its own, checked as one, not the wider one's answer; the platform's keys
        share them by role (a retry through another ADMIN key, one rotated meanwhile, is
        the same request)."""
        if self.member_id is not None:
            owner = f"merchant:{self.merchant_id}" if self.merchant_id else self.role.value.lower()
            grant = self.session
            reach = "" if grant is None or grant.universal else f"/minted:{grant.merchant_id}"
            return f"{owner}/member:{self.member_id}{reach}"
        if self.merchant_id:
            return f"merchant:{self.merchant_id}"
        if self.role in (Role.ADMIN, Role.FINANCE):
            return f"platform:{self.role.value.lower()}"
        return self.key_id


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """32 random bytes, URL-safe, with a recognisable prefix for secret scanners."""
    return "hub_" + secrets.token_urlsafe(32)


async def create_api_key(
    session: AsyncSession,
    *,
    role: Role,
    label: str,
    merchant_id: str | None = None,
    created_by: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret, which is never stored in clear."""
    label = validate.text(label, ("label",), max_length=200)
    if role == Role.MERCHANT:
        if not merchant_id:
            raise InvalidInput(
                "A MERCHANT key needs the merchantId it acts for.", field=("merchant_id",)
            )
        if await session.get(Merchant, merchant_id) is None:
            raise NotFound(f"No merchant has id {merchant_id!r}.", field=("merchant_id",))
    elif merchant_id:
        raise InvalidInput(
            f"Only MERCHANT keys are bound to a merchant; leave merchantId empty for {role}.",
            field=("merchant_id",),
        )
    secret = secret or new_secret()
    key = ApiKey(
        id=new_id("key"),
        role=role,
        merchant_id=merchant_id,
        label=label,
        secret_hash=hash_secret(secret),
        created_by=created_by,
    )
    session.add(key)
    await session.flush()
    return key, secret


async def authenticate(session: AsyncSession, secret: str) -> Principal | None:
    """The principal of a live key with this secret, or None.

    Read from the database; the API's requests go through hub.caches.Caches.principal,
    which keeps live keys in memory and drops them on a revocation.
    """
    key = await session.scalar(
        select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    return Principal(key_id=key.id, role=Role(key.role), merchant_id=key.merchant_id)


async def list_api_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Every key, newest first (revoked ones too: the list is the audit trail)."""
    return (await session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()))).all()


async def revoke_api_key(session: AsyncSession, key_id: str) -> ApiKey:
    """Revoke a key for good; revoking a revoked key changes nothing.

    An ADMIN may revoke any key, its own included (it is refused from the next request
    on). A revoked bootstrap secret is never recreated at start (see ensure_admin_key).
    """
    key = await session.get(ApiKey, key_id, with_for_update=NO_KEY_UPDATE)
    if key is None:
        raise NotFound(f"No API key has id {key_id!r}.", field=("id",))
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        from hub.caches import KEYS, bump  # every process drops its keys (hub.caches)

        await bump(session, KEYS)
    return key


class KeyUsage:
    """When each key was last seen, kept in memory so that `last_used_at` is written at
    most once per INTERVAL per key and process, not on every request."""

    INTERVAL = dt.timedelta(minutes=1)

    def __init__(self) -> None:
        self._written: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def due(self, key_id: str, now: dt.datetime) -> bool:
        """True (and remembered) when this key's last use should be written now."""
        with self._lock:
            last = self._written.get(key_id)
            if last is not None and now - last < self.INTERVAL:
                return False
            if len(self._written) > 10_000:
                self._written = {k: t for k, t in self._written.items() if now - t < self.INTERVAL}
            self._written[key_id] = now
            return True

    def forget_before(self, now: dt.datetime) -> None:
        """Drop what was written more than INTERVAL before `now` (keeps the map small)."""
        with self._lock:
            self._written = {k: t for k, t in self._written.items() if now - t < self.INTERVAL}


async def touch(session: AsyncSession, key_id: str, at: dt.datetime) -> None:
    """Record a key's last use (only ever moves forward)."""
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < at),
        )
        .values(last_used_at=at)
        .execution_options(synchronize_session=False)
    )


async def ensure_admin_key(session: AsyncSession, secret: str, label: str) -> bool:
    """Create an ADMIN key with exactly this secret unless one with it exists; True if created."""
    existing = await session.scalar(select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret)))
    if existing is not None:
        return False
    await create_api_key(
        session, role=Role.ADMIN, label=label, secret=secret, created_by="bootstrap"
    )
    return True


async def has_admin_key(session: AsyncSession) -> bool:
    found = await session.scalar(
        select(ApiKey.id).where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None))
    )
    return found is not None


async def signing_key(session: AsyncSession, configured: str | None) -> str:
    """The key that signs member sessions: HUB_SECRET_KEY, else one shared through the database."""
    if configured:
        return configured
    row = await session.get(HubSetting, _SIGNING_KEY_SETTING)
    if row is None:
        row = HubSetting(name=_SIGNING_KEY_SETTING, value=secrets.token_urlsafe(48))
        session.add(row)
        await session.flush()
    return row.value


@dataclass(frozen=True)
class MemberSession:
    token: str
    expires_at: dt.datetime


class SessionTokens:
    """Signed, short-lived tokens that let a storefront act for exactly one member."""

    def __init__(self, key: str, ttl_seconds: int) -> None:
        self._key = key
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        # Tokens verified already, with their grant and expiry (epoch seconds): a storefront
        # sends the same token with each request, and HS256 cost 46 us a time. Only valid
        # tokens are kept (an attacker's forgeries are not), at most MAX_TOKENS.
        self._verified: dict[str, tuple[SessionGrant, int]] = {}

    def mint(self, grant: SessionGrant) -> MemberSession:
        """A signed token carrying the grant: who minted it decides what it may debit."""
        now = utcnow()
        expires = now + self._ttl
        claims = {
            "sub": grant.member_id,
            "aud": _TOKEN_AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "by": grant.minted_by,
            "role": grant.role.value,
            "mch": grant.merchant_id,
            "all": grant.universal,
        }
        token = jwt.encode(claims, self._key, algorithm="HS256")
        return MemberSession(token=token, expires_at=expires.replace(microsecond=0))

    def read(self, token: str) -> SessionGrant | None:
        """The grant of a valid token; None when it is forged, malformed, expired, or minted
        before sessions recorded who minted them."""
        known = self._verified.get(token)
        if known is not None:
            if int(time.time()) < known[1]:  # as PyJWT reads `exp`, to the second
                return known[0]
            self._verified.pop(token, None)
            return None
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=_TOKEN_AUDIENCE)
        except jwt.PyJWTError:
            return None
        grant = self._grant(claims)
        expires: Any = claims.get("exp")
        if grant is not None and isinstance(expires, int):
            if len(self._verified) >= MAX_TOKENS:
                self._verified.clear()
            self._verified[token] = (grant, expires)
        return grant

    @staticmethod
    def _grant(claims: dict[str, Any]) -> SessionGrant | None:
        """The grant the claims of a verified token make; None when they make none."""
        subject, by, role = claims.get("sub"), claims.get("by"), claims.get("role")
        merchant, universal = claims.get("mch"), claims.get("all")
        if not (isinstance(subject, str) and isinstance(by, str) and isinstance(role, str)):
            return None
        if role not in Role.__members__:
            return None
        if not (merchant is None or isinstance(merchant, str)) or not isinstance(universal, bool):
            return None
        return SessionGrant(
            member_id=subject,
            minted_by=by,
            role=Role(role),
            merchant_id=merchant,
            universal=universal,
        )

    def member_of(self, token: str) -> str | None:
        """The member a valid token is for; None when it is forged, malformed or expired."""
        grant = self.read(token)
        return grant.member_id if grant else None
