"""Ledger export benchmark: time and peak memory of `mall export` as CSV, XLSX and OCDS.

A throw-away mall (database + migrations) gets N ledger records (default 1,000,000; `--quick`
20,000), then each format is exported by `mall export` in a child process; its wall time, records
per second, output size and peak RSS (`ru_maxrss` of that child, from wait4) are reported. A filtered
CSV export (a 品目 prefix and a date range) shows the cost of the 品目 filter.

The records are written straight into `disclosure_records` in bulk — the publisher (outbox, ledger
lock, one record at a time) would take hours for a million — but each is a valid record: canonical
JSON, SHA-256 hash chain and ledger head, so `mall ledger verify` passes on the result. The mix is
deterministic: supermarket deals of 1–3 lines (most), inquiry and auction deals with their quotes,
failures, corrections and cancellations.

Prints a JSON summary as the last line. Usage: python bench/export.py [--quick] [--records N] [--db sqlite|postgres]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import CATEGORIES, ROOT, Stack, base_args, cpu_seconds, emit, log, proc_status, stage

BATCH = 5000
MODES = ["supermarket"] * 80 + ["agreement"] * 6 + ["designated"] * 4 + ["inquiry"] * 6 + ["auction"] * 4
GOODS = {
    "A02010108": ("便携式计算机", "台"),
    "A02021003": ("复印纸", "箱"),
    "A05010201": ("办公桌", "张"),
    "A02010105": ("台式计算机", "台"),
    "A02021104": ("硒鼓", "个"),
    "A05010301": ("办公椅", "把"),
}
BRANDS = ["联想", "华为", "惠普", "得力", "晨光", "戴尔", "齐心", "震旦"]


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def credit_code(prefix: str, n: int) -> str:
    # 18 characters; the check digit is not computed (the ledger stores codes as given)
    return f"{prefix}{n:016d}"[:18]


def make_records(n: int, seed: int = 2026) -> Any:
    """Yield (record dict) for seq 1..n, hash-chained. Deterministic for a seed."""
    rnd = random.Random(seed)
    buyers = [(f"第{i}号预算单位", credit_code("11", i)) for i in range(1, 401)]
    suppliers = [(f"供应商{i}有限公司", credit_code("91", i), f"郑州市金水区路{i}号") for i in range(1, 201)]
    start = date(2025, 12, 1)
    prev = "0" * 64
    deals: list[dict[str, Any]] = []  # recent deals, for corrections and cancellations
    published = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
    for seq in range(1, n + 1):
        published += timedelta(seconds=30)
        day = start + timedelta(days=min(364, seq * 365 // max(n, 1)))
        roll = rnd.random()
        if deals and roll < 0.01:
            base = rnd.choice(deals)
            record = {**base, "kind": "cancellation", "amends": base["id"]}
        elif deals and roll < 0.02:
            base = rnd.choice(deals)
            record = {**base, "kind": "correction", "amends": base["id"]}
        else:
            mode = rnd.choice(MODES)
            buyer = rnd.choice(buyers)
            lines = []
            for _ in range(rnd.choice((1, 1, 1, 2, 3))):
                code = rnd.choice(CATEGORIES)
                name, unit = GOODS[code]
                qty = rnd.randint(1, 20)
                cents = rnd.randint(500, 900_000)
                lines.append(
                    {
                        "item_name": name,
                        "brand": rnd.choice(BRANDS),
                        "spec_model": f"型号-{rnd.randint(100, 999)}",
                        "category_code": code,
                        "quantity": str(qty),
                        "unit": unit,
                        "unit_price": f"{cents // 100}.{cents % 100:02d}",
                        "amount": f"{cents * qty // 100}.{cents * qty % 100:02d}",
                    }
                )
            total = sum(int(x["amount"].replace(".", "")) for x in lines)
            record = {
                "kind": "deal",
                "amends": None,
                "mode": mode,
                "order_no": f"{mode[:2].upper()}{day:%Y%m%d}{seq:08d}",
                "region_code": "410100",
                "deal_date": day.isoformat(),
                "buyer": {"name": buyer[0], "credit_code": buyer[1]},
                "supplier": None,
                "total_amount": f"{total // 100}.{total % 100:02d}",
                "currency": "CNY",
                "lines": lines,
            }
            if mode in ("inquiry", "auction"):
                quotes = [
                    {
                        "rank": r,
                        "supplier_name": rnd.choice(suppliers)[0],
                        "total_amount": f"{(total + r * 1000) // 100}.{(total + r * 1000) % 100:02d}",
                        "submitted_at": "2025-12-01T02:00:00.000000Z",
                    }
                    for r in range(1, rnd.randint(2, 6))
                ]
                record["quotes"] = quotes
                if rnd.random() < 0.15:  # too few valid offers
                    record.update(
                        kind="failure",
                        supplier=None,
                        total_amount=None,
                        reason="有效报价不足3家",
                        lines=[{**x, "unit_price": None, "amount": None} for x in lines],
                    )
                    record["rejected_quotes"] = []
            if record["kind"] == "deal":
                s = rnd.choice(suppliers)
                record["supplier"] = {"name": s[0], "credit_code": s[1], "address": s[2]}
        record = {
            **{
                k: v for k, v in record.items() if k not in ("seq", "id", "published_at", "prev_hash", "hash")
            },
            "seq": seq,
            "id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "published_at": published.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "prev_hash": prev,
        }
        record["hash"] = hashlib.sha256(canonical(record).encode("utf-8")).hexdigest()
        prev = record["hash"]
        if record["kind"] == "deal":
            deals.append(record)
            if len(deals) > 1000:
                deals.pop(0)
        yield record


async def seed(database_url: str, n: int) -> float:
    """Bulk insert n records (a direct path for the benchmark, see the module docstring)."""
    from _harness import bench_db
    from sqlalchemy import insert, update

    from mall.ledger.models import DisclosureRecord, LedgerHead

    db = bench_db(database_url)
    t0 = time.monotonic()
    rows: list[dict[str, Any]] = []
    last_hash = "0" * 64

    async def flush() -> None:
        async with db.write() as tx:
            await tx.session.execute(insert(DisclosureRecord.__table__), rows)
        rows.clear()

    try:
        for r in make_records(n):
            supplier = r.get("supplier") or {}
            total = r.get("total_amount")
            rows.append(
                {
                    "seq": r["seq"],
                    "id": uuid.UUID(r["id"]),
                    "kind": r["kind"],
                    "amends": uuid.UUID(r["amends"]) if r.get("amends") else None,
                    "mode": r["mode"],
                    "order_no": r["order_no"],
                    "deal_date": r["deal_date"],
                    "buyer_name": r["buyer"]["name"],
                    "buyer_credit_code": r["buyer"]["credit_code"],
                    "supplier_name": supplier.get("name"),
                    "supplier_credit_code": supplier.get("credit_code"),
                    "total_amount": None if total is None else Decimal(total),
                    "published_at": datetime.strptime(r["published_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                        tzinfo=UTC
                    ),
                    "source_id": uuid.uuid4(),
                    "prev_hash": r["prev_hash"],
                    "hash": r["hash"],
                    "body": canonical(r),
                }
            )
            last_hash = r["hash"]
            if len(rows) >= BATCH:
                await flush()
                if r["seq"] % 100_000 == 0:
                    log(f"  {r['seq']:,} records")
        if rows:
            await flush()
        async with db.write() as tx:
            await tx.session.execute(
                update(LedgerHead).where(LedgerHead.id == 1).values(last_seq=n, last_hash=last_hash)
            )
    finally:
        await db.dispose()
    return time.monotonic() - t0


def run_export(st: Stack, fmt: str, out: Path, *extra: str) -> dict[str, Any]:
    """`mall export` in a child process: wall time, CPU time and its own peak RSS.

    The peak is the child's `VmHWM` from /proc, read every 50 ms until it exits (it only grows, so the
    last reading is the peak but for the final 50 ms). `ru_maxrss` would not do: a forked child starts
    with the parent's high-water mark, and exec keeps it."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mall.cli", "export", "--format", fmt, "--output", str(out), *extra],
        cwd=ROOT,
        env=st.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak_kib = 0
    cpu = 0.0
    while proc.poll() is None:
        peak_kib = max(peak_kib, proc_status(proc.pid).get("VmHWM", 0))
        cpu = cpu_seconds(proc.pid) or cpu
        time.sleep(0.05)
    seconds = time.monotonic() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"mall export --format {fmt} failed:\n{err[-2000:]}")
    exported = next(
        (int(w) for line in err.splitlines() if "已导出" in line for w in line.split() if w.isdigit()), 0
    )
    return {
        "format": fmt,
        "filters": " ".join(extra),
        "records": exported,
        "seconds": round(seconds, 1),
        "records_per_s": round(exported / seconds) if seconds else None,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "cpu_seconds": round(cpu, 1),
        "file_mb": round(out.stat().st_size / 1e6, 1),
    }


def main() -> None:
    p = base_args("Ledger exports: time and peak memory of CSV, XLSX and OCDS at a million records")
    p.add_argument("--records", type=int, help="ledger records (default 1,000,000; --quick 20,000)")
    p.add_argument("--formats", default="csv,xlsx,ocds")
    p.add_argument("--no-push", action="store_true", help="skip the push throughput part (bench/push.py)")
    args = p.parse_args()
    n = args.records or (20_000 if args.quick else 1_000_000)
    results: list[dict[str, Any]] = []
    with Stack(args.db, "export", keep=args.keep) as st:
        with stage(f"seeding {n:,} ledger records"):
            seed_s = asyncio.run(seed(st.resolved_database_url, n))
        log(f"seeded at {n / seed_s:,.0f} records/s")
        for fmt in args.formats.split(","):
            with stage(f"export {fmt}"):
                res = run_export(st, fmt, st.data_dir / f"export.{fmt}")
            print(json.dumps(res, ensure_ascii=False))
            results.append(res)
        with stage("export csv, filtered (品目 A0201, one quarter)"):
            res = run_export(
                st,
                "csv",
                st.data_dir / "filtered.csv",
                "--category",
                "A0201",
                "--from",
                "2026-01-01",
                "--to",
                "2026-03-31",
            )
        print(json.dumps(res, ensure_ascii=False))
        results.append(res)
        verify = (
            st.ledger_verify() if n <= 100_000 else {"ok": None, "message": "skipped above 100,000 records"}
        )
    push = None if args.no_push else run_push(args.db, args.quick)
    emit(
        {
            "benchmark": "export",
            "db": args.db,
            "records": n,
            "seed_seconds": round(seed_s, 1),
            "ledger_verify": verify,
            "exports": results,
            "push": push,
        }
    )


def run_push(db: str, quick: bool) -> dict[str, Any] | None:
    """Push throughput to a local receiver: bench/push.py in a process (and a throw-away mall) of its own;
    its JSON summary becomes the `push` part of this one."""
    import subprocess

    cmd = [
        sys.executable,
        str(Path(__file__).with_name("push.py")),
        "--db",
        db,
        *(["--quick"] if quick else []),
    ]
    with stage("push throughput (bench/push.py)"):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        log(f"push benchmark failed ({done.returncode}): {done.stderr[-500:]}")
        return None
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


if __name__ == "__main__":
    main()
