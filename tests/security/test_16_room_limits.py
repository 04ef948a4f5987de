"""The auction room's limits: the WebSocket checks the Origin against the public base URL and caps the
connections one user holds to one room (counted in Redis across web processes, cleaned up on
disconnect, expiring if a process dies); refused bids are limited per user and room (429, and no
further refused offer is written), except for clients in the exempt networks."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from bidding import room
from bidding.models import Offer
from mall.core.models import OrgKind
from mall.core.settings import Settings
from tests.bidding.live import caller, open_socket, serve, socket_answer
from tests.factories import World
from tests.security.login_helpers import served
from tests.security.test_01_inquiry_room_sealed import publish


async def suppliers_and_auction(world: World, prefix: str, label: str) -> tuple[list[Any], Any]:
    """Three suppliers (`prefix`1 to 3, named `label`1 to 3) and an auction they are invited to."""
    xs = [await world.org(f"{prefix}{i}", OrgKind.SUPPLIER, f"{label}{i}") for i in (1, 2, 3)]
    return xs, await publish(world, "auction", xs, decrement="100")


async def refused_rows(world: World, procedure_id: uuid.UUID, supplier_org_id: Any) -> int:
    async with world.db.read() as s:
        return (
            await s.scalar(
                select(func.count()).where(
                    Offer.procedure_id == procedure_id,
                    Offer.supplier_org_id == supplier_org_id,
                    Offer.status == "refused",
                )
            )
            or 0
        )


@contextlib.asynccontextmanager
async def room_of_a_served_app(
    app: Any, world: World, prefix: str, label: str
) -> AsyncIterator[tuple[str, str, Any]]:
    """A served app, an auction of three suppliers (`prefix`1 to 3), and the first signed in:
    (base URL, the room's path, the signed-in caller)."""
    _, p = await suppliers_and_auction(world, prefix, label)
    async with serve(app) as base:
        who = await caller(base, world, f"{prefix}1")
        try:
            yield base, f"/procedures/{p.id}/room", who
        finally:
            await who.aclose()


async def test_the_room_checks_the_origin(app: Any, world: World, settings: Settings) -> None:
    async with room_of_a_served_app(app, world, "o", "来源供应商") as (base, path, who):
        cookie = who.cookie_header
        good = settings.public_base_url  # http://127.0.0.1:8000
        assert (await socket_answer(base, path, cookie=cookie, origin=good)).first_json()[
            "type"
        ] == "snapshot"
        assert (
            await socket_answer(base, path, cookie=cookie, origin=good.upper())
        ).messages  # case of a host
        for bad in (
            "http://evil.example",
            "http://127.0.0.1:8001",  # another port is another origin
            "https://127.0.0.1:8000",  # another scheme too
            "http://127.0.0.1:8000.evil.example",
            "null",  # sandboxed frames and file: pages
        ):
            answer = await socket_answer(base, path, cookie=cookie, origin=bad)
            assert answer.messages == () and (answer.refused_status == 403 or answer.close_code), (
                bad,
                answer,
            )
        # a client that sends no Origin is not a browser (browsers always send one): it may watch
        assert (await socket_answer(base, path, cookie=cookie)).first_json()["type"] == "snapshot"


async def live_connections(
    settings: Settings, procedure_id: uuid.UUID, user_id: uuid.UUID, expect: int
) -> None:
    """Wait until the room counts `expect` live connections of the user (disconnects are handled by
    the server after the client has gone)."""
    r = aioredis.Redis.from_url(settings.resolved_redis_url)
    try:
        deadline = time.monotonic() + 30
        while (
            n := await room.connections(r, f"mall:{settings.queue_name}", procedure_id, user_id)
        ) != expect:
            assert time.monotonic() < deadline, f"{n} live connections, expected {expect}"
            await asyncio.sleep(0.02)
    finally:
        await r.aclose()


@pytest.mark.slow
async def test_connections_per_user_and_room_are_capped_across_processes(
    world: World, settings: Settings
) -> None:
    xs, p = await suppliers_and_auction(world, "c", "连接供应商")
    other = await publish(world, "auction", xs, decrement="100")
    path = f"/procedures/{p.id}/room"
    origin = settings.public_base_url
    user = world.who["c1"].user_id
    async with (
        served(settings, room_connections_per_user=2) as one,
        served(settings, separate=True, room_connections_per_user=2) as two,
        serve(one) as base1,
        serve(two) as base2,
    ):
        c1 = await caller(base1, world, "c1")
        c2 = await caller(base1, world, "c2")
        try:
            async with open_socket(base1, path, cookie=c1.cookie_header, origin=origin) as a:
                assert "snapshot" in str(await a.recv())
                async with open_socket(base2, path, cookie=c1.cookie_header, origin=origin) as b:
                    assert "snapshot" in str(await b.recv())
                    await live_connections(settings, p.id, user, 2)
                    # a third, on either process: refused before anything is said
                    for base in (base1, base2):
                        third = await socket_answer(base, path, cookie=c1.cookie_header, origin=origin)
                        assert third.messages == () and third.close_code == 4429, third
                    # another user, or the same user in another room, is not affected
                    assert (await socket_answer(base1, path, cookie=c2.cookie_header, origin=origin)).messages
                    assert (
                        await socket_answer(
                            base2, f"/procedures/{other.id}/room", cookie=c1.cookie_header, origin=origin
                        )
                    ).messages
                    # the count expires unless it is kept alive: a killed process frees its places in time
                    r = aioredis.Redis.from_url(settings.resolved_redis_url)
                    try:
                        key = room.connections_key(f"mall:{settings.queue_name}", p.id, user)
                        ttl = await r.pttl(key)
                        assert 0 < ttl <= room.CONNECTION_TTL_MS, ttl
                        now_ms = int(time.time() * 1000)
                        for _member, expires in await r.zrange(key, 0, -1, withscores=True):
                            assert now_ms < expires <= now_ms + room.CONNECTION_TTL_MS + 1000
                    finally:
                        await r.aclose()
                await live_connections(settings, p.id, user, 1)  # b closed: its place is free again
                assert (await socket_answer(base2, path, cookie=c1.cookie_header, origin=origin)).messages
            await live_connections(settings, p.id, user, 0)

            # places left by a process that was killed (no disconnect, no more keep-alives) lapse
            r = aioredis.Redis.from_url(settings.resolved_redis_url)
            try:
                prefix = f"mall:{settings.queue_name}"
                long_ago = int(time.time() * 1000) - room.CONNECTION_TTL_MS - 1000
                for n in range(2):
                    assert await room.admit(r, prefix, p.id, user, f"dead-{n}", 2, now_ms=long_ago)
            finally:
                await r.aclose()
            assert (await socket_answer(base1, path, cookie=c1.cookie_header, origin=origin)).messages
        finally:
            await c1.aclose()
            await c2.aclose()


@pytest.mark.slow
async def test_refused_bids_are_limited_per_user_and_room(world: World, settings: Settings) -> None:
    xs, p = await suppliers_and_auction(world, "b", "出价供应商")
    other = await publish(world, "auction", xs, decrement="100")
    async with served(settings, bid_refusals_per_minute=3) as app, serve(app) as base:
        b1 = await caller(base, world, "b1")
        b2 = await caller(base, world, "b2")
        try:
            bids = f"/api/procedures/{p.id}/bids"
            for _ in range(3):
                r = await b1.request("POST", bids, json={"amount": "60000.01"})  # above the ceiling
                assert r.status_code == 422 and r.json()["code"] == "above_ceiling", r.text
            for amount in ("60000.01", "59000.00"):  # then every bid, refused or not, for the minute
                r = await b1.request("POST", bids, json={"amount": amount})
                assert r.status_code == 429, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
                assert (
                    r.json()["code"] == "too_many_refused_bids"
                    and "\u4e00" <= r.json()["detail"][0] <= "\u9fff"
                )
            assert await refused_rows(world, p.id, xs[0].org_id) == 3  # nothing more was logged
            # the room script's endpoint and the form say the same
            await b1.get(f"/procedures/{p.id}")
            r = await b1.form(
                f"/procedures/{p.id}/bid.json", {"amount": "60000.01"}, accept="application/json"
            )
            assert r.status_code == 429 and r.json()["code"] == "too_many_refused_bids", r.text
            r = await b1.form(f"/procedures/{p.id}/bid", {"amount": "60000.01"})
            assert r.status_code == 303
            assert "出价被拒绝次数过多" in (await b1.get(f"/procedures/{p.id}")).text
            assert await refused_rows(world, p.id, xs[0].org_id) == 3
            # another supplier, and the same supplier in another room, are not affected
            r = await b2.request("POST", bids, json={"amount": "60000.01"})
            assert r.status_code == 422, r.text
            r = await b1.request("POST", f"/api/procedures/{other.id}/bids", json={"amount": "60000.01"})
            assert r.status_code == 422, r.text

            # many refused bids at once: still no more than the limit is written
            answers = await asyncio.gather(
                *(
                    b2.request("POST", f"/api/procedures/{other.id}/bids", json={"amount": "70000.00"})
                    for _ in range(12)
                )
            )
            codes = sorted(a.status_code for a in answers)
            assert codes == [422] * 3 + [429] * 9, codes
            assert await refused_rows(world, other.id, xs[1].org_id) == 3
        finally:
            await b1.aclose()
            await b2.aclose()


@pytest.mark.slow
async def test_exempt_clients_are_not_limited(world: World, settings: Settings) -> None:
    xs, p = await suppliers_and_auction(world, "e", "豁免供应商")
    async with (
        served(settings, bid_refusals_per_minute=2, rate_limit_exempt="127.0.0.0/8,::1") as app,
        serve(app) as base,
    ):
        e1 = await caller(base, world, "e1")
        try:
            for _ in range(6):
                r = await e1.request("POST", f"/api/procedures/{p.id}/bids", json={"amount": "60000.01"})
                assert r.status_code == 422, r.text
        finally:
            await e1.aclose()
    assert await refused_rows(world, p.id, xs[0].org_id) == 6


async def room_gauge(base: str) -> float:
    """`mall_room_connections` as /metrics shows it to a loopback caller."""
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{base}/metrics")
    assert r.status_code == 200, r.status_code
    [line] = [x for x in r.text.splitlines() if x.startswith("mall_room_connections ")]
    return float(line.split()[1])


async def test_metrics_count_the_open_room_connections(app: Any, world: World, settings: Settings) -> None:
    async with room_of_a_served_app(app, world, "g", "观察供应商") as (base, path, who):
        before = await room_gauge(base)
        async with open_socket(base, path, cookie=who.cookie_header, origin=settings.public_base_url) as s:
            assert "snapshot" in str(await s.recv())
            assert await room_gauge(base) == before + 1
        deadline = time.monotonic() + 30  # the server notices the close after the client has gone
        while (now := await room_gauge(base)) != before:
            assert time.monotonic() < deadline, f"{now} open connections, expected {before}"
            await asyncio.sleep(0.05)
        # a refused socket (not logged in) is never counted
        await socket_answer(base, path, origin=settings.public_base_url)
        assert await room_gauge(base) == before
