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

Only auctions have a room. An inquiry's quotes are sealed: its version would count them.

The room's limits live in Redis too, shared by every web process: the connections one user holds
to one room (a sorted set of connection ids scored by when each lapses, kept alive while the socket
is open, so a killed process frees its places within `CONNECTION_TTL_MS`), and the refused bids of
a user in a room over the last minute (answered 429 before the bid takes the room lock; the
database's own count, under the procedure's row lock, is the exact limit behind it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from redis.exceptions import RedisError
from sqlalchemy import func, select

from bidding import offers, rules
from bidding.models import Offer, OfferStatus, Participant, Procedure, ProcedureKind
from mall.core import netaddr
from mall.core.clock import SHANGHAI, rfc3339
from mall.core.errors import Unavailable
from mall.core.money import money_str

log = logging.getLogger("mall.rooms")

LOCK_TTL_MS = 3000
LOCK_WAIT_SECONDS = 10.0
# A holder that is alive renews its lock every third of its lifetime: a bid that waits for the
# database (SQLite's one writer, a migration's lock) keeps the room instead of losing it to the next
# bidder and failing on its fence. A holder that stalls (a frozen process) stops renewing; its lock
# then expires and the fence keeps it from committing later.
LOCK_RENEW_SECONDS = LOCK_TTL_MS / 3000
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
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
    renewing = asyncio.create_task(_renew(redis, lock_key, owner))
    try:
        token = int(await redis.incr(fence_key))
        yield token
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await redis.eval(_RELEASE, 1, lock_key, owner)


async def _renew(redis: Any, lock_key: str, owner: str) -> None:
    """Extend the lock while its holder runs; stop when it is no longer ours (or Redis is gone: the
    fence still protects the room)."""
    try:
        while True:
            await asyncio.sleep(LOCK_RENEW_SECONDS)
            if not await redis.eval(_RENEW, 1, lock_key, owner, str(LOCK_TTL_MS)):
                return
    except (RedisError, OSError):
        return


async def snapshot(session: Any, p: Procedure, viewer_org_id: uuid.UUID | None) -> dict[str, Any]:
    """The auction room as it is now, for a client that connects (or re-syncs after a gap)."""
    if p.kind != ProcedureKind.AUCTION:
        raise ValueError("only an auction has a room: an inquiry's quotes are sealed")
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
    """Anonymous label → rank of the supplier's current bid: its latest accepted one (a later bid
    supersedes the earlier). Lower first; equal amounts: earlier acceptance. The rules make a
    supplier's accepted bids strictly decrease, so this is also `rules.ranking`'s best bid."""
    latest = (
        select(Offer.supplier_org_id, func.max(Offer.seq).label("seq"))
        .where(
            Offer.procedure_id == procedure_id, Offer.status == OfferStatus.ACCEPTED, Offer.seq.is_not(None)
        )
        .group_by(Offer.supplier_org_id)
        .subquery()
    )
    rows = await session.execute(
        select(Offer.supplier_org_id, Offer.amount, Offer.seq)
        .join(latest, (latest.c.supplier_org_id == Offer.supplier_org_id) & (latest.c.seq == Offer.seq))
        .where(Offer.procedure_id == procedure_id)
    )
    current = sorted(rows.all(), key=lambda r: (r[1], r[2]))
    return {str(labels.get(supplier_id, 0)): n for n, (supplier_id, _, _) in enumerate(current, start=1)}


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


# ---------------------------------------------------------------- who may connect


def origin_allowed(origin: str | None, base_url: str) -> bool:
    """A browser's WebSocket handshake carries the page's Origin; only pages of the mall itself (the
    public base URL: scheme, host and port) may open the room with the user's cookie, so another
    site cannot (cross-site WebSocket hijacking). No Origin at all is not a browser: such a client
    could write any Origin it liked, so refusing it would protect nothing."""
    if origin is None:
        return True
    return _origin_of(origin) == _origin_of(base_url) != ("", "", 0)


def _origin_of(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return ("", "", 0)
    if not parts.scheme or not parts.hostname:
        return ("", "", 0)
    return (parts.scheme.lower(), parts.hostname.lower(), port)


CONNECTION_TTL_MS = 60_000  # a connection's place lapses unless kept alive this often (a killed process)
KEEPALIVE_SECONDS = CONNECTION_TTL_MS / 1000 / 3

_ADMIT = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('zadd', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), ARGV[4])
redis.call('pexpire', KEYS[1], ARGV[3])
return 1
"""


def connections_key(prefix: str, procedure_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"{prefix}:{{room:{procedure_id}}}:connections:{user_id}"


def _now_ms() -> int:
    # wall clock, not the mall's clock: a place lapses in real time, like the process that held it
    return int(time.time() * 1000)


async def admit(
    redis: Any,
    prefix: str,
    procedure_id: uuid.UUID,
    user_id: uuid.UUID,
    connection_id: str,
    limit: int,
    *,
    now_ms: int | None = None,
) -> bool:
    """Take one of the user's `limit` places in the room (lapsed places are dropped first)."""
    now = _now_ms() if now_ms is None else now_ms
    key = connections_key(prefix, procedure_id, user_id)
    return bool(await redis.eval(_ADMIT, 1, key, str(now), str(limit), str(CONNECTION_TTL_MS), connection_id))


async def keep_alive(
    redis: Any, prefix: str, procedure_id: uuid.UUID, user_id: uuid.UUID, connection_id: str
) -> None:
    key = connections_key(prefix, procedure_id, user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {connection_id: _now_ms() + CONNECTION_TTL_MS})
        pipe.pexpire(key, CONNECTION_TTL_MS)
        await pipe.execute()


async def leave(
    redis: Any, prefix: str, procedure_id: uuid.UUID, user_id: uuid.UUID, connection_id: str
) -> None:
    await redis.zrem(connections_key(prefix, procedure_id, user_id), connection_id)


async def connections(redis: Any, prefix: str, procedure_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """The user's live connections to the room."""
    return int(await redis.zcount(connections_key(prefix, procedure_id, user_id), f"({_now_ms()}", "+inf"))


# ---------------------------------------------------------------- refused bids

REFUSAL_WINDOW_MS = 60_000


def refusals_key(prefix: str, procedure_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"{prefix}:{{room:{procedure_id}}}:refused:{user_id}"


async def refusals(redis: Any, prefix: str, procedure_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """The user's refused bids in the room over the last minute, as far as Redis knows."""
    key = refusals_key(prefix, procedure_id, user_id)
    return int(await redis.zcount(key, f"({_now_ms() - REFUSAL_WINDOW_MS}", "+inf"))


async def note_refusal(redis: Any, prefix: str, procedure_id: uuid.UUID, user_id: uuid.UUID) -> None:
    key = refusals_key(prefix, procedure_id, user_id)
    now = _now_ms()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {secrets.token_hex(8): now})
        pipe.zremrangebyscore(key, "-inf", now - REFUSAL_WINDOW_MS)
        pipe.pexpire(key, REFUSAL_WINDOW_MS)
        await pipe.execute()


# ---------------------------------------------------------------- a bid through the room


def limit_exempt(request: Request[Any, Any, Any], settings: Any) -> bool:
    """Whether the caller's address is exempt from rate limits (the benchmarks' own loopback)."""
    return netaddr.exempt(
        netaddr.client_ip(request.scope, settings.trusted_proxies), settings.rate_limit_exempt
    )


async def bid_from(
    request: Request[Any, Any, Any], db: Any, settings: Any, who: Any, procedure_id: uuid.UUID, amount: str
) -> offers.BidResult:
    """A bid a request makes (the API, the room's form or its script), through the room; exempt from
    the refused-bid limit when the caller's address is."""
    exempt = limit_exempt(request, settings)
    return await room_bid(request.app, db, settings, who, procedure_id, amount, exempt=exempt)


async def room_bid(
    app: Any, db: Any, settings: Any, who: Any, procedure_id: uuid.UUID, amount: str, *, exempt: bool = False
) -> offers.BidResult:
    """A bid under the room's Redis lock (fencing token to the database), then the event to watchers.
    Without Redis the database alone still arbitrates, and nobody is told live. A user whose bids in
    this room were refused `bid_refusals_per_minute` times in the last minute gets 429 before taking
    the lock (unless `exempt`), so a flood of bad bids neither slows the room nor fills its log."""
    amount = offers.typed_amount(amount)  # text the bid log cannot keep is not a bid at all
    prefix = f"mall:{settings.queue_name}"
    limit = None if exempt else settings.bid_refusals_per_minute
    redis = app.state.room_redis
    if limit is not None:
        try:
            if await refusals(redis, prefix, procedure_id, who.user_id) >= limit:
                raise offers.too_many_refusals()
        except (RedisError, OSError):
            pass  # the database still counts, under the procedure's row lock
    try:
        async with local_lock(procedure_id):  # one contender per process for the Redis lock
            result = await _room_bid_locked(app, db, who, procedure_id, amount, prefix, limit)
    except rules.BidRefused:
        if limit is not None:
            with contextlib.suppress(RedisError, OSError):
                await note_refusal(redis, prefix, procedure_id, who.user_id)
        raise
    # Outside the lock: the next bidder goes on while this event goes out. Events carry the room's
    # version and the whole public state; a client keeps the newest, so their order does not matter.
    await publish_room(app, db, procedure_id)
    return result


async def _room_bid_locked(
    app: Any, db: Any, who: Any, procedure_id: uuid.UUID, amount: str, prefix: str, limit: int | None
) -> offers.BidResult:
    try:
        for attempt in range(3):
            try:
                async with room_lock(app.state.room_redis, prefix, procedure_id) as token:
                    result = await offers.bid(db, who, procedure_id, amount, fence=token, max_refusals=limit)
                break
            except offers.StaleFence as stale:
                if attempt == 2:
                    raise Unavailable("竞价室繁忙，请稍后重试", code="room_busy") from None
                await raise_fence(app.state.room_redis, prefix, procedure_id, stale.current)
    except RoomBusy:
        raise Unavailable("竞价室繁忙，请稍后重试", code="room_busy") from None
    except (RedisError, OSError):
        log.warning("room lock unavailable for %s; the database arbitrates alone", procedure_id)
        result = await offers.bid(db, who, procedure_id, amount, max_refusals=limit)
    return result


async def publish_room(app: Any, db: Any, procedure_id: uuid.UUID) -> None:
    try:
        async with db.read() as s:
            p = await s.get(Procedure, procedure_id)
            if p is None or p.kind != ProcedureKind.AUCTION:
                return  # only an auction has a room; an inquiry's version would count its quotes
            snap = await snapshot(s, p, None)
        # published_at: when this process handed the event to the channel (server wall clock)
        event = {**event_of(snap), "published_at": rfc3339(datetime.now(UTC))}
        await app.state.channels.wait_published(event, channel_of(procedure_id))
    except Exception as exc:  # watchers re-sync on their next event or reconnect
        log.warning("room event for %s not published: %s", procedure_id, exc)
