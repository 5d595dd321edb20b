"""Masking of personal data for viewers who are not the person."""

from __future__ import annotations

import re

from hub.auth import Principal
from hub.logs import redact
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


def masked_words(text: str, name: str | None) -> str:
    """Someone else's words about a member (a partner's refusal) as the hub keeps and shows
    them to every party: the member's name, in any case, masked as `mask_name` masks it,
    and every phone number masked as the logs mask them. A name written another way (in
    another script, abridged) cannot be recognised in free text."""
    if name and len(name.strip()) > 1:
        text = re.sub(re.escape(name.strip()), mask_name(name), text, flags=re.IGNORECASE)
    return redact(text)
