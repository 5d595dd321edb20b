"""Masking of personal data for viewers who are not the person."""

from __future__ import annotations

from hub.auth import Principal
from hub.permissions import sees_as_the_member


def shown_name(principal: Principal, member_id: str, name: str) -> str:
    """A member's name as this caller may read it: whole for ADMIN and the member itself (a
    session the platform or ADMIN minted), masked for everyone else, a session a merchant
    minted on its own included."""
    return name if sees_as_the_member(principal, member_id) else mask_name(name)


def mask_name(name: str) -> str:
    """Keep the first character: '李小龙' -> '李**', 'Wei Zhang' -> 'W********'."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return name[0] + "*" * min(len(name) - 1, 8)


def mask_phone(phone: str) -> str:
    """Keep the first 3 and last 4 digits: '13812345678' -> '138****5678'."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
