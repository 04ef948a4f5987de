"""Auction room benchmark: accepted bids per second in one room over HTTP, bid latency, and the time
from a bid to its event on the watchers' WebSockets.

A throw-away mall (database + Redis) with 200 supplier organizations, a buyer and one reverse
auction inviting them all; `mall serve` with two web processes (`MALL_WEB_WORKERS=2`) and a worker.
100 WebSocket clients watch the room (spread over the two processes by the kernel's accept).
Then, for 10, 50 and 200 concurrent bidders (quick: 10 and 50), each bidder sends bids in a closed
loop through `POST /api/procedures/{id}/bids`, always a step below its own previous bid (the
default rule), for a fixed time. Measured: accepted bids/s, refusals, bid latency p50/p99, and for
every accepted bid the delay from sending it to each watcher receiving its event (p50/p99, which
includes the wait for the room lock behind the other bidders), and apart from it the fan-out alone:
from the moment the web process published the event after commit (`published_at`, server wall
clock) to each watcher's receipt. The watchers run in a process of their own.
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

from bench._harness import BENCH_PASSWORD, Stack, base_args, build_world, emit, latency_summary, log, stage

CEILING = 10_000_000  # yuan: room for many steps
WATCHERS = 100
STEP = 1  # yuan


async def make_auction(
    database_url: str, buyer: Any, supplier_ids: list[uuid.UUID], minutes: int
) -> uuid.UUID:
    from _harness import bench_db
    from sqlalchemy import select

    from bidding import publish
    from mall.core import auth, clock
    from mall.core.models import User
    from mall.core.settings import Settings
    from workers import queues

    queues.register_topics()  # this process is a root too; its enqueues do nothing (no queue configured)
    db = bench_db(database_url, pool_size=2)
    try:
        async with db.read() as s:
            user = (await s.execute(select(User).where(User.username == buyer.username))).scalar_one()
            who = auth.principal_of(user)
        now = clock.now()
        p = await publish.create(
            db,
            who,
            publish.ProcedureIn(
                kind="auction",
                title="压测反向竞价项目",
                budget_line_id=buyer.line_id,
                ceiling=f"{CEILING}.00",
                starts_at=now,
                ends_at=now + timedelta(minutes=minutes),
                items=[publish.ItemIn("A02010105", "台式计算机", "1", "台", "")],
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
    received: list[tuple[int, float, float | None]],
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> int:
    """One WebSocket client: every event as (version, wall-clock receipt, server publish time)."""
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
            at = time.time()
            ev = json.loads(msg)
            published = wall_of(ev["published_at"]) if ev.get("published_at") else None
            received.append((int(ev["version"]), at, published))
            n += 1
    return n


async def _watchers(url: str, cookie: str, n: int, ready_path: str, stop_path: str, out_path: str) -> None:
    received: list[tuple[int, float, float | None]] = []
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(watch(url, cookie, received, r, stop)) for r in readies]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    await asyncio.to_thread(Path(ready_path).touch)
    # the bench process says "stop" with a file (there is nothing else shared between the processes)
    while not await asyncio.to_thread(Path(stop_path).exists):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(Path(out_path).write_text, json.dumps(received))


def watcher_process(url: str, cookie: str, n: int, ready_path: str, stop_path: str, out_path: str) -> None:
    """The watchers run in a process of their own, so that their receipt times are not delayed by
    the bidders' event loop (both share the machine's cores with the server, as clients would not)."""
    asyncio.run(_watchers(url, cookie, n, ready_path, stop_path, out_path))


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
                wall = time.time()
                r = await client.post(
                    f"/api/procedures/{procedure_id}/bids", json={"amount": f"{amount}.00"}, headers=h
                )
                dt = time.perf_counter() - t0
                lat.append(dt)
                if r.status_code == 201:
                    accepted += 1
                    start_price[username] = amount
                    sent_at[int(r.json()["seq"])] = wall
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
        import multiprocessing
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="auction-watchers-"))
        ready, stop_file, out = tmp / "ready", tmp / "stop", tmp / "received.json"
        url = f"ws://127.0.0.1:{st.port}/procedures/{pid}/room"
        watchers = multiprocessing.get_context("spawn").Process(
            target=watcher_process, args=(url, cookie, WATCHERS, str(ready), str(stop_file), str(out))
        )
        with stage(f"{WATCHERS} watchers connect (in a process of their own)"):
            watchers.start()
            while not ready.exists():
                if not watchers.is_alive():
                    raise SystemExit("the watcher process died")
                await asyncio.sleep(0.1)
        prices = {s.username: CEILING - i for i, s in enumerate(world.suppliers)}
        results = []
        phases: list[dict[int, float]] = []
        for n in levels:
            bidders = [(s.username, toks[s.username]) for s in world.suppliers[:n]]
            with stage(f"{n} bidders for {seconds:.0f}s"):
                res, sent = await phase(base, pid, bidders, seconds, prices)
                await asyncio.sleep(1.0)
            results.append(res)
            phases.append(sent)
        await asyncio.sleep(5.0)  # let the last events reach every watcher before stopping them
        stop_file.touch()
        await asyncio.to_thread(watchers.join, 60)
        received = [tuple(r) for r in json.loads(out.read_text())]
        all_sent: dict[int, float] = {}
        for res, sent in zip(results, phases, strict=True):
            mine = [r for r in received if r[0] in sent]
            # From the bidder's send: includes the wait for the room lock behind the other bidders.
            delays = [at - sent[v] for v, at, _ in mine]
            res["delivery_to_watchers"] = {**latency_summary(delays), "events": len(delays)}
            # From the moment the web process published the event (after commit) to each watcher:
            # the channel and WebSocket fan-out alone, without queueing for the lock.
            fanout = [at - pub for _, at, pub in mine if pub is not None]
            res["fanout_after_publish"] = {**latency_summary(fanout), "events": len(fanout)}
            seen: dict[int, int] = {}
            for v, _, _ in mine:
                seen[v] = seen.get(v, 0) + 1
            # A version superseded before its event went out is never sent (each event is the whole
            # room state read after its commit): skipped, by design. A version that was sent must
            # reach every watcher.
            res["versions_skipped"] = sum(1 for v in sent if v not in seen)
            res["sent_versions_missed_by_a_watcher"] = sum(1 for v in seen if seen[v] < WATCHERS)
            all_sent.update(sent)
            log(json.dumps(res, ensure_ascii=False))
        check = await verify(st.resolved_database_url, pid, set(all_sent))
        return {"db": db_kind, "levels": results, "check": check, "memory": st.memory()}


async def verify(database_url: str, pid: uuid.UUID, acknowledged: set[int]) -> dict[str, Any]:
    from _harness import bench_db
    from sqlalchemy import select

    from bidding.models import Offer

    db = bench_db(database_url, pool_size=1)
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
    # The 100 watchers share one buyer's session and each bidder bids in a closed loop: with the room's
    # per-user connection cap and refused-bid limit on, the figures would measure the limits.
    env = {
        "MALL_WEB_WORKERS": "2",
        "MALL_RATE_LIMIT_EXEMPT": "127.0.0.0/8,::1",
        "MALL_ROOM_CONNECTIONS_PER_USER": str(WATCHERS),
    }
    with Stack(args.db, "auction", env_overrides=env) as st:
        summary = asyncio.run(run(st, args.db, args.quick))
    emit({"benchmark": "auction", **summary})


if __name__ == "__main__":
    main()
