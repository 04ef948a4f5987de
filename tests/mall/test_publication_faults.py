"""Publication through real workers, and what happens when Redis or a worker fails.

Each test here runs its own bundled redis-server (so it can stop it) and real `mall worker`
processes against the run's database, whatever REDIS_URL says.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mall import orders
from mall.core.models import Outbox
from mall.core.settings import Settings
from mall.ledger.models import DisclosureRecord
from tests.conftest import RedisServer
from tests.factories import World
from workers import queues


def worker_env(settings: Settings, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALL_")}
    env.update(
        DATABASE_URL=settings.resolved_database_url,
        REDIS_URL=redis_url,
        MALL_DATA_DIR=str(settings.data_dir),
        MALL_SECRET_KEY=settings.secret_key,
        MALL_DATA_KEY=settings.data_key,
        MALL_QUEUE_NAME=settings.queue_name,
        MALL_OUTBOX_GRACE_SECONDS="1",
        MALL_SWEEP_INTERVAL_SECONDS="0.2",
        MALL_STALE_JOB_SECONDS="3",
        **extra,
    )
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "mall.cli", "worker"],
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def descendants(pid: int) -> list[int]:
    """All processes below `pid` (RQ puts its work horse in a process group of its own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        if sig == signal.SIGKILL:
            # Kill the work horse too, mid-transaction: nothing gets to clean up.
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        os.killpg(proc.pid, sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def ledger(world: World) -> list[DisclosureRecord]:
    async with world.db.read() as s:
        return list((await s.execute(select(DisclosureRecord).order_by(DisclosureRecord.seq))).scalars())


async def pending(world: World) -> int:
    async with world.db.read() as s:
        return (
            await s.scalar(
                select(func.count()).where(Outbox.status == "pending", Outbox.topic == "disclosure")
            )
            or 0
        )


def log_tail(log: Path | None, lines: int = 80) -> str:
    if log is None or not log.exists():
        return ""
    return f"\nworker log (last {lines} lines):\n" + "\n".join(
        log.read_text(errors="replace").splitlines()[-lines:]
    )


async def wait_for(predicate: Any, timeout: float, what: str, log: Path | None = None) -> None:
    """Poll `predicate`; on a timeout the assertion carries the tail of the workers' log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    tail = log_tail(log)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")


async def place_order(world: World) -> uuid.UUID:
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings["laptop"].id, "1"),)),
    )
    return placed[0].id


@pytest.mark.slow
async def test_confirmation_enqueues_and_a_worker_publishes(
    world: World, settings: Settings, private_redis: RedisServer
) -> None:
    order_id = await place_order(world)
    await orders.confirm(world.db, world.who["supplier_x"], order_id)
    # the publisher is enqueued after the commit (beside the notifications' job)
    assert [j.func_name for j in queues.queue().get_jobs()].count("workers.jobs.publish") == 1
    burst = subprocess.run(
        [sys.executable, "-m", "mall.cli", "worker", "--burst"],
        env=worker_env(settings, private_redis.url),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert burst.returncode == 0, burst.stdout.decode()[-2000:]
    records = await ledger(world)
    assert [(r.seq, r.kind) for r in records] == [(1, "deal")]
    assert await pending(world) == 0


@pytest.mark.slow
async def test_redis_down_at_confirmation_delays_but_never_loses_the_record(
    world: World, settings: Settings, private_redis: RedisServer, tmp_path: Path
) -> None:
    order_id = await place_order(world)
    private_redis.stop()
    # The confirmation succeeds without Redis: the deal and its outbox row are committed together.
    confirmed = await orders.confirm(world.db, world.who["supplier_x"], order_id)
    assert confirmed.status == "confirmed"
    assert await pending(world) == 1 and await ledger(world) == []

    private_redis.start()  # same data directory: it comes back as it was
    log = tmp_path / "worker.log"
    proc = start_worker(worker_env(settings, private_redis.url), log)
    try:

        async def published() -> bool:
            return len(await ledger(world)) == 1

        await wait_for(published, 30, "the sweeper to re-enqueue and the worker to publish", log)
        await asyncio.sleep(1.0)  # a few more sweeps: nothing more may appear
    finally:
        stop_worker(proc)
    records = await ledger(world)
    assert [(r.seq, r.kind, r.order_no) for r in records] == [(1, "deal", confirmed.order_no)]
    assert await pending(world) == 0


@pytest.mark.slow
async def test_worker_killed_mid_publish_publishes_exactly_once(
    world: World, settings: Settings, private_redis: RedisServer, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    # The first worker stalls inside its publishing transaction; we kill it there.
    slow = start_worker(worker_env(settings, private_redis.url, MALL_PUBLISH_PAUSE_SECONDS="30"), log)
    try:
        order_id = await place_order(world)
        await orders.confirm(world.db, world.who["supplier_x"], order_id)

        async def started() -> bool:
            # The worker says so inside the transaction, once the ledger row is written (the job's
            # status in Redis is no signal: the sweeper may enqueue the same job id again meanwhile,
            # which sets it back to queued).
            return log.exists() and "publication paused inside its transaction" in log.read_text()

        await wait_for(started, 30, "the publish job to pause inside its transaction", log)
        await asyncio.sleep(1.0)  # well inside the 30 s pause
    finally:
        stop_worker(slow, signal.SIGKILL)
    assert await ledger(world) == []  # nothing of the killed transaction is visible
    assert await pending(world) == 1

    fresh = start_worker(worker_env(settings, private_redis.url), log)
    try:

        async def published() -> bool:
            return len(await ledger(world)) >= 1

        await wait_for(published, 60, "a new worker to publish the record", log)
        await asyncio.sleep(1.5)  # time for a second copy to be published, were there one
    finally:
        stop_worker(fresh)
    records = await ledger(world)
    assert [(r.seq, r.kind) for r in records] == [(1, "deal")]  # exactly once
    assert await pending(world) == 0
