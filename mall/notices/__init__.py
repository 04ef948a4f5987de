"""Public notices (公告): 合同公告, 履约验收公告 and the notices of later procedures, in one public,
append-only, ordered list (`/notices`, `/api/notices`). Not deal records: the hash-chained ledger
keeps its own record kinds.

A notice is staged through the outbox in the transaction of the event it follows and published by
the publisher job (the PUBLISH topic), which numbers notices in commit order under the head row's
lock. Publishing one twice is impossible: the outbox row is marked done in the same transaction,
and `source_key` is unique.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock, outbox
from mall.core.db import Database, Tx, retried
from mall.core.errors import NotFound
from mall.core.models import Outbox, OutboxStatus
from mall.notices.models import NOTICE_KIND_LABELS, Notice, NoticeHead, NoticeKind

TOPIC = "notice"
# A termination is published within this many days (calendar days: no calendar at hand where a
# contract is cancelled, and two calendar days are never more than two working days).
TERMINATION_DAYS = 2

__all__ = ["NOTICE_KIND_LABELS", "Notice", "NoticeKind", "page", "publish_pending", "stage"]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stage(
    tx: Tx,
    *,
    kind: str,
    source_key: str,
    title: str,
    region_code: str,
    order_id: uuid.UUID | None,
    event_at: datetime,
    due_at: datetime,
    body: dict[str, Any],
    corrects_key: str | None = None,
) -> uuid.UUID:
    """Stage a notice in the caller's transaction; the publisher publishes it after the commit.
    `corrects_key` names the notice this one corrects (its `source_key`): the published notice
    carries that notice's number."""
    row = Outbox(
        id=uuid.uuid4(),
        topic=TOPIC,
        payload={
            "kind": kind,
            "source_key": source_key,
            "title": title,
            "region_code": region_code,
            "order_id": str(order_id) if order_id else None,
            "event_at": clock.rfc3339(event_at),
            "due_at": clock.rfc3339(due_at),
            "body": body,
            "corrects_key": corrects_key,
        },
        status=OutboxStatus.PENDING,
        created_at=clock.now(),
    )
    tx.session.add(row)
    tx.after_commit(lambda: outbox.kick(outbox.PUBLISH, row.id))
    return row.id


def stage_termination_notice(
    tx: Tx, *, order_id: uuid.UUID, region_code: str, at: datetime, body: dict[str, Any]
) -> uuid.UUID:
    """合同终止公告: the contract of a published 合同公告 was cancelled by consent or voided by the
    regulator. It names the notice it corrects; the reason (a person wrote it) is not in it."""
    return stage(
        tx,
        kind=NoticeKind.TERMINATION,
        source_key=f"termination:{order_id}",
        title=f"{body.get('buyer', {}).get('name', '')} 合同 {body.get('contract_no', '')} 终止公告"[:300],
        region_code=region_code,
        order_id=order_id,
        event_at=at,
        due_at=at + timedelta(days=TERMINATION_DAYS),
        body=body,
        corrects_key=f"contract:{order_id}",
    )


def stage_acceptance_notice(
    tx: Tx,
    *,
    source_key: str,
    title: str,
    region_code: str,
    order_id: uuid.UUID,
    accepted_at: datetime,
    due_at: datetime,
    body: dict[str, Any],
) -> uuid.UUID:
    """The 履约验收公告 of a service order's acceptance (its body: what the acceptance found, with
    the parties as organizations and no person's name)."""
    return stage(
        tx,
        kind=NoticeKind.ACCEPTANCE,
        source_key=source_key,
        title=title,
        region_code=region_code,
        order_id=order_id,
        event_at=accepted_at,
        due_at=due_at,
        body=body,
    )


@retried
async def publish_pending(db: Database, *, limit: int = 200) -> int:
    """Publish staged notices, oldest first. Safe to run any number of times, concurrently."""
    async with db.write() as tx:
        s = tx.session
        head = (await s.execute(select(NoticeHead).where(NoticeHead.id == 1).with_for_update())).scalar_one()
        rows = list(
            (
                await s.execute(
                    select(Outbox)
                    .where(Outbox.topic == TOPIC, Outbox.status == OutboxStatus.PENDING)
                    .order_by(Outbox.created_at, Outbox.id)
                    .limit(limit)
                )
            ).scalars()
        )
        if not rows:
            return 0
        keys = [str(r.payload["source_key"]) for r in rows]
        keys += [str(r.payload["corrects_key"]) for r in rows if r.payload.get("corrects_key")]
        found = await s.execute(select(Notice.source_key, Notice.seq).where(Notice.source_key.in_(keys)))
        seq_of: dict[str, int] = {str(key): int(seq) for key, seq in found}
        done = set(seq_of)
        now = clock.now()
        published = 0
        for row in rows:
            p = row.payload
            row.status = OutboxStatus.DONE
            row.attempts += 1
            row.processed_at = now
            if p["source_key"] in done:  # staged twice for one thing: once is the rule
                continue
            done.add(p["source_key"])
            due = _instant(p["due_at"])
            head.last_seq += 1
            seq_of[p["source_key"]] = head.last_seq
            s.add(
                Notice(
                    seq=head.last_seq,
                    id=row.id,
                    kind=p["kind"],
                    source_key=p["source_key"],
                    order_id=uuid.UUID(p["order_id"]) if p.get("order_id") else None,
                    title=p["title"],
                    region_code=p["region_code"],
                    event_at=_instant(p["event_at"]),
                    due_at=due,
                    published_at=now,
                    late=now > due,
                    corrects_seq=seq_of.get(p.get("corrects_key") or ""),
                    body=p["body"],
                )
            )
            published += 1
    return published


async def page(
    s: AsyncSession, *, kind: str = "", before: int | None = None, limit: int = 20
) -> tuple[list[Notice], int]:
    """Newest first; `before` pages on by number. Returns the notices and the total matching."""
    q = select(Notice)
    count = select(func.count()).select_from(Notice)
    if kind:
        q = q.where(Notice.kind == kind)
        count = count.where(Notice.kind == kind)
    if before is not None:
        q = q.where(Notice.seq < before)
    rows = list((await s.execute(q.order_by(Notice.seq.desc()).limit(limit))).scalars())
    return rows, int(await s.scalar(count) or 0)


async def get(s: AsyncSession, seq: int) -> Notice:
    notice = await s.get(Notice, seq) if 0 < seq < 2**62 else None  # (a larger number fits no column)
    if notice is None:
        raise NotFound("公告不存在", code="notice_not_found")
    return notice


async def of_order(s: AsyncSession, order_id: uuid.UUID) -> list[Notice]:
    rows = await s.execute(select(Notice).where(Notice.order_id == order_id).order_by(Notice.seq))
    return list(rows.scalars())


async def corrections_of(s: AsyncSession, seq: int) -> list[Notice]:
    """The later notices that correct this one (a 合同终止公告 of a 合同公告)."""
    rows = await s.execute(select(Notice).where(Notice.corrects_seq == seq).order_by(Notice.seq))
    return list(rows.scalars())
