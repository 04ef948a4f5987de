"""Catalogue search benchmark: index build rate, and query latency in-process and over HTTP.

For each catalogue size (100,000 and 1,000,000 live listings; `--quick`: 20,000) a throw-away mall
is made (database + Redis), `mall seed --products N` writes generated listings, `mall reindex` builds
the embedded index (timed: documents per second, database read included), then a fixed mix of
queries runs:

  plain      台式计算机, 打印机, 空调, 复印纸, 服务器
  two-char   电脑, 硒鼓, 墨盒, 椅子, 投影
  mixed      联想 台式, 打印机 A4, lenovo 笔记本, hp 打印机, lenvo (a misspelt brand)
  filtered   words + 品目 prefix + price range + a price sort; brand filter + sales sort
  faceted    no words: a whole 品目 class, or everything, newest first (facets over all matches)

Every query computes facet counts and highlighted titles, as the mall's search page does.
In-process: the EmbeddedBackend reader, one query at a time. HTTP: `mall serve` + `mall worker`,
GET /api/catalog/search, one client at a time (latency), then 8 concurrent clients (throughput).
Last, freshness: a listing is frozen through the service (commit → outbox → worker → index) and the
time until the HTTP search stops returning it is measured, 10 times.

Prints a JSON summary as the last line. Usage: python bench/search.py [--quick] [--sizes 100000,1000000]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Stack, base_args, emit, latency_summary, log, stage

QUERIES: dict[str, list[dict[str, str]]] = {
    "plain": [{"q": w} for w in ("台式计算机", "打印机", "空调", "复印纸", "服务器")],
    "two_char": [{"q": w} for w in ("电脑", "硒鼓", "墨盒", "椅子", "投影")],
    "mixed": [{"q": w} for w in ("联想 台式", "打印机 A4", "lenovo 笔记本", "hp 打印机", "lenvo")],
    "filtered": [
        {
            "q": "台式机",
            "category": "A02010105",
            "price_min": "3000",
            "price_max": "6000",
            "sort": "price_asc",
        },
        {"q": "打印机", "brand": "惠普", "sort": "sales"},
        {"q": "空调", "price_max": "5000", "in_stock": "1", "sort": "price_desc"},
        {"q": "笔记本", "category": "A0201", "sort": "newest"},
    ],
    "faceted": [
        {"category": "A02"},
        {"category": "A05", "sort": "price_asc"},
        {},
    ],
}


def search_query(params: dict[str, str]) -> Any:
    from catalog import search as catalog_search

    raw = catalog_search.RawParams(**{**params, "per_page": "20"})
    return catalog_search.parse(raw)


def timed_inprocess(backend: Any, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    all_lat: list[float] = []
    for kind, queries in QUERIES.items():
        lat: list[float] = []
        totals = []
        for q in queries:
            query = search_query(q)
            backend.search(query)  # warm
            for _ in range(rounds):
                t0 = time.perf_counter()
                result = backend.search(query)
                lat.append(time.perf_counter() - t0)
            totals.append(result.total)
        all_lat += lat
        out[kind] = {**latency_summary(lat), "queries": len(lat), "matches": totals}
    out["all"] = {**latency_summary(all_lat), "queries": len(all_lat)}
    return out


async def timed_http(port: int, rounds: int, concurrency: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}/api/catalog/search"
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        all_lat: list[float] = []
        for kind, queries in QUERIES.items():
            lat: list[float] = []
            for q in queries:
                r = await client.get(base, params=q)
                assert r.status_code == 200, r.text
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    r = await client.get(base, params=q)
                    lat.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
            all_lat += lat
            out[kind] = {**latency_summary(lat), "queries": len(lat)}
        out["all"] = {**latency_summary(all_lat), "queries": len(all_lat)}

        flat = [q for qs in QUERIES.values() for q in qs]
        n_requests = max(200, rounds * len(flat))
        lat = []
        done = 0
        errors = 0

        async def worker(k: int) -> None:
            nonlocal done, errors
            i = k
            while done + errors < n_requests:
                q = flat[i % len(flat)]
                i += concurrency
                t0 = time.perf_counter()
                r = await client.get(base, params=q)
                lat.append(time.perf_counter() - t0)
                if r.status_code == 200:
                    done += 1
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        wall = time.perf_counter() - t0
        out[f"concurrent_{concurrency}"] = {
            "requests": done,
            "errors": errors,
            "requests_per_s": round(done / wall, 1),
            **latency_summary(lat),
        }
    return out


async def freshness(st: Stack, port: int, samples: int) -> dict[str, Any]:
    """Freeze a live listing through the real service; time until the HTTP search no longer has it."""
    from _harness import bench_db
    from sqlalchemy import select

    from catalog import service
    from catalog.models import Listing
    from mall.core.auth import Principal
    from workers import queues

    settings = st.settings()
    queues.configure(settings)
    queues.register_topics()
    db = bench_db(settings.resolved_database_url, pool_size=2)
    regulator = Principal(uuid.uuid4(), "bench-regulator", "压测监管员", "regulator", None, "财政部门", "")
    lat: list[float] = []
    try:
        async with db.read() as s:
            rows = list(
                (
                    await s.execute(
                        select(Listing.id, Listing.spec_model)
                        .where(Listing.status == "live")
                        .order_by(Listing.id)
                        .limit(samples)
                    )
                ).all()
            )
        async with httpx.AsyncClient(timeout=10) as client:
            for listing_id, model in rows:
                q = {"q": model, "per_page": "100"}
                r = await client.get(f"http://127.0.0.1:{port}/api/catalog/search", params=q)
                assert str(listing_id) in [h["id"] for h in r.json()["hits"]], f"{model} not found before"
                t0 = time.perf_counter()
                await service.moderate(
                    db, regulator, listing_id, "freeze", "压测：冻结", margin=settings.price_margin
                )
                while True:
                    r = await client.get(f"http://127.0.0.1:{port}/api/catalog/search", params=q)
                    if str(listing_id) not in [h["id"] for h in r.json()["hits"]]:
                        break
                    if time.perf_counter() - t0 > 30:
                        raise RuntimeError("a frozen listing stayed in the search for 30 s")
                    await asyncio.sleep(0.01)
                lat.append(time.perf_counter() - t0)
    finally:
        await db.dispose()
    return {"samples": len(lat), **latency_summary(lat)}


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run_size(n: int, db_kind: str, quick: bool) -> dict[str, Any]:
    label = f"search-{n}"
    with Stack(db_kind, label) as st:
        with stage(f"seed {n:,} listings"):
            t0 = time.monotonic()
            st._run_mall("seed", "--products", str(n), "--no-index", timeout=7200)
            seed_s = time.monotonic() - t0
        with stage("reindex"):
            t0 = time.monotonic()
            r = st._run_mall("reindex", timeout=7200)
            build_s = time.monotonic() - t0
        log(r.stdout.strip())
        index_dir = st.data_dir / "search"
        index_bytes = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())

        from search_index import text
        from search_index.embedded import EmbeddedBackend

        text.warm_up()
        rss_before = _rss_mib()
        reader = EmbeddedBackend(index_dir)
        rounds = 5 if quick else 20
        with stage("in-process queries"):
            inproc = timed_inprocess(reader, rounds)
        rss_after = _rss_mib()

        st.start_services()
        with stage("HTTP queries"):
            http = asyncio.run(timed_http(st.port, rounds, 8))
        with stage("freeze → gone from search"):
            fresh = asyncio.run(freshness(st, st.port, 5 if quick else 10))
        mem = st.memory()
        return {
            "listings": n,
            "seed_seconds": round(seed_s, 1),
            "reindex_seconds": round(build_s, 1),
            "index_docs_per_s": round(n / build_s, 1),
            "index_mb": round(index_bytes / 1e6, 1),
            "inprocess": inproc,
            "inprocess_rss_mib": {"before_open": rss_before, "after_queries": rss_after},
            "http": http,
            "freeze_to_gone": fresh,
            "memory": mem,
        }


def main() -> None:
    p = base_args("Catalogue search: index build rate, query p50/p99 in-process and over HTTP")
    p.add_argument("--sizes", help="comma-separated catalogue sizes (default 100000,1000000; --quick 20000)")
    args = p.parse_args()
    sizes = (
        [int(x) for x in args.sizes.split(",")]
        if args.sizes
        else ([20_000] if args.quick else [100_000, 1_000_000])
    )
    results = []
    for n in sizes:
        res = run_size(n, args.db, args.quick)
        log(json.dumps({k: v for k, v in res.items() if k not in ("inprocess", "http")}, ensure_ascii=False))
        results.append(res)
    summary = {
        "benchmark": "search",
        "db": args.db,
        "backend": "embedded (tantivy + jieba)",
        "sizes": [
            {
                "listings": r["listings"],
                "index_docs_per_s": r["index_docs_per_s"],
                "reindex_seconds": r["reindex_seconds"],
                "inprocess_p50_ms": r["inprocess"]["all"]["p50_ms"],
                "inprocess_p99_ms": r["inprocess"]["all"]["p99_ms"],
                "http_p50_ms": r["http"]["all"]["p50_ms"],
                "http_p99_ms": r["http"]["all"]["p99_ms"],
                "http_rps_8_clients": r["http"]["concurrent_8"]["requests_per_s"],
                "freeze_to_gone_p99_ms": r["freeze_to_gone"]["p99_ms"],
                "per_kind_http_p99_ms": {k: v["p99_ms"] for k, v in r["http"].items() if k in QUERIES},
                "per_kind_inprocess_p99_ms": {
                    k: v["p99_ms"] for k, v in r["inprocess"].items() if k in QUERIES
                },
            }
            for r in results
        ],
        "details": results,
    }
    emit(summary)


if __name__ == "__main__":
    main()
