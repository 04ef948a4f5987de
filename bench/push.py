"""Push throughput: records per second POSTed to a local receiver, and publish → receiver latency.

    .venv/bin/python bench/push.py [--quick] [--db sqlite|postgres] [--keep]

The receiver is a raw asyncio HTTP/1.1 server (keep-alive) in a process of its own, so it costs the
deliverer as little as possible; it answers 200 to everything and writes what it got (path, arrival
time, headers, body) to a file when it stops. The benchmark checks every signature and the order
afterwards.

* **Drain**: N records are put into the ledger first, through the real path (staged in the outbox,
  published by `publish_pending`, in batches of 500); then a subscription with `from_seq=0` is
  delivered by calling the delivery job's function (`mall.ledger.push.deliver`) in this process until it has
  caught up. Reported: records/s, and the per-record cost (interval between consecutive arrivals at
  the receiver) p50/p99, and the POST round trip as logged (`duration_ms`) p50/p99.
* **Live**: the real `mall worker` runs; a second subscription starts at the head; records are
  staged one per transaction at a steady rate. The publisher job publishes them and kicks the
  delivery job. Reported: latency from the stage commit to the arrival at the receiver, p50/p99/max.

Human-readable lines first, the JSON summary as the last line of stdout. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ROOT, Stack, base_args, emit, free_port, latency_summary, r3, receiver_protocol, stage

QUICK = {"drain": 2000, "live_rate": 20, "live_seconds": 5.0}
FULL = {"drain": 10000, "live_rate": 50, "live_seconds": 20.0}


# ---------------------------------------------------------------- the receiver (its own process)


def run_receiver(port: int, out: str) -> None:
    got: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await loop.create_server(receiver_protocol(got), "127.0.0.1", port)
        print("ready", flush=True)
        await stop.wait()
        server.close()
        data = json.dumps(got, ensure_ascii=False)
        await asyncio.to_thread(Path(out).write_text, data)

    asyncio.run(main())


class ReceiverProcess:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.out = data_dir / "received.json"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--receiver", str(self.port), str(self.out)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"ready"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def collect(self) -> list[dict[str, Any]]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        data: list[dict[str, Any]] = json.loads(self.out.read_text())
        return data

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ---------------------------------------------------------------- the benchmark


def payload(i: int) -> dict[str, Any]:
    return {
        "kind": "deal",
        "amends": None,
        "mode": "supermarket",
        "order_no": f"BENCH-{i:08d}",
        "region_code": "410100",
        "deal_date": "2026-11-29",
        "buyer": {"name": "基准测试采购单位", "credit_code": "11410100MB0000001X"},
        "supplier": {
            "name": "基准测试供应商有限公司",
            "credit_code": "91410100MA0000002X",
            "address": "郑州市",
        },
        "total_amount": f"{1000 + i % 997}.00",
        "currency": "CNY",
        "lines": [
            {
                "item_name": "台式计算机",
                "brand": "联想",
                "spec_model": "启天M437",
                "category_code": "A02010105",
                "quantity": "2",
                "unit": "台",
                "unit_price": "4999.00",
                "amount": "9998.00",
            }
        ],
    }


def check_stream(got: list[dict[str, Any]], secret: str, first_seq: int) -> dict[str, Any]:
    from mall.ledger import push

    seqs = [json.loads(g["body"])["seq"] for g in got]
    bad_sig = sum(1 for g in got if g["sig"] != push.sign(secret, g["body"].encode("utf-8")))
    bad_headers = sum(
        1
        for g in got
        if g["seq"] != str(json.loads(g["body"])["seq"]) or g["key"] != json.loads(g["body"])["id"]
    )
    expected = list(range(first_seq, first_seq + len(set(seqs))))
    return {
        "received": len(got),
        "distinct": len(set(seqs)),
        "duplicates": len(seqs) - len(set(seqs)),
        "in_order_no_gaps": sorted(set(seqs)) == expected and seqs == sorted(seqs),
        "bad_signatures": bad_sig,
        "bad_headers": bad_headers,
    }


async def seed(db: Any, start: int, n: int) -> None:
    from mall.ledger import disclosure

    for lo in range(start, start + n, 500):
        async with db.write() as tx:
            for i in range(lo, min(lo + 500, start + n)):
                disclosure.stage(tx, payload(i))
        while await disclosure.publish_pending(db, limit=500):
            pass


async def make_owner(db: Any) -> Any:
    from mall.core import clock
    from mall.core.auth import Principal
    from mall.core.models import Organization

    org = Organization(
        id=uuid.uuid4(),
        kind="center",
        name="基准测试采购中心",
        credit_code="12410100MB0000003X",
        region_code="410100",
        created_at=clock.now(),
    )
    async with db.write() as tx:
        tx.session.add(org)
    return Principal(uuid.uuid4(), "bench", "bench", "center", org.id, org.name, org.credit_code)


async def drain_phase(
    db: Any, settings: Any, owner: Any, receiver: ReceiverProcess, n: int
) -> dict[str, Any]:
    from sqlalchemy import select

    from mall.ledger import push
    from mall.ledger.models import PushDelivery

    with stage(f"seeding {n} ledger records"):
        await seed(db, 0, n)
    sub, secret = await push.create(db, settings, owner, name="drain", url=receiver.url("/drain"), from_seq=0)
    t0 = time.perf_counter()
    delivered = 0
    with stage("draining the backlog to the receiver"):
        while True:
            run = await push.deliver(db, settings, sub.id)
            delivered += run.delivered
            if run.failed:
                raise RuntimeError(f"delivery failed: {run}")
            if not run.more:
                break
    elapsed = time.perf_counter() - t0
    await push.pause(db, owner, sub.id)  # the live phase has its own subscription
    async with db.read() as s:
        rtt = [
            float(x)
            for x in (
                await s.execute(
                    select(PushDelivery.duration_ms).where(PushDelivery.subscription_id == sub.id)
                )
            ).scalars()
        ]
    return {"sub": sub, "secret": secret, "delivered": delivered, "seconds": elapsed, "rtt_ms": rtt}


async def live_phase(
    db: Any, settings: Any, owner: Any, receiver: ReceiverProcess, start: int, rate: float, seconds: float
) -> dict[str, Any]:
    from mall.ledger import disclosure, push

    sub, secret = await push.create(db, settings, owner, name="live", url=receiver.url("/live"))
    committed: dict[str, float] = {}
    n = int(rate * seconds)
    t_next = time.perf_counter()
    with stage(f"live: {n} records at {rate}/s, published and pushed by the worker"):
        for i in range(start, start + n):
            async with db.write() as tx:
                disclosure.stage(tx, payload(i))
            committed[payload(i)["order_no"]] = time.time()
            t_next += 1 / rate
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
    return {"sub": sub, "secret": secret, "committed": committed}


async def wait_caught_up(db: Any, sub_id: uuid.UUID, within: float) -> bool:
    from mall.ledger import push
    from mall.ledger.models import PushSubscription

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with db.read() as s:
            sub = await s.get(PushSubscription, sub_id)
            head = await push.ledger_head(s)
            assert sub is not None
            if sub.cursor >= head and head > 0:
                # the ledger may still be catching up with the outbox
                from sqlalchemy import func, select

                from mall.core.models import Outbox

                pending = await s.scalar(select(func.count()).where(Outbox.status == "pending"))
                if not pending:
                    return True
        await asyncio.sleep(0.1)
    return False


async def main_async(args: Any, st: Stack) -> dict[str, Any]:
    from _harness import bench_db

    from workers import queues

    cfg = QUICK if args.quick else FULL
    settings = st.settings()
    queues.register_topics()  # enqueues do nothing until the queues are configured below
    db = bench_db(settings.resolved_database_url, pool_size=4)
    receiver = ReceiverProcess(st.data_dir)
    try:
        owner = await make_owner(db)
        drain = await drain_phase(db, settings, owner, receiver, int(cfg["drain"]))
        st.start_services()
        queues.configure(settings)  # staged records now enqueue the worker's publisher
        live = await live_phase(
            db,
            settings,
            owner,
            receiver,
            int(cfg["drain"]),
            float(cfg["live_rate"]),
            float(cfg["live_seconds"]),
        )
        caught_up = await wait_caught_up(db, live["sub"].id, 60)
        got = receiver.collect()
    finally:
        receiver.kill()
        await db.dispose()

    drain_got = [g for g in got if g["path"] == "/drain"]
    live_got = [g for g in got if g["path"] == "/live"]
    times = [g["t"] for g in drain_got]
    per_record = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    lat = [
        (g["t"] - live["committed"][json.loads(g["body"])["order_no"]]) * 1000
        for g in live_got
        if json.loads(g["body"])["order_no"] in live["committed"]
    ]
    drain_check = check_stream(drain_got, drain["secret"], 1)
    live_check = check_stream(live_got, live["secret"], int(cfg["drain"]) + 1)
    rps = drain["delivered"] / drain["seconds"] if drain["seconds"] else 0.0
    ok = (
        drain_check["in_order_no_gaps"]
        and drain_check["distinct"] == int(cfg["drain"])
        and live_check["in_order_no_gaps"]
        and live_check["distinct"] == len(live["committed"])
        and not drain_check["bad_signatures"] + live_check["bad_signatures"]
        and caught_up
    )
    print(f"database: {args.db}; CPU cores: {os.cpu_count()}")
    print(
        f"drain: {drain['delivered']} records in {drain['seconds']:.2f}s = {rps:.0f} records/s; "
        f"per record p50 {r3(_p(per_record, 50))} ms, p99 {r3(_p(per_record, 99))} ms; "
        f"POST round trip p50 {_p(drain['rtt_ms'], 50)} ms, p99 {_p(drain['rtt_ms'], 99)} ms"
    )
    print(f"drain stream: {drain_check}")
    live_lat = latency_summary([x / 1000 for x in lat])
    print(f"live: {len(lat)} records at {cfg['live_rate']}/s; stage commit → receiver: {live_lat}")
    print(f"live stream: {live_check}; caught up: {caught_up}")
    return {
        "bench": "push",
        "db": args.db,
        "ok": ok,
        "drain": {
            "records": drain["delivered"],
            "seconds": r3(drain["seconds"]),
            "records_per_s": round(rps, 1),
            "per_record_ms": {"p50": r3(_p(per_record, 50)), "p99": r3(_p(per_record, 99))},
            "post_rtt_ms": {"p50": _p(drain["rtt_ms"], 50), "p99": _p(drain["rtt_ms"], 99)},
            "stream": drain_check,
        },
        "live": {
            "rate_per_s": cfg["live_rate"],
            "records": len(live["committed"]),
            "latency_s": live_lat,
            "stream": live_check,
            "caught_up": caught_up,
        },
    }


def _p(values: list[float], p: float) -> float | None:
    from _harness import percentile

    return percentile(values, p)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        run_receiver(int(sys.argv[2]), sys.argv[3])
        return 0
    args = base_args(
        "Push subscriptions: records/s to a local receiver, publish → receiver latency"
    ).parse_args()
    os.chdir(ROOT)
    try:
        # The receiver listens on loopback, which the mall refuses unless it is listed.
        with Stack(
            args.db, "push", keep=args.keep, env_overrides={"MALL_PUSH_ALLOWED_HOSTS": "127.0.0.1"}
        ) as st:
            summary = asyncio.run(main_async(args, st))
    except KeyboardInterrupt:
        return 130
    emit(summary)
    return 0 if summary["ok"] else 2


if __name__ == "__main__":
    sys.exit(main())
