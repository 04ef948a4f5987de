"""What the tables of background jobs (listing imports, ledger exports) share: a row goes queued →
running → done | failed, and a running job refreshes a heartbeat column as it makes progress, so a
run whose worker died is claimed again and a job whose queue entry was lost is found and enqueued."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute

from mall.core import clock
from mall.core.db import Database
from mall.core.models import JobStatus

# A running job without a heartbeat for this long has lost its worker.
STALE_AFTER = timedelta(minutes=5)


async def claim(
    db: Database, job: Any, job_id: uuid.UUID, heartbeat: InstrumentedAttribute[Any], **reset: Any
) -> bool:
    """queued → running (or a run whose worker died: no heartbeat for STALE_AFTER). Only one job
    wins. `job` is the table's mapped class, `reset` the progress columns a new run starts from."""
    async with db.write() as tx:
        result = await tx.session.execute(
            update(job)
            .where(
                job.id == job_id,
                (job.status == JobStatus.QUEUED)
                | ((job.status == JobStatus.RUNNING) & (heartbeat < clock.now() - STALE_AFTER)),
            )
            .values(status=JobStatus.RUNNING, **reset, **{heartbeat.key: clock.now()})
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def stalled(
    db: Database, job: Any, heartbeat: InstrumentedAttribute[Any], older_than: timedelta
) -> list[uuid.UUID]:
    """Queued jobs whose queue entry was lost (Redis down when they were made, the worker killed),
    and running ones whose worker died: to be enqueued again."""
    cutoff = clock.now() - older_than
    async with db.read() as s:
        rows = await s.execute(
            select(job.id)
            .where(
                ((job.status == JobStatus.QUEUED) & (job.created_at < cutoff))
                | ((job.status == JobStatus.RUNNING) & (heartbeat < cutoff - STALE_AFTER))
            )
            .limit(20)
        )
        return list(rows.scalars())
