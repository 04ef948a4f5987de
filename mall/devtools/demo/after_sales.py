"""The demo's after-sales claims: one repair answered and resolved, one exchange waiting for the supplier."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.settings import Settings
from mall.orders import claims


async def claim(
    db: Database,
    settings: Settings,
    buyer: Principal,
    supplier: Principal,
    order_id: uuid.UUID,
    *,
    resolved: bool,
    advance: Callable[[timedelta], None],
) -> None:
    """A repair claim answered and resolved; or, on a recent order, an exchange that waits for the
    supplier's answer (on its 工作台)."""
    advance(timedelta(days=2))
    if not resolved:
        await claims.open_claim(
            db, settings, buyer, order_id, "exchange", "到货外箱破损，机身有划痕，申请换货", 1
        )
        return
    claim = await claims.open_claim(
        db, settings, buyer, order_id, "repair", "使用一周后无法开机，申请上门维修", 1
    )
    advance(timedelta(days=1))
    await claims.answer_claim(
        db, supplier, order_id, claim.id, "已安排工程师明日上午上门检修，主板故障免费更换"
    )
    advance(timedelta(days=3))
    await claims.close_claim(db, buyer, order_id, claim.id, "resolved", "已上门更换主板，设备运行正常")
