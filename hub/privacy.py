"""Masking of personal data for viewers who are not the person."""

from __future__ import annotations


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
