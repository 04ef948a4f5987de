"""Auction room benchmark: accepted bids per second in one room over HTTP, bid latency, and the time
from a bid to its event on the watchers' WebSockets.

A throw-away mall (database + Redis) with 200 supplier organizations, a buyer and one reverse
auction inviting them all; `mall serve` with two web processes (`MALL_WEB_WORKERS=2`) and a worker.
100 WebSocket clients watch the room (spread over the two processes by the kernel's accept).
Then, for 10, 50 and 200 concurrent bidders (quick: 10 and 50), each bidder sends bids in a closed
loop through `POST /api/procedures/{id}/bids`, always a step below its own previous bid (the
default rule), for a fixed time. Measured: accepted bids/s, refusals, bid latency p50/p99, and for
every accepted bid the delay from sending it to each watcher receiving its event (p50/p99).
Afterwards the room's log is checked: accepted sequence numbers 1..N without gaps, every
acknowledged bid in the database.

Prints a JSON summary as the last line. Usage: python bench/auction.py [--quick] [--db sqlite|postgres]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    BENCH_PASSWORD,
    Stack,
    base_args,
    build_world,
    emit,
    latency_summary,
    log,
    stage,
)

CEILING = 10_000_000  # yuan: room for many steps
STEP = 1  # yuan


async def make_auction(
    database_url: str, buyer: Any, supplier_ids: list[uuid.UUID], minutes: int
) -> uuid.UUID:
    from sqlalchemy import select

    from bidding import service
    from mall import auth, clock
    from mall.db import Database
    from mall.models import User
    from mall.settings import Settings

    db = Database(database_url, pool_size=2)
    try:
        async with db.read() as s:
            user = (await s.execute(select(User).where(User.username == buyer.username))).scalar_one()
            who = auth.principal_of(user)
        now = clock.now()
        p = await service.create(
            db,
            who,
            service.ProcedureDraft(
                kind="auction",
                title="压测反向竞价项目",
                budget_line_id=buyer.line_id,
                ceiling=f"{CEILING}.00",
                starts_at=now,
                ends_at=now + timedelta(minutes=minutes),
                items=[service.ItemDraft("A02010105", "台式计算机", "", "1", "台")],
                decrement=str(STEP),
                invited=supplier_ids,
            ),
            open_tender_threshold=Settings().open_tender_threshold * 100,
            region_code="410100",
        )
        return p.id
    finally:
        await db.dispose()


async def session_cookie(base: str) -> dict[str, str]:
    """A logged-in page session (the room's WebSocket authenticates by the session cookie)."""
    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False) as c:
        r = await c.get("/login")
        token = r.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
        r = await c.post(
            "/login", data={"_csrf_token": token, "username": "bench_buyer1", "password": BENCH_PASSWORD}
        )
        assert r.status_code in (302, 303), r.text[:300]
        return dict(c.cookies)


def wall_of(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


async def watch(
    url: str,
    cookie: str,
    received: dict[int, list[float]],
    fanout: list[float],
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> int:
    import websockets

    n = 0
    async with websockets.connect(url, additional_headers={"Cookie": cookie}, max_size=2**20) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "snapshot"
        ready.set()
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            ev = json.loads(msg)
            received.setdefault(int(ev["version"]), []).append(time.perf_counter())
            if ev.get("published_at"):  # server wall clock when the event left the web process
                fanout.append(time.time() - wall_of(ev["published_at"]))
            n += 1
    return n


async def tokens(base: str, usernames: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        sem = asyncio.Semaphore(4)

        async def one(u: str) -> None:
            async with sem:
                r = await c.post("/api/auth/token", json={"username": u, "password": BENCH_PASSWORD})
                assert r.status_code in (200, 201), r.text
                out[u] = r.json()["token"]

        await asyncio.gather(*(one(u) for u in usernames))
    return out


async def phase(
    base: str,
    procedure_id: uuid.UUID,
    bidders: list[tuple[str, str]],
    seconds: float,
    start_price: dict[str, int],
) -> tuple[dict[str, Any], dict[int, float]]:
    sent_at: dict[int, float] = {}
    lat: list[float] = []
    accepted = refused = errors = 0
    samples: list[str] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=len(bidders) + 10, max_keepalive_connections=len(bidders) + 10)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def loop(username: str, token: str) -> None:
            nonlocal accepted, refused, errors
            h = {"Authorization": f"Bearer {token}"}
            while time.monotonic() < deadline:
                amount = start_price[username] - STEP
                t0 = time.perf_counter()
                r = await client.post(
                    f"/api/procedures/{procedure_id}/bids", json={"amount": f"{amount}.00"}, headers=h
                )
                dt = time.perf_counter() - t0
                lat.append(dt)
                if r.status_code == 201:
                    accepted += 1
                    start_price[username] = amount
                    sent_at[int(r.json()["seq"])] = t0
                elif r.status_code == 422:
                    refused += 1
                    start_price[username] = amount  # try lower next time
                else:
                    errors += 1
                    if len(samples) < 5:
                        samples.append(f"{r.status_code} {r.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(loop(u, t) for u, t in bidders))
        wall = time.perf_counter() - t0
    for s in samples:
        log(f"  ! {s}")
    return {
        "bidders": len(bidders),
        "seconds": round(wall, 2),
        "accepted": accepted,
        "refused": refused,
        "errors": errors,
        "accepted_per_s": round(accepted / wall, 1),
        "bid": latency_summary(lat),
    }, sent_at


async def run(st: Stack, db_kind: str, quick: bool) -> dict[str, Any]:
    levels = [10, 50] if quick else [10, 50, 200]
    seconds = 5.0 if quick else 15.0
    n_suppliers = max(levels)
    if True:  # (the Stack is entered by main, outside the event loop)
        with stage(f"world: 1 buyer, {n_suppliers} suppliers"):
            world = await build_world(
                st.resolved_database_url,
                buyers=1,
                shared_users=0,
                suppliers=n_suppliers,
                listings_per_supplier=0,
            )
            pid = await make_auction(
                st.resolved_database_url, world.buyers[0], [s.org_id for s in world.suppliers], minutes=120
            )
        await asyncio.to_thread(st.start_services)
        base = f"http://127.0.0.1:{st.port}"
        toks = await tokens(base, [s.username for s in world.suppliers])
        cookies = await session_cookie(base)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        received: dict[int, list[float]] = {}
        fanout: list[float] = []
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in range(100)]
        url = f"ws://127.0.0.1:{st.port}/procedures/{pid}/room"
        with stage("100 watchers connect"):
            watchers = [asyncio.create_task(watch(url, cookie, received, fanout, r, stop)) for r in readies]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        prices = {s.username: CEILING - i for i, s in enumerate(world.suppliers)}
        results = []
        all_sent: dict[int, float] = {}
        for n in levels:
            bidders = [(s.username, toks[s.username]) for s in world.suppliers[:n]]
            fanout.clear()
            with stage(f"{n} bidders for {seconds:.0f}s"):
                res, sent = await phase(base, pid, bidders, seconds, prices)
            await asyncio.sleep(1.0)  # let the last events arrive
            delays = [t - sent[v] for v, ts in received.items() if v in sent for t in ts]
            # From the bidder's send: includes the wait for the room lock behind the other bidders.
            res["delivery_to_watchers"] = {**latency_summary(delays), "events": len(delays)}
            # From the moment the web process published the event (after commit) to each watcher:
            # the channel and WebSocket fan-out alone, without queueing for the lock.
            res["fanout_after_publish"] = {**latency_summary(list(fanout)), "events": len(fanout)}
            missing = sum(1 for v in sent if len(received.get(v, [])) < 100)
            res["events_not_seen_by_every_watcher"] = missing
            results.append(res)
            all_sent.update(sent)
            log(json.dumps(res, ensure_ascii=False))
        stop.set()
        await asyncio.gather(*watchers, return_exceptions=True)
        check = await verify(st.resolved_database_url, pid, set(all_sent))
        return {"db": db_kind, "levels": results, "check": check, "memory": st.memory()}


async def verify(database_url: str, pid: uuid.UUID, acknowledged: set[int]) -> dict[str, Any]:
    from sqlalchemy import select

    from bidding.models import Offer
    from mall.db import Database

    db = Database(database_url, pool_size=1)
    try:
        async with db.read() as s:
            seqs = list(
                (
                    await s.execute(
                        select(Offer.seq)
                        .where(Offer.procedure_id == pid, Offer.status == "accepted")
                        .order_by(Offer.seq)
                    )
                ).scalars()
            )
    finally:
        await db.dispose()
    return {
        "accepted_in_db": len(seqs),
        "gap_free": seqs == list(range(1, len(seqs) + 1)),
        "every_acknowledged_bid_in_db": acknowledged <= set(seqs),
    }


def main() -> None:
    args = base_args("Auction room: accepted bids/s, bid latency, bid-to-WebSocket delivery").parse_args()
    with Stack(args.db, "auction", env_overrides={"MALL_WEB_WORKERS": "2"}) as st:
        summary = asyncio.run(run(st, args.db, args.quick))
    emit({"benchmark": "auction", **summary})


if __name__ == "__main__":
    main()
