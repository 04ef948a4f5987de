"""Publication lag: seconds from a supplier's confirmation to the deal's appearance in the public feed.

    .venv/bin/python bench/publish_lag.py [--quick] [--db sqlite|postgres]

Orders are placed first; then suppliers confirm them at a steady (open-loop) rate while a separate
task polls GET /api/disclosures?after=<cursor> every ~20 ms. The lag of an order is the time from the
moment its confirm response returned to the moment a poll response containing its record returned
(matched by order_no). At the end the feed must be gap-free (seq 1..N), contain each confirmed order
exactly once, and the poller must have seen the seqs in order without skipping any.
Human-readable lines first, the JSON summary as the last line of stdout. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as harness
import httpx

POLL_INTERVAL = 0.020
MAX_IN_FLIGHT = 64
# (confirmations per second, seconds)
QUICK = {"rates": [(5, 4.0), (20, 4.0)], "drain_timeout": 20.0, "place_clients": 8}
FULL = {"rates": [(5, 30.0), (20, 30.0), (50, 12.0)], "drain_timeout": 40.0, "place_clients": 8}


class Poller:
    """Follows the public feed with the `after=` cursor, every POLL_INTERVAL seconds."""

    def __init__(self, client: httpx.AsyncClient, redis_url: str, queue_name: str) -> None:
        self.client = client
        self.cursor = 0
        self.seen: dict[str, tuple[float, int]] = {}  # order_no -> (time seen, seq) of its deal record
        self.stream: list[int] = []  # seqs in the order the poller received them
        self.polls = 0
        self.poll_errors: list[str] = []
        self.poll_latencies: list[float] = []
        self.queue_max = 0
        self.queue_samples: list[int] = []
        self.redis_url = redis_url
        self.queue_key = f"rq:queue:{queue_name}"
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        next_t = time.perf_counter()
        while not self.stopping.is_set():
            t0 = time.perf_counter()
            try:
                r = await self.client.get("/api/disclosures", params={"after": self.cursor, "limit": 500})
                t1 = time.perf_counter()
                self.polls += 1
                self.poll_latencies.append(t1 - t0)
                if r.status_code != 200:
                    self.poll_errors.append(f"HTTP {r.status_code}: {r.text[:300]}")
                else:
                    page = r.json()
                    for item in page["items"]:
                        self.stream.append(int(item["seq"]))
                        if item.get("kind") == "deal" and item["order_no"] not in self.seen:
                            self.seen[item["order_no"]] = (t1, int(item["seq"]))
                    self.cursor = page["next_after"]
            except httpx.HTTPError as exc:
                self.poll_errors.append(f"{type(exc).__name__}: {exc}")
            next_t += POLL_INTERVAL
            now = time.perf_counter()
            if next_t < now:  # fell behind: poll again at once, but do not burst to catch up
                next_t = now
            await asyncio.sleep(next_t - now)

    async def watch_queue(self) -> None:
        """Length of the RQ queue (jobs waiting), sampled every 100 ms."""
        from redis.asyncio import Redis

        r = Redis.from_url(self.redis_url)
        try:
            while not self.stopping.is_set():
                try:
                    n = int(await r.llen(self.queue_key))
                    self.queue_samples.append(n)
                    self.queue_max = max(self.queue_max, n)
                except Exception:  # noqa: S110
                    pass
                await asyncio.sleep(0.1)
        finally:
            await r.aclose()


async def run(st: harness.Stack, cfg: dict[str, Any]) -> dict[str, Any]:
    total_orders = sum(int(rate * secs) for rate, secs in cfg["rates"])
    with harness.stage("creating organizations, budget lines and listings"):
        world: harness.World = await harness.build_world(
            st.resolved_database_url,
            buyers=cfg["place_clients"],
            shared_users=0,
            suppliers=4,
            listings_per_supplier=12,
        )
    with harness.stage("starting mall serve + mall worker"):
        st.start_services()
    meter = harness.CpuMeter({"web": st.pid("web"), "worker": st.pid("worker")})
    summary: dict[str, Any] = {"levels": {}, "poll_interval_ms": POLL_INTERVAL * 1000}
    errors_total = 0
    settings = st.settings()

    async with (
        harness.http_client(st.port, MAX_IN_FLIGHT) as client,
        harness.http_client(st.port, 2) as feed_client,
    ):
        with harness.stage("logging in over HTTP"):
            await harness.login_all(client, [*world.buyers, *world.suppliers])

        # ---- place the orders first (one item per checkout: one order each)
        listings = world.all_listings
        placed: list[dict[str, Any]] = []
        rng = random.Random(7)

        async def place(c: httpx.AsyncClient, n: int) -> httpx.Response | None:
            b = world.buyers[n % len(world.buyers)]
            lid, _ = rng.choice(listings)
            body = {"budget_line_id": str(b.line_id), "items": [{"listing_id": str(lid), "quantity": "1"}]}
            return await c.post(
                "/api/checkout", json=body, headers={**b.headers, "Idempotency-Key": f"bench-{uuid.uuid4()}"}
            )

        def on_placed(resp: httpx.Response) -> int:
            for o in resp.json()["orders"]:
                placed.append({"id": o["id"], "order_no": o["order_no"], "supplier": o["supplier_name"]})
            return len(resp.json()["orders"])

        with harness.stage(f"placing {total_orders} orders"):
            r = await harness.closed_loop(
                client,
                "place orders",
                cfg["place_clients"],
                place,
                on_placed,
                max_requests=total_orders,
                max_seconds=180,
                meter=meter,
            )
        errors_total += r.errors
        print(
            f"placed {len(placed)} orders in {r.seconds:.1f}s ({r.units / r.seconds:.1f} orders/s, "
            f"p50 {harness.latency_summary(r.latencies)['p50_ms']} ms), {r.errors} errors",
            flush=True,
        )
        summary["placing"] = r.summary("orders")
        if len(placed) < total_orders:
            raise RuntimeError(f"only {len(placed)} of {total_orders} orders could be placed")

        # ---- confirm at steady rates while the poller follows the feed
        poller = Poller(feed_client, settings.resolved_redis_url, st.queue_name)
        poll_task = asyncio.create_task(poller.run())
        queue_task = asyncio.create_task(poller.watch_queue())
        by_name = world.supplier_by_name
        done_at: dict[str, float] = {}
        confirmed: set[str] = set()
        confirm_errors: list[str] = []
        queue_key_start = 0
        try:
            await asyncio.sleep(0.5)  # the poller has caught up with nothing
            todo = list(placed)
            for rate, secs in cfg["rates"]:
                st.check_alive()
                n = int(rate * secs)
                batch, todo = todo[:n], todo[n:]
                sem = asyncio.Semaphore(MAX_IN_FLIGHT)
                latencies: list[float] = []
                level_errors = 0
                queue_key_start = len(poller.queue_samples)

                async def confirm(
                    o: dict[str, Any], sem: asyncio.Semaphore = sem, latencies: list[float] = latencies
                ) -> None:
                    nonlocal level_errors
                    async with sem:
                        t0 = time.perf_counter()
                        try:
                            resp = await client.post(
                                f"/api/orders/{o['id']}/confirm", headers=by_name[o["supplier"]].headers
                            )
                        except httpx.HTTPError as exc:
                            level_errors += 1
                            confirm_errors.append(f"{type(exc).__name__}: {exc}")
                            return
                        t1 = time.perf_counter()
                        if resp.status_code == 200:
                            done_at[o["order_no"]] = t1
                            confirmed.add(o["order_no"])
                            latencies.append(t1 - t0)
                        else:
                            level_errors += 1
                            confirm_errors.append(f"HTTP {resp.status_code}: {resp.text[:300]}")

                harness.log(f"confirming {n} orders at {rate}/s")
                meter.start()
                tasks = []
                t_start = time.perf_counter()
                for i, o in enumerate(batch):
                    delay = t_start + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(confirm(o)))
                await asyncio.gather(*tasks)
                t_dispatched = time.perf_counter() - t_start
                # wait for every confirmed order of this level to appear in the feed
                deadline = time.monotonic() + cfg["drain_timeout"]
                want = {o["order_no"] for o in batch} & confirmed
                while time.monotonic() < deadline and not want <= poller.seen.keys():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                cpu = meter.stop()
                lags = [poller.seen[k][0] - done_at[k] for k in want if k in poller.seen]
                missing = len(want - poller.seen.keys())
                qs = poller.queue_samples[queue_key_start:]
                level = {
                    "rate_target_per_s": rate,
                    "rate_achieved_per_s": round(len(want) / t_dispatched, 2) if t_dispatched else None,
                    "confirmed": len(want),
                    "errors": level_errors,
                    "count": len(lags),
                    "not_seen_within_timeout": missing,
                    "lag_p50_s": harness.r3(harness.percentile(lags, 50)),
                    "lag_p99_s": harness.r3(harness.percentile(lags, 99)),
                    "lag_max_s": harness.r3(max(lags) if lags else None),
                    "lag_min_s": harness.r3(min(lags) if lags else None),
                    "lag_mean_s": harness.r3(sum(lags) / len(lags) if lags else None),
                    "seen_before_confirm_returned": sum(1 for x in lags if x < 0),
                    "confirm_latency": harness.latency_summary(latencies),
                    "rq_queue_max_jobs": max(qs) if qs else None,
                    "rq_queue_jobs_at_end": qs[-1] if qs else None,
                    "cpu": cpu,
                }
                errors_total += level_errors
                summary["levels"][f"{rate}/s"] = level
                print(
                    f"confirm at {rate:>3}/s for {secs:>4.0f}s: {len(lags)} seen  lag p50 {level['lag_p50_s']} s  "
                    f"p99 {level['lag_p99_s']} s  max {level['lag_max_s']} s  min {level['lag_min_s']} s  "
                    f"(achieved {level['rate_achieved_per_s']}/s, confirm p50 "
                    f"{level['confirm_latency']['p50_ms']} ms p99 {level['confirm_latency']['p99_ms']} ms, "
                    f"{level_errors} errors, {missing} not seen, RQ queue max {level['rq_queue_max_jobs']} "
                    f"jobs, cpu web {cpu.get('web_cores')} worker {cpu.get('worker_cores')} "
                    f"machine {cpu.get('machine_cores_busy')} cores)",
                    flush=True,
                )
                await asyncio.sleep(1.0)
        finally:
            poller.stopping.set()
            await asyncio.gather(poll_task, queue_task, return_exceptions=True)

        for e in confirm_errors[:10]:
            print(f"  ! confirm: {e}")
        for e in poller.poll_errors[:10]:
            print(f"  ! poll: {e}")

        # ---- the whole feed, and what the cursor-following poller saw
        items = await harness.fetch_feed(client)
        feed_check = harness.verify_feed(items, confirmed)
        stream_ok = poller.stream == list(range(1, len(poller.stream) + 1))
        summary["feed"] = feed_check
        summary["poller"] = {
            "polls": poller.polls,
            "errors": len(poller.poll_errors),
            "saw_seqs_in_order_without_gaps": stream_ok,
            "seqs_seen": len(poller.stream),
            "poll_latency": harness.latency_summary(poller.poll_latencies),
        }
        summary["ledger_verify"] = st.ledger_verify()
        summary["memory"] = st.memory()
        st.check_alive()
        jobs_ok = len(st.log_grep("worker", "Job OK (publish-"))
        summary["rq_publish_jobs_completed"] = jobs_ok
        durations = []
        for line in st.log_grep("worker", "Successfully completed workers.jobs.publish"):
            try:
                hms = line.rsplit(" job in ", 1)[1].split("s on worker")[0]
                h, m, s = hms.split(":")
                durations.append(int(h) * 3600 + int(m) * 60 + float(s))
            except (IndexError, ValueError):
                pass
        summary["rq_publish_job_seconds"] = {
            "p50": harness.r3(harness.percentile(durations, 50)),
            "max": harness.r3(max(durations) if durations else None),
        }
        errors_total += len(poller.poll_errors)

    print(
        f"feed: {feed_check['records']} records, gap-free={feed_check['gap_free_1_to_n']}, "
        f"missing={feed_check['missing']}, duplicated={feed_check['duplicated']}, "
        f"unexpected={feed_check['unexpected']}; poller saw seqs in order without gaps: {stream_ok} "
        f"({poller.polls} polls); ledger verify: {summary['ledger_verify']['message']}"
    )
    print(
        f"worker: {jobs_ok} publish jobs completed for {len(confirmed)} confirmations, "
        f"job duration p50 {summary['rq_publish_job_seconds']['p50']} s"
    )
    summary["errors_total"] = errors_total
    summary["orders_confirmed"] = len(confirmed)
    st.report_log_exceptions(summary)
    return summary


def main() -> int:
    def describe(st: harness.Stack) -> dict[str, Any]:
        s = st.settings()
        return {
            "settings": {
                "outbox_grace_seconds": s.outbox_grace_seconds,
                "sweep_interval_seconds": s.sweep_interval_seconds,
            }
        }

    def passed(summary: dict[str, Any]) -> bool:
        feed_ok = summary.get("feed", {}).get("ok") and summary.get("poller", {}).get(
            "saw_seqs_in_order_without_gaps"
        )
        return not summary.get("errors_total") and bool(feed_ok)

    return harness.run_once(
        "publish_lag",
        __doc__.splitlines()[0],
        run,
        QUICK,
        FULL,
        passed=passed,
        stack_name="lag",
        describe=describe,
    )


if __name__ == "__main__":
    sys.exit(main())
