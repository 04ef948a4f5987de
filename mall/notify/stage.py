"""Staging notifications: an outbox row written in the transaction of the business change, turned
into notification rows by the worker after the commit (mall.notify.deliver)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mall.core import clock, outbox
from mall.core.models import Outbox, OutboxStatus

log = logging.getLogger("mall.notify")
TOPIC = "notify"
_KICK_PENDING = "mall_notify_kick"
_LISTENING = "mall_notify_listening"
_tasks: set[asyncio.Task[Any]] = set()


@dataclass(frozen=True)
class Item:
    """One notice for the active users of an organization (`org_id`) or for named users
    (`user_ids`). `key`: what makes it one for a user; empty, the outbox row and the item's place in
    it (each staging is then one notice). `collapse`: not stored for a user who still has an unread
    notice of the same kind about the same `ref`."""

    kind: str
    title: str
    body: str
    link: str
    org_id: str | None = None
    user_ids: tuple[str, ...] = ()
    ref: str = ""
    key: str = ""
    collapse: bool = False


def for_org(org_id: uuid.UUID, kind: str, title: str, body: str, link: str, **kw: Any) -> Item:
    return Item(kind, title[:200], body[:500], link, org_id=str(org_id), **kw)


def stage(session: AsyncSession | Session, items: list[Item]) -> uuid.UUID | None:
    """Write the outbox row for these notices in the caller's transaction; after its commit the
    worker is asked to deliver them (the outbox sweeper does it later if that ask is lost)."""
    if not items:
        return None
    row = Outbox(
        id=uuid.uuid4(),
        topic=TOPIC,
        payload={"items": [{**asdict(i), "user_ids": list(i.user_ids)} for i in items]},
        status=OutboxStatus.PENDING,
        created_at=clock.now(),
    )
    session.add(row)
    _kick_after_commit(session)
    return row.id


def _kick_after_commit(session: AsyncSession | Session) -> None:
    """After this transaction commits, kick the topic, off the event loop (a Redis round trip).
    Callers need only their session, as `record_event` has. One listener per session (a session
    of `Database.write` lives for one transaction; a rolled-back one is dropped with its rows)."""
    session.info[_KICK_PENDING] = True
    if session.info.get(_LISTENING):
        return
    session.info[_LISTENING] = True
    sync = session.sync_session if isinstance(session, AsyncSession) else session

    def committed(_: Session) -> None:
        if not session.info.pop(_KICK_PENDING, None):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous caller: kick here
            _kick()
            return
        task = loop.create_task(asyncio.to_thread(_kick))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    event.listen(sync, "after_commit", committed)


def _kick() -> None:
    try:
        outbox.kick(outbox.NOTIFY)
    except Exception:
        log.exception("notification delivery not kicked; the outbox sweeper will catch up")


async def drain_kicks() -> None:
    """Wait for kicks still on their way (tests, and processes about to exit)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)
