"""The daily price sweep at scale: N live listings (bulk-inserted as `mall seed --products` does), a
share of them with deals of their brand and model and with declared e-commerce prices, then one
sweep (market statistics, every live listing against the rules, alerts, the per-品目 summary).

    .venv/bin/python bench/pricewatch.py [--listings 1000000] [--deals 20000] [--db sqlite|postgres]
                                         [--pg-url postgresql://postgres@127.0.0.1:5432/bench_pw]

The sweep runs in a child process of its own, so its peak memory (maximum resident set) is the
sweep's, not the seeding's. Prints the sweep's time, listings per second, alerts, and peak memory.
On PostgreSQL the database named by --pg-url is used as it is: create an empty one first
(`createdb -h 127.0.0.1 -U postgres bench_pw`); it is emptied of business rows by the migrations only
when new, so give each run a fresh one.
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
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Date, Table, bindparam, insert, select, text  # noqa: E402

from mall.core import clock  # noqa: E402
from mall.core.settings import Settings, load_settings  # noqa: E402

BATCH = 2000


def settings_for(data_dir: Path, url: str) -> Settings:
    from mall.core.encryption import new_key

    key = os.environ.get("BENCH_DATA_KEY") or ("" if not url else new_key())
    return load_settings(
        {}, data_dir=data_dir, database_url=url, data_key=key, secret_key="bench-" + "x" * 30
    )


async def seed(s: Settings, listings: int, deals: int) -> dict[str, Any]:
    from catalog.models import Listing
    from mall.budgets.models import BudgetLine
    from mall.core.credit_code import make
    from mall.core.db import Database
    from mall.core.models import Organization, OrgKind, User
    from mall.devtools.bulk import seed_products
    from mall.orders.models import Checkout, Order, OrderLine, OrderStatus

    db = Database(s.resolved_database_url, pool_size=2, data_keys=s.resolved_data_keys())
    started = time.perf_counter()
    try:
        last = [0.0]

        def progress(n: int) -> None:
            if time.perf_counter() - last[0] > 10:
                last[0] = time.perf_counter()
                print(f"  {n:,} listings written", file=sys.stderr, flush=True)

        made = await seed_products(db, listings, progress=progress)
        seeded = time.perf_counter() - started
        now = clock.now()
        buyer_org = Organization(
            id=uuid.uuid4(),
            kind=OrgKind.BUDGET_UNIT.value,
            name="基准测试采购单位",
            credit_code=make("1", "1", "410100", "00000001"),
            address="郑州市",
            region_code="410100",
            created_at=now,
        )
        buyer = User(
            id=uuid.uuid4(),
            org_id=buyer_org.id,
            username=f"bench-buyer-{uuid.uuid4().hex[:6]}",
            display_name="buyer",
            password_hash="-",
            created_at=now,
        )
        line = BudgetLine(
            id=uuid.uuid4(),
            org_id=buyer_org.id,
            fiscal_year=clock.local_date(now).year,
            project_code="P-BENCH",
            project_name="基准",
            amount=Decimal("999999999.00"),
            scope="",
            reserved=Decimal(0),
            consumed=Decimal(0),
            created_at=now,
        )
        async with db.write() as tx:
            tx.session.add(buyer_org)
            await tx.session.flush()
            tx.session.add_all([buyer, line])
        # Deals on `deals` listings (ids are random: the first by id are a random sample), three
        # each: half of them cheaper than the listing (median 0.9 × price: above the market by 11%),
        # half around it; e-commerce prices on a tenth of the listings, some of them stale.
        async with db.read() as session:
            picked = (
                await session.execute(
                    select(
                        Listing.id,
                        Listing.supplier_org_id,
                        Listing.price,
                        Listing.name,
                        Listing.brand,
                        Listing.spec_model,
                        Listing.category_code,
                    )
                    .order_by(Listing.id)
                    .limit(deals)
                )
            ).all()
        rng = random.Random(7)
        checkouts: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []

        async def flush() -> None:
            async with db.write() as tx:
                for model, rows in ((Checkout, checkouts), (Order, orders), (OrderLine, lines)):
                    if rows:
                        await tx.session.execute(insert(cast(Table, model.__table__)), rows)
            checkouts.clear()
            orders.clear()
            lines.clear()

        n = 0
        for i, (lid, supplier, price, name, brand, model, category) in enumerate(picked):
            factors = (0.85, 0.9, 0.95) if i % 2 == 0 else (0.95, 1.0, 1.05)
            for f in factors:
                n += 1
                at = now - timedelta(days=rng.randint(1, 80))
                amount = (price * Decimal(str(f))).quantize(Decimal("0.01"))
                ck, oid = uuid.uuid4(), uuid.uuid4()
                checkouts.append(
                    {
                        "id": ck,
                        "user_id": buyer.id,
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
                        "status": OrderStatus.PAID,
                        "buyer_org_id": buyer_org.id,
                        "buyer_user_id": buyer.id,
                        "supplier_org_id": supplier,
                        "budget_line_id": line.id,
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
                    }
                )
                lines.append(
                    {
                        "id": uuid.uuid4(),
                        "order_id": oid,
                        "line_no": 1,
                        "listing_id": lid,
                        "item_name": name,
                        "brand": brand,
                        "spec_model": model,
                        "category_code": category,
                        "category_version": "2022",
                        "unit": "台",
                        "quantity": Decimal(1),
                        "listed_unit_price": amount,
                        "unit_price": amount,
                        "amount": amount,
                    }
                )
            if len(orders) >= BATCH:
                await flush()
        await flush()
        today = clock.local_date(now)
        async with db.write() as tx:
            stmt = text(
                "UPDATE listings SET ecommerce_price = price * 97 / 100, ecommerce_url = 'https://shop.example.com/item',"
                " ecommerce_captured_on = :day WHERE id IN (SELECT id FROM listings ORDER BY id DESC LIMIT :n)"
            ).bindparams(bindparam("day", type_=Date()))
            await tx.session.execute(stmt, {"day": today - timedelta(days=10), "n": listings // 20})
            stale = text(
                "UPDATE listings SET ecommerce_price = price, ecommerce_url = 'https://shop.example.com/old',"
                " ecommerce_captured_on = :day WHERE id IN"
                " (SELECT id FROM listings ORDER BY id DESC LIMIT :n OFFSET :skip)"
            ).bindparams(bindparam("day", type_=Date()))
            await tx.session.execute(
                stale, {"day": today - timedelta(days=120), "n": listings // 20, "skip": listings // 20}
            )
        return {"written": made.get("written", 0), "seed_seconds": round(seeded, 1), "deal_lines": n}
    finally:
        await db.dispose()


async def sweep_only(s: Settings) -> dict[str, Any]:
    from mall.core.db import Database
    from mall.pricewatch import sweep

    db = Database(s.resolved_database_url, pool_size=2, data_keys=s.resolved_data_keys())
    try:
        t = time.perf_counter()
        result = await sweep.run(db, s)
        seconds = time.perf_counter() - t
    finally:
        await db.dispose()
    return {
        "seconds": round(seconds, 1),
        "listings": result.listings,
        "listings_per_second": round(result.listings / seconds) if seconds else None,
        "stats_rows": result.stats,
        "opened": result.opened,
        "refreshed": result.refreshed,
        "closed": result.closed,
        "flagged": result.flagged,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listings", type=int, default=1_000_000)
    p.add_argument("--deals", type=int, default=20_000, help="listings with three deals each")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/bench_pw")
    p.add_argument("--runs", type=int, default=2, help="sweeps one after another (the second refreshes)")
    p.add_argument("--sweep-only", metavar="DATA_DIR", help=argparse.SUPPRESS)
    p.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sweep_only:
        s = settings_for(Path(args.sweep_only), args.url)
        print(json.dumps(asyncio.run(sweep_only(s))))
        return
    data_dir = Path(tempfile.mkdtemp(prefix="bench-pw-"))
    url = args.pg_url if args.db == "postgres" else ""
    env = dict(os.environ)
    if url:
        from mall.core.encryption import new_key

        env["BENCH_DATA_KEY"] = os.environ["BENCH_DATA_KEY"] = new_key()
    s = settings_for(data_dir, url)
    from mall.migrate import upgrade

    upgrade(s)
    print(f"seeding {args.listings:,} listings on {args.db} ({data_dir})", file=sys.stderr, flush=True)
    seeded = asyncio.run(seed(s, args.listings, args.deals))
    print(f"seeded: {seeded}", file=sys.stderr, flush=True)
    for run in range(1, args.runs + 1):
        out = subprocess.run(
            [sys.executable, __file__, "--sweep-only", str(data_dir), "--url", url],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"sweep {run}: {result['listings']:,} listings in {result['seconds']} s"
            f" = {result['listings_per_second']:,} listings/s; alerts opened {result['opened']:,},"
            f" refreshed {result['refreshed']:,}, closed {result['closed']:,}; flagged {result['flagged']:,};"
            f" market stats {result['stats_rows']:,}; peak memory {result['peak_rss_mib']} MiB"
        )
    print(json.dumps({"db": args.db, "seed": seeded, "last_sweep": result}))


if __name__ == "__main__":
    main()
