"""What the write paths of a procedure share (publish, offers, close, award): the row lock that
answers like a read, the procedure's rules as `bidding.rules` sees them, and its scheduled close."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from bidding import rules
from bidding.models import Procedure
from bidding.views import require_visible
from mall.core import outbox
from mall.core.auth import Principal
from mall.core.db import Tx
from mall.core.errors import NotFound


async def lock(tx: Tx, procedure_id: uuid.UUID, who: Principal | None = None) -> Procedure:
    """The procedure, row-locked for a write: 404 when there is none, or (with `who`) when `who` may
    not see it."""
    p = await tx.session.get(Procedure, procedure_id, with_for_update={"key_share": True})
    if p is None:
        raise NotFound("采购项目不存在", code="procedure_not_found")
    if who is not None:
        await require_visible(tx.session, who, p.id)
    return p


def rules_of(p: Procedure) -> rules.AuctionRules:
    return rules.AuctionRules(
        ceiling=p.ceiling,
        decrement=Decimal(p.decrement),
        decrement_is_percent=p.decrement_is_percent,
        beat_lowest=p.beat_lowest,
        snipe_window=timedelta(seconds=p.snipe_window_seconds),
        extension=timedelta(seconds=p.extension_seconds),
        max_extensions=p.max_extensions,
        min_participants=p.min_participants,
        confirm_window=timedelta(hours=p.confirm_hours),
    )


def inquiry_rules_of(p: Procedure) -> rules.InquiryRules:
    return rules.InquiryRules(
        ceiling=p.ceiling, min_valid=p.min_participants, confirm_window=timedelta(hours=p.confirm_hours)
    )


def schedule_close(tx: Tx, procedure_id: uuid.UUID, at: datetime) -> None:
    """After the commit: the close job for the procedure's (current) end."""
    tx.after_commit(lambda: outbox.kick(outbox.CLOSE_PROCEDURE, procedure_id, at))
