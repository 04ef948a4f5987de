"""The auction room under faults: an expired lock, a Redis restart. The database decides."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from bidding import offers, room
from bidding.models import Offer
from bidding.room import room_bid
from mall.core.models import OrgKind
from mall.core.settings import Settings
from tests.conftest import RedisServer
from tests.factories import World


async def auction(world: World, n: int) -> tuple[Any, list[Any]]:
    # an invitation names at least 3 suppliers; the test uses the first n
    xs = [await world.org(f"r{i}", OrgKind.SUPPLIER, f"房间供应商{i}") for i in range(max(3, n))]
    p = await world.procedure(
        "auction",
        "竞价室故障测试项目",
        invited=xs,
        item=("A02010105", "台式计算机", "", "10", "台"),
        decrement="100",
    )
    return p, xs


async def accepted(world: World, procedure_id: Any) -> int:
    async with world.db.read() as s:
        return (
            await s.scalar(
                select(func.count()).where(Offer.procedure_id == procedure_id, Offer.status == "accepted")
            )
            or 0
        )


class FakeApp:
    """What room_bid needs of the application: its Redis client and channels (events are not under test)."""

    def __init__(self, redis: Any) -> None:
        class State:
            pass

        self.state = State()
        self.state.room_redis = redis  # type: ignore[attr-defined]

        class Channels:
            async def wait_published(self, data: Any, channels: Any) -> None:
                return None

        self.state.channels = Channels()  # type: ignore[attr-defined]
        self.state.db = None  # type: ignore[attr-defined]


async def test_a_holder_whose_lock_expired_cannot_commit_over_a_newer_one(
    world: World, settings: Settings
) -> None:
    p, xs = await auction(world, 2)
    r = aioredis.Redis.from_url(settings.resolved_redis_url)
    prefix = f"mall:{settings.queue_name}"
    try:
        async with room.room_lock(r, prefix, p.id) as old_token:
            # the first holder stalls past its lock's lifetime …
            await r.delete(room._keys(prefix, p.id)[0])  # (the TTL running out, without waiting for it)
            async with room.room_lock(r, prefix, p.id) as new_token:
                assert new_token > old_token
                ok = await offers.bid(world.db, xs[1], p.id, "59000.00", fence=new_token)
                assert ok.accepted
            # … then wakes up and tries to commit with its old token: the database refuses it
            with pytest.raises(offers.StaleFence):
                await offers.bid(world.db, xs[0], p.id, "58000.00", fence=old_token)
    finally:
        await r.aclose()
    assert await accepted(world, p.id) == 1


async def test_a_holder_that_waits_on_the_database_keeps_its_lock(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bid held up by the database (SQLite's one writer) renews its lock: the next bidder waits for
    it instead of taking the room and making the first one fail on its fence."""
    monkeypatch.setattr(room, "LOCK_TTL_MS", 300)
    monkeypatch.setattr(room, "LOCK_RENEW_SECONDS", 0.1)
    p, _ = await auction(world, 1)
    r = aioredis.Redis.from_url(settings.resolved_redis_url)
    prefix = f"mall:{settings.queue_name}"
    lock_key = room._keys(prefix, p.id)[0]
    try:
        async with room.room_lock(r, prefix, p.id) as token:
            await asyncio.sleep(1.0)  # more than three lifetimes of the lock
            assert await r.pttl(lock_key) > 0, "the lock expired while its holder was still running"
            # another bidder cannot take it meanwhile
            assert not await r.set(lock_key, "someone-else", nx=True, px=300)
        assert token >= 1
        assert await r.exists(lock_key) == 0, "the lock outlived its holder"
    finally:
        await r.aclose()


async def test_a_redis_restart_mid_auction_loses_nothing(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    p, xs = await auction(world, 3)
    server = RedisServer(tmp_path)
    server.start()
    s = replace(settings, redis_url=server.url)
    r = aioredis.Redis.from_url(server.url)
    app = FakeApp(r)
    try:
        for who, amount in zip(xs, ["59000.00", "58000.00", "57000.00"], strict=True):
            assert (await room_bid(app, world.db, s, who, p.id, amount)).accepted
        # Redis restarts and has lost its data (the fence counter starts again from 1)
        await r.flushall()
        server.stop()
        server.start()
        await r.connection_pool.disconnect()
        # the room recovers from the database: the next bid is accepted, on the state the database holds
        result = await room_bid(app, world.db, s, xs[0], p.id, "56000.00")
        assert result.accepted and result.seq == 4 and result.lowest.__str__() == "56000.00"
        # and while Redis is down, bids still go through the database alone
        server.stop()
        result = await room_bid(app, world.db, s, xs[1], p.id, "55000.00")
        assert result.accepted and result.seq == 5
    finally:
        await r.aclose()
        server.stop()
    assert await accepted(world, p.id) == 5


async def test_concurrent_bids_through_the_room_lock(world: World, settings: Settings) -> None:
    p, xs = await auction(world, 10)
    r = aioredis.Redis.from_url(settings.resolved_redis_url)
    app = FakeApp(r)
    amounts = iter(range(59_900, 50_000, -13))
    try:

        async def one(i: int) -> None:
            try:
                await room_bid(app, world.db, settings, xs[i % 10], p.id, f"{next(amounts)}.00")
            except Exception as exc:  # refusals by the rules are fine; nothing else is
                from mall.core.errors import RuleViolation

                assert isinstance(exc, RuleViolation), exc

        await asyncio.gather(*(one(i) for i in range(60)))
    finally:
        await r.aclose()
    async with world.db.read() as session:
        seqs = list(
            (
                await session.execute(
                    select(Offer.seq)
                    .where(Offer.procedure_id == p.id, Offer.status == "accepted")
                    .order_by(Offer.seq)
                )
            ).scalars()
        )
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 10
