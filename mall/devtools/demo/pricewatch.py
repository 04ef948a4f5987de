"""Demo data for price monitoring: declared e-commerce prices on some listings (a current one below
the price, a stale one), two price rises on one listing, then the real sweep over the demo
catalogue and its deals — which opens alerts of several kinds — and the center's work on two of
them (one asked and waiting, one answered by the supplier)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from catalog.models import Listing, ListingStatus, PriceChange
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.settings import Settings
from mall.pricewatch import service, sweep
from mall.pricewatch.models import AlertStatus, PriceAlert


async def make_price_alerts(
    db: Database, settings: Settings, principals: dict[str, Principal]
) -> dict[str, int]:
    """Returns how many alerts the sweep opened and how many the center took up."""
    suppliers = {p.org_id: p for p in principals.values() if p.role == "supplier"}
    today = clock.local_date(clock.now())
    async with db.read() as s:
        live = list(
            (
                await s.execute(
                    select(Listing)
                    .where(Listing.status == ListingStatus.LIVE, Listing.supplier_org_id.in_(list(suppliers)))
                    .order_by(Listing.name, Listing.id)
                    .limit(40)
                )
            ).scalars()
        )
    if len(live) < 4:
        return {"opened": 0, "asked": 0}
    async with db.write() as tx:
        for i, x in enumerate(live[:12]):
            # Most declare an e-commerce price at or above their own; every fourth is dearer here
            # than in the shop, and one price was read long ago.
            factor = Decimal("0.95") if i % 4 == 0 else Decimal("1.03")
            captured = today - timedelta(days=120 if i == 5 else 7 + i)
            await tx.session.execute(
                update(Listing)
                .where(Listing.id == x.id)
                .values(
                    ecommerce_price=(x.price * factor).quantize(Decimal("0.01")),
                    ecommerce_url=f"https://mall.jd.com/item/{100000 + i}.html",
                    ecommerce_captured_on=captured,
                )
            )
        raised = live[12]
        for days, (before, after) in ((40, ("0.94", "0.97")), (12, ("0.97", "1"))):
            tx.session.add(
                PriceChange(
                    listing_id=raised.id,
                    at=clock.now() - timedelta(days=days),
                    price=(raised.price * Decimal(after)).quantize(Decimal("0.01")),
                    reference_price=raised.reference_price,
                    previous_price=(raised.price * Decimal(before)).quantize(Decimal("0.01")),
                    note="原材料上涨调价",
                )
            )
    result = await sweep.run(db, settings)
    async with db.read() as s:
        opened = list(
            (
                await s.execute(
                    select(PriceAlert)
                    .where(PriceAlert.status == AlertStatus.OPEN)
                    .order_by(PriceAlert.kind)
                    .limit(2)
                )
            ).scalars()
        )
    center = principals.get("center1")
    asked = 0
    if center is not None:
        for n, alert in enumerate(opened):
            await service.ask(
                db, settings, center, alert.id, "请说明该商品定价依据，并附电商页面截图或报价单。"
            )
            asked += 1
            supplier = suppliers.get(alert.supplier_org_id)
            if n == 1 and supplier is not None:
                await service.answer(
                    db, supplier, alert.id, "该型号含三年原厂上门保修及安装调试，电商页面价格不含上述服务。"
                )
    return {"opened": result.opened, "asked": asked}
