"""Meilisearch adapter: the official client (`search_index.meili`) against the earlier hand-written
`httpx` code path, both talking to the same fake Meilisearch server on 127.0.0.1.

No Meilisearch server can run on this machine, so the server is the fake from the contract tests
(`tests/search_index/fake_meili.py`): it answers at once (every task has already succeeded), so what
is measured is the client side — building and sending the requests, connections, parsing the answers
— plus the fake's own constant cost per request. A real server adds its indexing and search time on
top, the same for both code paths.

The earlier code path is read from git (`--old-ref`, default: the last commit before the switch)
into a temporary module; nothing of it is kept in the project. Each code path runs in a child
process of its own (so memory figures are its own), `--rounds` times, alternating; the fake server
runs in this process. Per run:

* indexing: `--batches` calls of `upsert()` with `--batch-size` documents each (one POST of the
  documents and one task poll each), sequential;
* searches: `--searches` calls of `search()` with words, five filters, a sort and facets (the fake
  answers 20 hits with highlights and facet counts), sequential, then the same number from 8 threads
  at once (as the web process runs searches in `asyncio.to_thread`);
* per phase: operations/s, p50/p99 latency; TCP connections the server accepted; bytes of request
  bodies the server received; the child's RSS after importing the adapter and its peak RSS at the end.

Usage: python bench/meili_client.py [--quick] [--rounds 2] [--batches 200] [--batch-size 200]
       [--searches 2000] [--old-ref COMMIT]
Prints a JSON summary as the last line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The last commit whose search_index/meili.py spoke HTTP through httpx by hand.
OLD_REF = "bb786ee673e9e17f4c7b6d2a37922e85ea5209c5"
KEY = "test-master-key"
THREADS = 8


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def summary(lat: list[float], wall: float) -> dict[str, float]:
    lat = sorted(lat)
    return {
        "ops_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(statistics.median(lat) * 1000, 3),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 3),
    }


# ---------------------------------------------------------------- child: one code path


def load_old(ref: str) -> Any:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:search_index/meili.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="meili-old-")) / "meili_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("meili_old", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def document(n: int) -> Any:
    from search_index.backend import ProductDocument

    return ProductDocument(
        id=str(uuid.UUID(int=n)),
        title=f"联想 启天M4{n % 1000:03d} 台式计算机 i5/16G/512G",
        brand="联想",
        spec_model=f"M4{n % 1000:03d}",
        category_code="A02010105",
        category_name="台式计算机",
        supplier_id=f"sup-{n % 40}",
        supplier_name="郑州某某科技有限公司",
        region_code="410102",
        price_cents=300000 + n % 500000,
        stock=n % 7,
        sales=n % 97,
        created_ts=1_790_000_000 + n,
        description="办公用台式计算机，含显示器、键盘、鼠标，三年上门保修。",
    )


def child(path: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    if path == "old":
        module = load_old(args.old_ref)
        backend = module.MeiliBackend(url, KEY, batch_size=args.batch_size)
    else:
        from search_index import meili as module

        backend = module.MeiliBackend(url, KEY, batch_size=args.batch_size)
    from search_index.backend import SearchQuery

    import_s = time.perf_counter() - t0
    rss_after_import = rss_kib("VmRSS")
    out: dict[str, Any] = {"path": path, "import_s": round(import_s, 3)}

    backend.ensure_index()
    lat: list[float] = []
    n = 0
    start = time.perf_counter()
    for _ in range(args.batches):
        docs = [document(n + i) for i in range(args.batch_size)]
        n += args.batch_size
        t = time.perf_counter()
        backend.upsert(docs)
        lat.append(time.perf_counter() - t)
    out["indexing"] = summary(lat, time.perf_counter() - start)
    out["indexing"]["docs_per_s"] = round(n / (time.perf_counter() - start))

    query = SearchQuery(
        q="联想 台式计算机",
        category="A020101",
        brand="联想",
        region="4101",
        price_min=Decimal("1000"),
        price_max=Decimal("8000"),
        in_stock=True,
        sort="price_asc",
    )
    lat = []
    start = time.perf_counter()
    for _ in range(args.searches):
        t = time.perf_counter()
        result = backend.search(query)
        lat.append(time.perf_counter() - t)
    assert result.total == 1234 and len(result.hits) == 20
    out["search"] = summary(lat, time.perf_counter() - start)

    def one(_i: int) -> float:
        t = time.perf_counter()
        backend.search(query)
        return time.perf_counter() - t

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        lat = list(pool.map(one, range(args.searches)))
    out[f"search_{THREADS}_threads"] = summary(lat, time.perf_counter() - start)
    out["rss_after_import_mib"] = round(rss_after_import / 1024, 1)
    out["peak_rss_mib"] = round(rss_kib("VmHWM") / 1024, 1)
    backend.close()
    return out


# ---------------------------------------------------------------- parent: fake server, runs


def canned_search() -> dict[str, Any]:
    hits = []
    for i in range(20):
        d = document(i)
        hits.append(
            {
                "id": d.id,
                "title": d.title,
                "brand": d.brand,
                "spec_model": d.spec_model,
                "category_code": d.category_code,
                "price_cents": d.price_cents,
                "supplier_name": d.supplier_name,
                "_formatted": {"title": d.title.replace("联想", "<em>联想</em>", 1)},
            }
        )
    return {
        "hits": hits,
        "query": "联想 台式计算机",
        "processingTimeMs": 3,
        "hitsPerPage": 20,
        "page": 1,
        "totalPages": 62,
        "totalHits": 1234,
        "facetDistribution": {
            "category_code": {"A02010105": 1200, "A02010104": 34},
            "brand": {"联想": 1234},
            "supplier_id": {f"sup-{i}": 30 for i in range(40)},
            "price_band": {"1000-5000": 1000, "5000-10000": 234},
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--searches", type=int, default=2000)
    ap.add_argument("--old-ref", default=OLD_REF)
    ap.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.batches, args.searches = 1, 50, 300
    if args.child:
        print(json.dumps(child(args.child, args.url, args)))
        return 0

    from tests.search_index.fake_meili import FakeMeili, serve

    results: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for path in ("old", "new"):
            fake = FakeMeili()
            fake.search_response = canned_search()
            with serve(fake) as url:
                log(f"round {round_no + 1}: {path} code path")
                cmd = [sys.executable, __file__, "--child", path, "--url", url]
                cmd += ["--batches", str(args.batches), "--batch-size", str(args.batch_size)]
                cmd += ["--searches", str(args.searches), "--old-ref", args.old_ref]
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    return 1
                res = json.loads(done.stdout.strip().splitlines()[-1])
                res["round"] = round_no + 1
                res["requests"] = len(fake.requests)
                res["tcp_connections"] = fake.connections
                doc_posts = [r for r in fake.requests if r.url.path.endswith("/documents")]
                res["document_body_bytes_per_batch"] = round(
                    sum(len(r.content) for r in doc_posts) / max(1, len(doc_posts))
                )
                searches = [r for r in fake.requests if r.url.path.endswith("/search")]
                res["search_body_bytes"] = len(searches[0].content)
                results.append(res)

    print(
        f"{'path':<5} {'round':>5} | {'index batches/s':>15} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'search/s':>8} {'p50 ms':>7} {'p99 ms':>7} | {f'{THREADS} thr/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} | {'conns':>6} {'RSS MiB':>7} {'peak':>6}"
    )
    for r in results:
        i, s, c = r["indexing"], r["search"], r[f"search_{THREADS}_threads"]
        print(
            f"{r['path']:<5} {r['round']:>5} | {i['ops_per_s']:>15} {i['p50_ms']:>7} {i['p99_ms']:>7} | "
            f"{s['ops_per_s']:>8} {s['p50_ms']:>7} {s['p99_ms']:>7} | {c['ops_per_s']:>8} "
            f"{c['p50_ms']:>7} {c['p99_ms']:>7} | {r['tcp_connections']:>6} "
            f"{r['rss_after_import_mib']:>7} {r['peak_rss_mib']:>6}"
        )
    print(
        json.dumps(
            {
                "bench": "meili_client",
                "batches": args.batches,
                "batch_size": args.batch_size,
                "searches": args.searches,
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
