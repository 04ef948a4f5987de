"""The risk rules' jobs: the incremental run after the events they read (the "risk" outbox topic)
and the nightly full run (mall.supervision.engine)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select, update

from mall.core import clock, outbox
from mall.core.db import Database
from mall.core.models import Outbox, OutboxStatus
from mall.core.settings import Settings
from mall.supervision import engine
from mall.supervision.facts import Scope
from workers import queues, runtime

log = logging.getLogger("mall.jobs")

BATCH = 200  # outbox rows per incremental run


def _ids(raw: Any) -> frozenset[uuid.UUID]:
    out = set()
    for x in raw or ():
        try:
            out.add(uuid.UUID(str(x)))
        except ValueError:
            continue
    return frozenset(out)


async def drain_risk(db: Database, settings: Settings) -> dict[str, int]:
    """Run the rules over what pending "risk" rows name, BATCH rows at a time; a row is done once its
    run committed (a failed run leaves it pending, and running it again opens nothing twice)."""
    rows_done = opened = 0
    while True:
        async with db.read() as s:
            rows = list(
                (
                    await s.execute(
                        select(Outbox.id, Outbox.payload)
                        .where(Outbox.topic == outbox.RISK, Outbox.status == OutboxStatus.PENDING)
                        .order_by(Outbox.created_at, Outbox.id)
                        .limit(BATCH)
                    )
                ).all()
            )
        if not rows:
            break
        scope = Scope()
        for _, payload in rows:
            payload = payload or {}
            scope = scope | Scope(
                _ids(payload.get("buyers")),
                _ids(payload.get("procedures")),
                _ids(payload.get("designations")),
            )
        result = await engine.run_incremental(db, settings, clock.now(), scope)
        opened += result.opened
        async with db.write() as tx:
            await tx.session.execute(
                update(Outbox)
                .where(Outbox.id.in_([r[0] for r in rows]))
                .values(status=OutboxStatus.DONE, processed_at=clock.now())
            )
        rows_done += len(rows)
        if len(rows) < BATCH:
            break
    return {"outbox_rows": rows_done, "opened": opened}


def run_risk() -> dict[str, int]:
    """The incremental run (the "risk" topic's job)."""
    queues.risk_started()

    async def go(db: Database, s: Settings) -> dict[str, int]:
        return await drain_risk(db, s)

    return runtime.run(go)


def run_risk_nightly() -> dict[str, int]:
    """Once a day (the cron asks on every slow tick; later asks that day do nothing), every rule over everything: opens what time alone made due (late payments, unfiled contracts,
    late acceptance, unreviewed applications), and marks cases whose subject no longer hits."""

    async def go(db: Database, s: Settings) -> dict[str, int]:
        day = clock.local_date(clock.now()).isoformat()
        if queues.done_today("risk-nightly", day):  # the cron asks on every slow tick: once a day
            return {}
        result = await engine.run_full(db, s, clock.now())
        # what the events staged meanwhile is covered by this run
        await drain_risk(db, s)
        queues.mark_done_today("risk-nightly", day)
        return {"opened": result.opened, "hit_again": result.hit_again, "no_longer": result.no_longer}

    return runtime.run(go)
