"""The outbox sweeper: work whose job was lost (Redis down, worker killed) is enqueued again."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from catalog import imports
from mall.core import clock
from mall.core.db import Database
from mall.core.models import Outbox, OutboxStatus
from mall.ledger import exports
from mall.notify import deliver as notify_delivery
from mall.notify import mail as notify_mail
from workers import queues

log = logging.getLogger("mall.outbox")


async def pending_count(db: Database) -> int:
    async with db.read() as s:
        return await s.scalar(select(func.count()).where(Outbox.status == OutboxStatus.PENDING)) or 0


async def sweep(db: Database, grace_seconds: int) -> int:
    """Re-enqueue the publisher when outbox rows have waited longer than the grace period.
    Returns the number of overdue rows seen."""
    cutoff = clock.now() - timedelta(seconds=grace_seconds)
    async with db.read() as s:
        search_overdue = await s.scalar(
            select(Outbox.id)
            .where(
                Outbox.status == OutboxStatus.PENDING, Outbox.topic == "search", Outbox.created_at <= cutoff
            )
            .limit(1)
        )
        overdue = list(
            (
                await s.execute(
                    select(Outbox.id, Outbox.topic)
                    .where(
                        Outbox.status == OutboxStatus.PENDING,
                        Outbox.topic.in_(("disclosure", "notice")),
                        Outbox.created_at <= cutoff,
                    )
                    .order_by(Outbox.created_at)
                    .limit(1)
                )
            ).all()
        )
        count = (
            await s.scalar(
                select(func.count()).where(Outbox.status == OutboxStatus.PENDING, Outbox.created_at <= cutoff)
            )
            or 0
        )
    for outbox_id, topic in overdue:
        # One publisher run drains every pending record in order, so one job is enough.
        if topic in ("disclosure", "notice") and queues.enqueue_publish(outbox_id, unless_busy=True):
            log.info("outbox: %d record(s) waited over %ss; publisher enqueued again", count, grace_seconds)

    for import_id in await imports.stalled(db, timedelta(seconds=max(grace_seconds, 30))):
        if queues.enqueue_import(import_id):
            log.info("import %s waited too long; enqueued again", import_id)

    for export_id in await exports.stalled(db, timedelta(seconds=max(grace_seconds, 30))):
        if queues.enqueue_export(export_id):
            log.info("export %s waited too long; enqueued again", export_id)
    # notices not yet in the message centre, or not yet mailed (the job was lost, SMTP was down)
    notices_late = await notify_delivery.pending(db, cutoff) or await notify_mail.waiting(db, cutoff)
    if notices_late and queues.enqueue_notify(unless_busy=True):
        log.info("outbox: notifications waited over %ss; delivery enqueued again", grace_seconds)
    if search_overdue is not None and queues.enqueue_index(unless_busy=True):
        log.info("outbox: search index changes waited over %ss; index job enqueued again", grace_seconds)
    return count
