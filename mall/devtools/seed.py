"""Demo data, made through the real code paths: organizations, budgets, listings and a history of deals.

Deterministic for a given seed. The clock is moved back in time while the history is made, so deal
dates and publication times spread over the past weeks as they would have happened.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, clock
from mall.core.credit_code import make
from mall.core.db import Database
from mall.core.models import AuditEntry, Organization
from mall.core.settings import Settings
from mall.credit import blacklist
from mall.credit import service as credit
from mall.devtools.demo.history import (
    make_agreement_and_service_deals,
    make_agreements_and_services,
    make_history,
    make_procedures,
    make_sole_proprietor_deal,
)
from mall.devtools.demo.listings import make_listings
from mall.devtools.demo.organizations import (
    DEMO_MARKER,
    DEMO_PASSWORD,
    ORGS,
    demo_accounts,
    make_budget_lines,
    make_organizations,
)
from mall.devtools.demo.policy import make_policy
from mall.devtools.demo.pricewatch import make_price_alerts
from mall.devtools.demo.sanctions import make_sanctions
from mall.devtools.demo.sme import make_sme_declarations
from mall.devtools.demo.supervision import make_cases

__all__ = ["DEMO_MARKER", "DEMO_PASSWORD", "demo_accounts", "demo_loaded", "is_seeded", "seed_demo"]


async def is_seeded(db: Database) -> bool:
    async with db.read() as s:
        return bool(await s.scalar(select(func.count()).select_from(Organization)))


async def demo_loaded(session: AsyncSession) -> bool:
    """Whether the demo data was seeded into this database (never the case in production)."""
    return (
        await session.scalar(select(AuditEntry.id).where(AuditEntry.action == DEMO_MARKER).limit(1))
    ) is not None


# Two companies on a public blacklist (fictional codes, none of them registered): registering either
# as a supplier is refused, with the check kept (try it on /admin).
DEMO_BLACKLIST = (
    ("郑州某某商贸有限公司", "重大税收违法失信主体", "2026-03-15"),
    ("河南某某科技有限公司", "政府采购严重违法失信行为（提供虚假材料谋取中标、成交）", "2026-08-01"),
)


async def make_blacklist(db: Database, principals: dict[str, Any]) -> int:
    rows = [
        (make("9", "1", "410100", f"MA9D{n:04d}"), name, reason, listed)
        for n, (name, reason, listed) in enumerate(DEMO_BLACKLIST, 1)
    ]
    body = "统一社会信用代码,名称,列入原因,列入日期,移出日期\n" + "".join(
        f"{c},{n},{r},{d},\n" for c, n, r, d in rows
    )
    batch = await blacklist.import_list(
        db,
        principals["sysadmin"],
        "信用中国·失信主体名单（演示）",
        clock.local_date(clock.now()).isoformat(),
        "失信名单-演示.csv",
        body.encode(),
    )
    return batch.rows


async def seed_demo(
    db: Database, settings: Settings, *, seed: int = 2026, history: int = 48
) -> dict[str, int]:
    rng = random.Random(seed)
    now = clock.now()
    start = now - timedelta(days=75)
    clock.clock.freeze(start)
    try:
        principals = await make_organizations(db, rng)
        sizes = await make_sme_declarations(db, principals, start - timedelta(days=20))
        await make_budget_lines(db, principals)
        listings = await make_listings(db, settings, rng, principals)
        made = await make_history(db, settings, rng, principals, listings, history, start, now)
    finally:
        clock.clock.unfreeze()
    made |= sizes
    made["procedures"] = await make_procedures(db, settings, principals)
    made |= await make_agreements_and_services(db, settings, principals)
    made["published"] = made.get("published", 0) + await make_agreement_and_service_deals(
        db, settings, principals
    )
    made["published"] = made.get("published", 0) + await make_sole_proprietor_deal(db, settings, principals)
    # Price monitoring first: its market statistics are what the "price above the market" rule reads.
    made["price_alerts"] = (await make_price_alerts(db, settings, principals)).get("opened", 0)
    made["cases"] = sum((await make_cases(db, settings, principals)).values())
    made |= await make_sanctions(db, settings, principals)
    made["blacklisted"] = await make_blacklist(db, principals)
    # Certificates and origins, after the history (its orders were placed before they were declared).
    made |= await make_policy(db, rng, principals, listings)
    # Credit: late deliveries in the history, then every supplier's score (as the periodic job does).
    made["late_deliveries"] = await credit.scan_late_deliveries(
        db, settings, since=datetime(2000, 1, 1, tzinfo=UTC)
    )
    made["credit_scores"] = await credit.refresh(db)
    async with db.write() as tx:
        audit.record(tx, None, DEMO_MARKER, target_kind="system", detail=f"seed={seed} history={history}")
    return {"organizations": len(ORGS), "listings": len(listings), **made}
