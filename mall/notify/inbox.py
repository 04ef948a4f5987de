"""The message centre's reads and marks: a user only ever sees and marks their own notifications."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.db import Database, retried
from mall.core.errors import NotFound
from mall.notify.models import Notification

ORDERS = ("unread", "newest")  # unread first (then newest), or newest first
PER_PAGE = 20


async def page_of(
    s: AsyncSession, user_id: uuid.UUID, page: int, per_page: int = PER_PAGE, order: str = "unread"
) -> tuple[int, list[Notification]]:
    mine = Notification.user_id == user_id
    total = await s.scalar(select(func.count()).select_from(Notification).where(mine)) or 0
    newest = (Notification.created_at.desc(), Notification.id.desc())
    # unread first: the rows without read_at before the others, whatever NULLs sort as here
    by = (Notification.read_at.is_not(None), *newest) if order == "unread" else newest
    rows = await s.execute(
        select(Notification).where(mine).order_by(*by).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


async def unread_count(s: AsyncSession, user_id: uuid.UUID) -> int:
    return (
        await s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


async def unread(s: AsyncSession, user_id: uuid.UUID, limit: int) -> list[Notification]:
    rows = await s.execute(
        select(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


@retried
async def mark_read(db: Database, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification:
    """Mark one of the user's notifications read (again is harmless); another's is not found."""
    async with db.write() as tx:
        row = await tx.session.get(Notification, notification_id)
        if row is None or row.user_id != user_id:
            raise NotFound("没有这条消息（或不是您的消息）", code="notification_not_found")
        if row.read_at is None:
            row.read_at = clock.now()
    return row


@retried
async def mark_all_read(db: Database, user_id: uuid.UUID) -> int:
    async with db.write() as tx:
        result = await tx.session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=clock.now())
        )
    return int(getattr(result, "rowcount", 0) or 0)
