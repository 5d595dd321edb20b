"""The demo's rewards, written as plain data, as the catalog takes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.mall import catalog


def new_reward(reward: Mapping[str, Any], merchant_id: str, **more: Any) -> catalog.NewReward:
    """A reward given as ref, kind, title, price and, if it has them, description, stock
    and voucher terms; `more`: its slots or tags."""
    return catalog.NewReward(
        ref=reward["ref"],
        kind=reward["kind"],
        title=reward["title"],
        price=reward["price"],
        description=reward.get("description"),
        stock=reward.get("stock"),
        merchant_id=merchant_id,
        voucher=reward.get("voucher"),
        **more,
    )
