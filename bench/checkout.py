"""Checkout throughput: orders per second through POST /api/checkout, then confirm throughput.

    .venv/bin/python bench/checkout.py [--quick] [--db sqlite|postgres]

Starts a throw-away mall (migrate, data, `mall serve`, `mall worker`; the bundled redis-server on a
unix socket for SQLite, redis://127.0.0.1:6379/14 for PostgreSQL) and drives it over real HTTP.
Human-readable lines first, the JSON summary as the last line of stdout. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import collections
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _harness import (
    CpuMeter,
    PhaseResult,
    Stack,
    World,
    build_world,
    closed_loop,
    fetch_feed,
    http_client,
    login_all,
    run_once,
    stage,
    verify_feed,
)

QUICK = {
    "levels": [1, 8, 32],
    "seconds": 2.5,
    "max_requests": 1500,
    "shared": 8,
    "shared_seconds": 2.0,
    "confirm_levels": [1, 8],
    "confirm_seconds": 2.0,
    "drain_timeout": 30.0,
}
FULL = {
    **QUICK,  # the same concurrency levels, run longer
    "seconds": 20.0,
    "max_requests": 8000,
    "shared": 32,
    "shared_seconds": 15.0,
    "confirm_levels": [1, 8, 32],
    "confirm_seconds": 10.0,
    "drain_timeout": 60.0,
}


def print_phase(label: str, r: PhaseResult, unit: str) -> None:
    s = r.summary(unit)
    print(
        f"{label:<28} c={r.clients:<3} {r.ok:>6} ok  {r.errors} errors  {s['seconds']:>6.2f}s  "
        f"{s.get(unit + '_per_s') or 0:>8.1f} {unit}/s  p50 {s['p50_ms'] or 0:>7.1f} ms  "
        f"p99 {s['p99_ms'] or 0:>7.1f} ms  max {s['max_ms'] or 0:>7.1f} ms  "
        f"cpu: machine {r.cpu.get('machine_cores_busy')} web {r.cpu.get('web_cores')} "
        f"worker {r.cpu.get('worker_cores')} bench {r.cpu.get('bench_client_cores')} cores",
        flush=True,
    )


async def run(st: Stack, cfg: dict[str, Any]) -> dict[str, Any]:
    max_c = max(max(cfg["levels"]), max(cfg["confirm_levels"]))
    with stage("creating organizations, budget lines and listings"):
        world: World = await build_world(
            st.resolved_database_url,
            buyers=max(cfg["levels"]),
            shared_users=cfg["shared"],
            suppliers=4,
            listings_per_supplier=12,
        )
    with stage("starting mall serve + mall worker"):
        st.start_services()
    meter = CpuMeter({"web": st.pid("web"), "worker": st.pid("worker")})
    listings = world.all_listings
    placed: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"checkout": {}, "checkout_shared_line": None, "confirm": {}}
    errors_total = 0

    async with http_client(st.port, max_c) as client:
        with stage("logging in over HTTP"):
            await login_all(client, [*world.buyers, *world.shared, *world.suppliers])

        def checkout_fn(buyers: list[Any]) -> Any:
            rngs: dict[int, random.Random] = {}

            async def fn(c: httpx.AsyncClient, n: int) -> httpx.Response:
                rng = rngs.setdefault(n, random.Random(n * 7919 + len(placed)))
                b = buyers[n % len(buyers)]
                picks = rng.sample(listings, k=rng.choice([1, 2]))
                body = {
                    "budget_line_id": str(b.line_id),
                    "items": [
                        {"listing_id": str(lid), "quantity": str(rng.randint(1, 3))} for lid, _ in picks
                    ],
                }
                return await c.post(
                    "/api/checkout",
                    json=body,
                    headers={**b.headers, "Idempotency-Key": f"bench-{uuid.uuid4()}"},
                )

            return fn

        def on_checkout(resp: httpx.Response) -> int:
            data = resp.json()
            if data.get("replayed"):
                raise RuntimeError("a fresh Idempotency-Key was answered as a replay")
            for o in data["orders"]:
                placed.append({"id": o["id"], "order_no": o["order_no"], "supplier": o["supplier_name"]})
            return len(data["orders"])

        # warm-up (not measured): first requests pay for imports, statement caches, connections
        await closed_loop(
            client, "warm-up", 4, checkout_fn(world.buyers), on_checkout, max_requests=20, max_seconds=10
        )

        for c in cfg["levels"]:
            st.check_alive()
            r = await closed_loop(
                client,
                f"checkout c={c}",
                c,
                checkout_fn(world.buyers[:c]),
                on_checkout,
                max_requests=cfg["max_requests"],
                max_seconds=cfg["seconds"],
                meter=meter,
            )
            print_phase("checkout (own budget line)", r, "orders")
            summary["checkout"][str(c)] = {
                **r.summary("orders"),
                "checkouts_per_s": round(r.ok / r.seconds, 2),
            }
            errors_total += r.errors

        if cfg["shared"]:
            st.check_alive()
            c = cfg["shared"]
            r = await closed_loop(
                client,
                f"checkout shared c={c}",
                c,
                checkout_fn(world.shared),
                on_checkout,
                max_requests=cfg["max_requests"],
                max_seconds=cfg["shared_seconds"],
                meter=meter,
            )
            print_phase("checkout (one shared line)", r, "orders")
            summary["checkout_shared_line"] = {
                **r.summary("orders"),
                "checkouts_per_s": round(r.ok / r.seconds, 2),
            }
            errors_total += r.errors

        # ---- confirm phase: the supplier of each order confirms it
        by_name = world.supplier_by_name
        todo = collections.deque(placed)
        random.Random(1).shuffle(todo)
        confirmed: set[str] = set()

        async def confirm_fn(c: httpx.AsyncClient, n: int) -> httpx.Response | None:
            if not todo:
                return None
            o = todo.popleft()
            resp = await c.post(f"/api/orders/{o['id']}/confirm", headers=by_name[o["supplier"]].headers)
            if resp.status_code == 200:
                confirmed.add(o["order_no"])
            return resp

        def on_confirm(resp: httpx.Response) -> int:
            if resp.json().get("status") != "confirmed":
                raise RuntimeError(f"confirm answered {resp.text[:200]}")
            return 1

        t_confirm_end = time.monotonic()
        for c in cfg["confirm_levels"]:
            st.check_alive()
            r = await closed_loop(
                client,
                f"confirm c={c}",
                c,
                confirm_fn,
                on_confirm,
                max_requests=cfg["max_requests"],
                max_seconds=cfg["confirm_seconds"],
                meter=meter,
            )
            t_confirm_end = time.monotonic()
            print_phase("confirm (supplier)", r, "orders")
            summary["confirm"][str(c)] = r.summary("orders")
            errors_total += r.errors

        # ---- the worker publishes every confirmed order: wait, then check the feed
        with stage("waiting for the disclosure feed to catch up"):
            seen = 0
            cursor = 0
            drained_at = None
            deadline = time.monotonic() + cfg["drain_timeout"]
            while time.monotonic() < deadline:
                page = (await client.get("/api/disclosures", params={"after": cursor, "limit": 500})).json()
                seen += len(page["items"])
                cursor = page["next_after"]
                if seen >= len(confirmed) and not page["items"]:
                    drained_at = time.monotonic()
                    break
                if not page["items"]:
                    await asyncio.sleep(0.05)
        items = await fetch_feed(client)
        feed_check = verify_feed(items, confirmed)
        summary["publish"] = {
            "seconds_after_last_confirm_until_feed_complete": round(drained_at - t_confirm_end, 3)
            if drained_at
            else None,
            "feed": feed_check,
        }
        summary["ledger_verify"] = st.ledger_verify()
        summary["memory"] = st.memory()
        st.check_alive()

    print(
        f"publish: feed complete {summary['publish']['seconds_after_last_confirm_until_feed_complete']} s after "
        f"the last confirm; feed check ok={feed_check['ok']} ({feed_check['records']} records, "
        f"gap-free={feed_check['gap_free_1_to_n']}, missing={feed_check['missing']}, "
        f"duplicated={feed_check['duplicated']}); ledger verify: {summary['ledger_verify']['message']}"
    )
    mem = summary["memory"]
    print(
        f"memory: web peak RSS {mem.get('web_peak_rss_mib')} MiB (now {mem.get('web_rss_mib')} MiB), "
        f"worker peak RSS {mem.get('worker_peak_rss_mib')} MiB"
    )
    summary["errors_total"] = errors_total
    summary["orders_placed"] = len(placed)
    summary["orders_confirmed"] = len(confirmed)
    st.report_log_exceptions(summary)
    return summary


def main() -> int:
    def describe(st: Stack) -> dict[str, Any]:
        return {"web_workers": int(st.env().get("MALL_WEB_WORKERS", "1"))}

    def passed(summary: dict[str, Any]) -> bool:
        return not summary.get("errors_total") and bool(summary.get("publish", {}).get("feed", {}).get("ok"))

    return run_once("checkout", __doc__.splitlines()[0], run, QUICK, FULL, passed=passed, describe=describe)


if __name__ == "__main__":
    sys.exit(main())
