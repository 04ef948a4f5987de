"""The worker's side: pending outbox rows of the topic become notification rows, one per recipient.

Idempotent: a row's notices are keyed (`Notification.key`, unique per user) and inserted with ON
CONFLICT DO NOTHING, so a job that runs twice, or two jobs at once, store each notice once; the
outbox row is marked done in the same transaction, so none is lost either."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.db import Database, retried
from mall.core.models import Outbox, OutboxStatus, User
from mall.notify.models import MailState, Notification, Preferences
from mall.notify.stage import TOPIC

log = logging.getLogger("mall.notify")


async def _recipients(s: AsyncSession, item: dict[str, Any]) -> list[uuid.UUID]:
    stmt = select(User.id).where(User.is_active.is_(True))
    if item.get("org_id"):
        stmt = stmt.where(User.org_id == uuid.UUID(str(item["org_id"])))
    elif item.get("user_ids"):
        stmt = stmt.where(User.id.in_([uuid.UUID(str(u)) for u in item["user_ids"]]))
    else:
        return []
    return list((await s.execute(stmt.order_by(User.id))).scalars())


async def _mail_states(s: AsyncSession, users: list[uuid.UUID], pushing: bool) -> dict[uuid.UUID, str]:
    """How each recipient's notices go out: by e-mail (or SMS) at once, in the digest, or not at all."""
    if not pushing or not users:
        return {}
    rows = (await s.execute(select(Preferences).where(Preferences.user_id.in_(users)))).scalars()
    out: dict[uuid.UUID, str] = {}
    for p in rows:
        if p.email_on and p.email:
            out[p.user_id] = MailState.DIGEST if p.digest else MailState.WAITING
        elif p.sms_on and p.phone:
            out[p.user_id] = MailState.WAITING
    return out


async def _unread_refs(s: AsyncSession, users: list[uuid.UUID], kind: str, ref: str) -> set[uuid.UUID]:
    rows = await s.execute(
        select(Notification.user_id).where(
            Notification.user_id.in_(users),
            Notification.kind == kind,
            Notification.ref == ref,
            Notification.read_at.is_(None),
        )
    )
    return set(rows.scalars())


def _insert(is_sqlite: bool, values: list[dict[str, Any]]) -> Any:
    dialect_insert = sqlite.insert if is_sqlite else postgresql.insert
    return (
        dialect_insert(Notification).values(values).on_conflict_do_nothing(index_elements=["user_id", "key"])
    )


@retried
async def deliver_pending(db: Database, *, pushing: bool = False, limit: int = 100) -> int:
    """Turn up to `limit` pending outbox rows of the topic into notifications; returns how many rows
    were done. `pushing`: e-mail or SMS is configured, so recipients who want them get them."""
    async with db.write() as tx:
        s = tx.session
        stmt = (
            select(Outbox)
            .where(Outbox.topic == TOPIC, Outbox.status == OutboxStatus.PENDING)
            .order_by(Outbox.created_at, Outbox.id)
            .limit(limit)
        )
        if not db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list((await s.execute(stmt)).scalars())
        now = clock.now()
        for row in rows:
            values = []
            for n, item in enumerate(row.payload.get("items", [])):
                users = await _recipients(s, item)
                if item.get("collapse") and item.get("ref"):
                    skip = await _unread_refs(s, users, item["kind"], item["ref"])
                    users = [u for u in users if u not in skip]
                states = await _mail_states(s, users, pushing)
                key = item.get("key") or f"{row.id}:{n}"
                values += [
                    {
                        "id": uuid.uuid4(),
                        "user_id": u,
                        "key": key,
                        "kind": item["kind"],
                        "ref": item.get("ref", ""),
                        "title": item["title"],
                        "body": item.get("body", ""),
                        "link": item["link"],
                        "created_at": row.created_at,
                        "mail_state": states.get(u, MailState.NONE),
                    }
                    for u in users
                ]
            if values:
                await s.execute(_insert(db.is_sqlite, values))
            row.status = OutboxStatus.DONE
            row.attempts += 1
            row.processed_at = now
    if rows:
        log.info("notifications: %d outbox row(s) delivered", len(rows))
    return len(rows)


async def pending(db: Database, older_than: datetime | None = None) -> bool:
    """Any outbox row of the topic still waiting (created before `older_than`, when given)."""
    async with db.read() as s:
        stmt = select(Outbox.id).where(Outbox.topic == TOPIC, Outbox.status == OutboxStatus.PENDING)
        if older_than is not None:
            stmt = stmt.where(Outbox.created_at <= older_than)
        return await s.scalar(stmt.limit(1)) is not None


@retried
async def prune(db: Database, keep_days: int) -> int:
    """Notifications older than `keep_days` are deleted, read or not: they copy what the records
    themselves keep (docs/decisions.md, 2026-12-07)."""
    cutoff = clock.now() - timedelta(days=keep_days)
    async with db.write() as tx:
        result = await tx.session.execute(delete(Notification).where(Notification.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
