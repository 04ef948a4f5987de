"""Closing an inquiry through real workers, when the worker dies in the middle of it.

A real `mall worker` (RQ worker with its scheduler, plus the periodic process) runs the scheduled
close job against the run's database and a private bundled redis-server. The first worker stalls
inside the closing transaction (fault injection setting `MALL_CLOSE_PAUSE_SECONDS`) and is killed
there with SIGKILL; a fresh worker must then close the inquiry, and do it exactly once: one status
change, one budget release, one failure notice in the ledger.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import select

from bidding import offers, publish
from bidding.models import Procedure
from mall.budgets.models import BudgetLine, BudgetMovement
from mall.core import clock
from mall.core.models import OrgKind, Outbox
from mall.core.settings import Settings
from mall.ledger.models import DisclosureRecord
from tests.conftest import RedisServer
from tests.factories import World
from tests.mall.test_publication_faults import start_worker, stop_worker, wait_for, worker_env


async def inquiry_ending_soon(world: World, seconds: float) -> Procedure:
    """An inquiry whose deadline is `seconds` from now (real time), with one quote in it.

    The procedure is published through the service with the clock set back, so that the minimum
    open period is respected and the deadline still falls a few seconds ahead of the real clock."""
    third = await world.org(f"third{uuid.uuid4().hex[:6]}", OrgKind.SUPPLIER, "第三家受邀供应商")
    ends_at = clock.now() + timedelta(seconds=seconds)
    starts_at = ends_at - publish.MIN_OPEN
    clock.clock.freeze(starts_at)
    try:
        p = await world.procedure(
            "inquiry",
            "会议室投影设备询价",
            # an invitation names at least 3 suppliers; only supplier_x quotes
            invited=[world.who["supplier_x"], world.who["supplier_y"], third],
            ceiling="30000.00",
            item=("A02010105", "台式计算机", "i5/16G/512G", "2", "台"),
            starts_at=starts_at,
            ends_at=ends_at,
        )
        await offers.quote(world.db, world.who["supplier_x"], p.id, "28000.00")
    finally:
        clock.clock.unfreeze()
    return p


async def state(world: World, procedure_id: uuid.UUID) -> tuple[str, int, int, int]:
    """Status, budget releases of the procedure, its failure outbox rows, its ledger records."""
    async with world.db.read() as s:
        p = await s.get(Procedure, procedure_id)
        assert p is not None
        releases = list(
            (
                await s.execute(
                    select(BudgetMovement).where(
                        BudgetMovement.procedure_id == procedure_id, BudgetMovement.kind == "release"
                    )
                )
            ).scalars()
        )
        staged = [
            r
            for r in (await s.execute(select(Outbox).where(Outbox.topic == "disclosure"))).scalars()
            if r.payload.get("order_no") == p.number
        ]
        published = list(
            (await s.execute(select(DisclosureRecord).where(DisclosureRecord.order_no == p.number))).scalars()
        )
        return p.status, len(releases), len(staged), len(published)


async def reserved(world: World) -> object:
    async with world.db.read() as s:
        line = await s.get(BudgetLine, world.lines["a1"].id)
        assert line is not None
        return line.reserved


@pytest.mark.slow
async def test_worker_killed_while_closing_closes_exactly_once(
    world: World,
    settings: Settings,
    private_redis: RedisServer,
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    before = await reserved(world)
    p = await inquiry_ending_soon(world, 3)
    assert await reserved(world) != before  # publication reserved the ceiling
    held = await reserved(world)

    slow = start_worker(worker_env(settings, private_redis.url, MALL_CLOSE_PAUSE_SECONDS="60"), log)
    try:
        conn = Redis.from_url(private_redis.url)

        async def started() -> bool:
            try:
                job = Job.fetch(f"close-{p.id}", connection=conn, serializer=JSONSerializer)
                return job.get_status() == "started"
            except Exception:
                return False

        await wait_for(started, 40, "the scheduled close job to start", log)
        await asyncio.sleep(1.5)  # inside the stall: the outcome is written but not committed
        conn.close()
    finally:
        stop_worker(slow, signal.SIGKILL)

    # Nothing of the killed transaction is visible: still open, the reservation held, no notice.
    assert await state(world, p.id) == ("open", 0, 0, 0)
    assert await reserved(world) == held

    fresh = start_worker(worker_env(settings, private_redis.url), log)
    try:

        async def closed() -> bool:
            status, _, _, published = await state(world, p.id)
            return status != "open" and published >= 1

        await wait_for(closed, 60, "a fresh worker to close the inquiry and publish its notice", log)
        await asyncio.sleep(2.0)  # more sweeps and retries of the dead job: nothing more may happen
    finally:
        stop_worker(fresh)

    # One quote is fewer than the minimum of three: the inquiry fails, once.
    assert await state(world, p.id) == ("failed", 1, 1, 1)
    assert await reserved(world) == before
