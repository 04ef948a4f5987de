"""The live auction room: a Redis lock per room in front of the database, and events to watchers.

Bids into one room are serialized by a Redis lock (SET NX PX) that carries a fencing token (INCR of
the room's fence counter). The token goes into the database's conditional UPDATE
(`… WHERE offer_seq = :seen AND fence < :token`), so a holder whose lock expired while it stalled
can never commit over a newer holder, and a Redis restart (fence counter reset) is harmless: the
database still refuses any bid that was not made against the state it read. Redis only keeps the
room fast; the database decides.

After a bid commits, an event goes to the channel `room:<id>` (Redis pub/sub, so every web process's
WebSocket clients get it): the version (the procedure's sequence number), the lowest price, the end
time, the number of bidders and each anonymous label's rank — never a name, never another bid.
Each event is read after its commit and carries the room's whole public state, so a version
superseded before its event went out is never sent: a client applies any newer version as it is,
and gets a fresh snapshot when it reconnects.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select

from bidding.models import Offer, Participant, Procedure
from mall.clock import SHANGHAI, rfc3339
from mall.money import money_str

LOCK_TTL_MS = 3000
LOCK_WAIT_SECONDS = 10.0
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


_RAISE_TO = """
local v = tonumber(redis.call('get', KEYS[1]) or '0')
if v < tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1]) end
return 1
"""


async def raise_fence(redis: Any, prefix: str, procedure_id: uuid.UUID, at_least: int) -> None:
    """After a Redis restart the fence counter starts again from 1: lift it above what the database saw."""
    _, fence_key = _keys(prefix, procedure_id)
    await redis.eval(_RAISE_TO, 1, fence_key, str(at_least))


_local: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()


def local_lock(procedure_id: uuid.UUID) -> asyncio.Lock:
    """The room's lock within this process: bidders queue here, so only one of them at a time polls
    the Redis lock (many pollers would spend the CPU the holder needs)."""
    lock = _local.get(procedure_id)
    if lock is None:
        lock = asyncio.Lock()
        _local[procedure_id] = lock
    return lock


class RoomBusy(Exception):
    """The room lock could not be taken in time."""


def _keys(prefix: str, procedure_id: uuid.UUID) -> tuple[str, str]:
    # one hash tag per room: both keys live on the same Redis Cluster shard
    tag = f"{{room:{procedure_id}}}"
    return f"{prefix}:{tag}:lock", f"{prefix}:{tag}:fence"


@asynccontextmanager
async def room_lock(redis: Any, prefix: str, procedure_id: uuid.UUID) -> AsyncIterator[int]:
    """Hold the room's lock; yields the fencing token (strictly increasing per room)."""
    lock_key, fence_key = _keys(prefix, procedure_id)
    owner = secrets.token_hex(8)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.001
    while not await redis.set(lock_key, owner, nx=True, px=LOCK_TTL_MS):
        if time.monotonic() > deadline:
            raise RoomBusy(str(procedure_id))
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.005)
    try:
        token = int(await redis.incr(fence_key))
        yield token
    finally:
        await redis.eval(_RELEASE, 1, lock_key, owner)


async def snapshot(session: Any, p: Procedure, viewer_org_id: uuid.UUID | None) -> dict[str, Any]:
    """The room as it is now, for a client that connects (or re-syncs after a gap)."""
    labels = {
        part.supplier_org_id: part.label_no
        for part in (
            await session.execute(select(Participant).where(Participant.procedure_id == p.id))
        ).scalars()
    }
    ranks = await label_ranks(session, p.id, labels)
    mine = labels.get(viewer_org_id) if viewer_org_id else None
    own: list[dict[str, Any]] = []
    if viewer_org_id is not None:
        rows = await session.execute(
            select(Offer)
            .where(Offer.procedure_id == p.id, Offer.supplier_org_id == viewer_org_id)
            .order_by(Offer.at)
        )
        own = [
            {
                "amount": None if o.amount is None else money_str(o.amount),
                "at": rfc3339(o.at),
                "at_local": o.at.astimezone(SHANGHAI).strftime("%H:%M:%S"),  # shown as China time
                "status": o.status,
                "reason": o.reason,
            }
            for o in rows.scalars()
        ]
    return {
        "type": "snapshot",
        "version": p.offer_seq,
        "status": p.status,
        "lowest": None if p.lowest_amount is None else money_str(p.lowest_amount),
        "ceiling": money_str(p.ceiling),
        "ends_at": rfc3339(p.ends_at),
        "extensions": p.extensions,
        "bidders": len(ranks),
        "ranks": ranks,
        "my_label": mine,
        "my_rank": ranks.get(str(mine)) if mine else None,
        "my_bids": own,
    }


async def label_ranks(session: Any, procedure_id: uuid.UUID, labels: dict[uuid.UUID, int]) -> dict[str, int]:
    """Anonymous label → rank of its best bid (lower first; equal amounts: earlier acceptance).
    A supplier's accepted bids only ever go down, so its best bid is also its latest (max seq)."""
    rows = await session.execute(
        select(Offer.supplier_org_id, func.min(Offer.amount), func.max(Offer.seq))
        .where(Offer.procedure_id == procedure_id, Offer.status == "accepted")
        .group_by(Offer.supplier_org_id)
    )
    best = sorted(rows.all(), key=lambda r: (r[1], r[2]))
    return {str(labels.get(supplier_id, 0)): n for n, (supplier_id, _, _) in enumerate(best, start=1)}


def event_of(snap: dict[str, Any]) -> dict[str, Any]:
    """The broadcast form of a snapshot: nothing personal (no own bids, no own label)."""
    return {
        "type": "bid",
        "version": snap["version"],
        "status": snap["status"],
        "lowest": snap["lowest"],
        "ends_at": snap["ends_at"],
        "extensions": snap["extensions"],
        "bidders": snap["bidders"],
        "ranks": snap["ranks"],
    }


def channel_of(procedure_id: uuid.UUID) -> str:
    return f"room:{procedure_id}"
