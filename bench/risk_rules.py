"""The nightly full run of the risk rules at ledger scale: N deal records (orders with one line
each, bulk-inserted), spread over buyers and suppliers, a few per cent of them late to file, pay or
accept, then one `mall.supervision.engine.run_full`.

    .venv/bin/python bench/risk_rules.py [--orders 1000000] [--buyers 2000] [--suppliers 300]
                                         [--db sqlite|postgres]
                                         [--pg-url postgresql://postgres@127.0.0.1:5432/bench_risk]

The run is in a child process of its own, so its peak memory (maximum resident set) is the run's,
not the seeding's. Prints the time, records per second, cases opened and peak memory. On PostgreSQL
the database named by --pg-url is used as it is: create an empty one first
(`createdb -h 127.0.0.1 -U postgres bench_risk`), a fresh one for each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from mall.core import clock  # noqa: E402
from mall.core.settings import Settings, load_settings  # noqa: E402

BATCH = 5000
MODELS = [f"M-{i}" for i in range(400)]
CATEGORIES = ["A02010104", "A02010105", "A02021003", "A05010201", "A02010108"]


def settings_for(data_dir: Path, url: str) -> Settings:
    from mall.core.encryption import new_key

    key = os.environ.get("BENCH_DATA_KEY") or ("" if not url else new_key())
    return load_settings(
        {}, data_dir=data_dir, database_url=url, data_key=key, secret_key="bench-" + "x" * 30
    )


async def seed(s: Settings, n_orders: int, n_buyers: int, n_suppliers: int) -> dict[str, Any]:
    from mall.budgets.models import BudgetLine
    from mall.core.credit_code import make
    from mall.core.db import Database
    from mall.core.models import Organization, OrgKind, User
    from mall.orders.models import Checkout, Order, OrderLine, OrderStatus
    from mall.pricewatch.models import PriceStat

    db = Database(s.resolved_database_url, pool_size=2, data_keys=s.resolved_data_keys())
    started = time.perf_counter()
    rng = random.Random(11)
    now = clock.now()
    try:
        orgs: list[dict[str, Any]] = []
        users: list[dict[str, Any]] = []
        budget: list[dict[str, Any]] = []
        buyers: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
        suppliers: list[uuid.UUID] = []
        for i in range(n_buyers):
            oid, uid, lid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            region = f"4101{i % 20 + 1:02d}"
            orgs.append(
                {
                    "id": oid,
                    "kind": OrgKind.BUDGET_UNIT.value,
                    "name": f"单位{i}",
                    "credit_code": make("1", "1", "410100", f"{i:08d}"),
                    "address": "",
                    "region_code": region,
                    "contact_phone": "",
                    "created_at": now,
                }
            )
            users.append(
                {
                    "id": uid,
                    "org_id": oid,
                    "username": f"b{i}",
                    "display_name": "b",
                    "password_hash": "-",
                    "created_at": now,
                }
            )
            budget.append(
                {
                    "id": lid,
                    "org_id": oid,
                    "fiscal_year": clock.local_date(now).year,
                    "project_code": f"P{i}",
                    "project_name": "基准",
                    "amount": Decimal("999999999"),
                    "scope": "",
                    "reserved": Decimal(0),
                    "consumed": Decimal(0),
                    "created_at": now,
                }
            )
            buyers.append((oid, uid, lid))
        for i in range(n_suppliers):
            oid = uuid.uuid4()
            orgs.append(
                {
                    "id": oid,
                    "kind": OrgKind.SUPPLIER.value,
                    "name": f"供应商{i}",
                    "credit_code": make("9", "1", "410100", f"{i:08d}"),
                    "address": "",
                    "region_code": "410100",
                    "contact_phone": "",
                    "created_at": now,
                }
            )
            suppliers.append(oid)
        small_suppliers = set(suppliers[::2])
        async with db.write() as tx:
            await tx.session.execute(insert(Organization.__table__), orgs)  # type: ignore[arg-type]
            await tx.session.execute(insert(User.__table__), users)  # type: ignore[arg-type]
            await tx.session.execute(insert(BudgetLine.__table__), budget)  # type: ignore[arg-type]
            await tx.session.execute(
                insert(PriceStat.__table__),  # type: ignore[arg-type]
                [
                    {
                        "brand_key": "联想",
                        "model_key": m.lower().replace("-", ""),
                        "samples": 10,
                        "p25": Decimal("900"),
                        "median": Decimal("1000"),
                        "p75": Decimal("1100"),
                        "window_days": 90,
                        "computed_at": now,
                    }
                    for m in MODELS
                ],
            )
        checkouts: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []

        async def flush() -> None:
            async with db.write() as tx:
                for model, rows in ((Checkout, checkouts), (Order, orders), (OrderLine, lines)):
                    if rows:
                        await tx.session.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]
            checkouts.clear()
            orders.clear()
            lines.clear()

        last = time.perf_counter()
        for n in range(n_orders):
            buyer, user, line = buyers[rng.randrange(n_buyers)]
            supplier = suppliers[rng.randrange(n_suppliers)]
            at = now - timedelta(days=rng.randint(1, 700), minutes=rng.randint(0, 1440))
            roll = rng.random()
            status = OrderStatus.PAID
            extra: dict[str, Any] = {
                "accepted_at": at + timedelta(days=5),
                "paid_at": at + timedelta(days=10),
            }
            if roll < 0.002:
                status, extra = OrderStatus.CONFIRMED, {}
            elif roll < 0.004:
                status, extra = OrderStatus.ACCEPTED, {"accepted_at": at + timedelta(days=1)}
            elif roll < 0.006:
                status, extra = OrderStatus.RECEIVED, {"received_at": at + timedelta(days=1)}
            elif roll < 0.03:
                status, extra = OrderStatus.CANCELLED, {}
            # one line in five hundred above the monitored market (median 1,000, limit 1,100)
            price = (
                Decimal("1200.00")
                if rng.random() < 0.002
                else Decimal(rng.choice(("950.00", "1000.00", "1050.00")))
            )
            qty = rng.randint(1, 20)
            amount = price * qty
            ck, oid = uuid.uuid4(), uuid.uuid4()
            checkouts.append(
                {
                    "id": ck,
                    "user_id": user,
                    "idempotency_key": ck.hex,
                    "request_digest": "-",
                    "created_at": at,
                }
            )
            orders.append(
                {
                    "id": oid,
                    "order_no": f"WB{n:018d}",
                    "mode": "supermarket",
                    "status": status,
                    "buyer_org_id": buyer,
                    "buyer_user_id": user,
                    "supplier_org_id": supplier,
                    # half the suppliers small, as their declaration when ordered (mall.sme)
                    "supplier_scale": "small" if supplier in small_suppliers else "large",
                    "budget_line_id": line,
                    "checkout_id": ck,
                    "region_code": "410100",
                    "total_amount": amount,
                    "reserved_amount": amount,
                    "delivery_address": "",
                    "note": "",
                    "shipping_note": "",
                    "evaluation_comment": "",
                    "cancel_reason": "",
                    "cancel_request_reason": "",
                    "payment_ref": "",
                    "payment_overdue": False,
                    "version": 1,
                    "placed_at": at,
                    "confirm_due_at": at,
                    "confirmed_at": at,
                    "accepted_at": None,
                    "paid_at": None,
                    "received_at": None,
                    **extra,
                }
            )
            lines.append(
                {
                    "id": uuid.uuid4(),
                    "order_id": oid,
                    "line_no": 1,
                    "listing_id": None,
                    "item_name": "台式计算机",
                    "brand": "联想",
                    "spec_model": rng.choice(MODELS),
                    "category_code": rng.choice(CATEGORIES),
                    "category_version": "2022",
                    "unit": "台",
                    "quantity": Decimal(qty),
                    "listed_unit_price": price,
                    "unit_price": price,
                    "amount": amount,
                }
            )
            if len(orders) >= BATCH:
                await flush()
                if time.perf_counter() - last > 15:
                    last = time.perf_counter()
                    print(f"  {n + 1:,} orders written", file=sys.stderr, flush=True)
        await flush()
        return {"orders": n_orders, "seed_seconds": round(time.perf_counter() - started, 1)}
    finally:
        await db.dispose()


async def run_only(s: Settings) -> dict[str, Any]:
    from mall.core.db import Database
    from mall.core.outbox import drop_unregistered
    from mall.supervision import engine

    drop_unregistered()
    db = Database(s.resolved_database_url, pool_size=2, data_keys=s.resolved_data_keys())
    try:
        t = time.perf_counter()
        result = await engine.run_full(db, s)
        seconds = time.perf_counter() - t
    finally:
        await db.dispose()
    return {
        "seconds": round(seconds, 1),
        "facts": result.facts,
        "per_second": round(result.facts / seconds) if seconds else None,
        "opened": result.opened,
        "hit_again": result.hit_again,
        "no_longer": result.no_longer,
        "per_rule": result.per_rule,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--buyers", type=int, default=2000)
    p.add_argument("--suppliers", type=int, default=300)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/bench_risk")
    p.add_argument(
        "--runs", type=int, default=2, help="full runs one after another (the second opens nothing)"
    )
    p.add_argument("--run-only", metavar="DATA_DIR", help=argparse.SUPPRESS)
    p.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run_only:
        print(
            json.dumps(asyncio.run(run_only(settings_for(Path(args.run_only), args.url))), ensure_ascii=False)
        )
        return
    data_dir = Path(tempfile.mkdtemp(prefix="bench-risk-"))
    url = args.pg_url if args.db == "postgres" else ""
    env = dict(os.environ)
    if url:
        from mall.core.encryption import new_key

        env["BENCH_DATA_KEY"] = os.environ["BENCH_DATA_KEY"] = new_key()
    s = settings_for(data_dir, url)
    from mall.migrate import upgrade

    upgrade(s)
    print(f"seeding {args.orders:,} orders on {args.db} ({data_dir})", file=sys.stderr, flush=True)
    seeded = asyncio.run(seed(s, args.orders, args.buyers, args.suppliers))
    print(f"seeded: {seeded}", file=sys.stderr, flush=True)
    result: dict[str, Any] = {}
    for run in range(1, args.runs + 1):
        out = subprocess.run(
            [sys.executable, __file__, "--run-only", str(data_dir), "--url", url],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"full run {run}: {result['facts']:,} records in {result['seconds']} s = {result['per_second']:,}/s;"
            f" opened {result['opened']:,}, hit again {result['hit_again']:,}; peak memory {result['peak_rss_mib']} MiB"
        )
    print(json.dumps({"db": args.db, "seed": seeded, "last_run": result}, ensure_ascii=False))


if __name__ == "__main__":
    main()
