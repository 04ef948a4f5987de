"""The mall's own market prices: for each brand and model (the goods keys of catalog.goods), the
quartiles of the unit prices of real deals over the last `WINDOW_DAYS` days, across suppliers.

A real deal is an order the supplier confirmed (confirmed_at set) and that was not cancelled; the
window counts from the confirmation. Each order line is one sample. A line of a listing takes the
listing's keys; a line without one (an agreement call-off, an award) has its brand and model folded
the same way. The quantiles are computed here, in Python, from a stream sorted by keys and price
(it works alike on SQLite and PostgreSQL, with memory for one group at a time); the few lines
without a listing are gathered first and merged into their group. The table is replaced whole,
in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.goods import brand_key, model_key
from catalog.models import Listing
from mall.core import clock
from mall.core.db import Database
from mall.orders.models import Order, OrderLine, OrderStatus
from mall.pricewatch.models import PriceStat
from mall.pricewatch.rules import WINDOW_DAYS, Market, quantiles

INSERT_BATCH = 2000
STREAM_BATCH = 5000

Key = tuple[str, str]


def _deals(since: datetime) -> Select[Any]:
    return (
        select(OrderLine.unit_price)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            Order.confirmed_at.is_not(None),
            Order.confirmed_at >= since,
            Order.status != OrderStatus.CANCELLED,
        )
    )


async def _unlisted(s: AsyncSession, since: datetime) -> dict[Key, list[Decimal]]:
    """Deal lines with no listing behind them, by their folded keys."""
    out: dict[Key, list[Decimal]] = defaultdict(list)
    stmt = (
        _deals(since).add_columns(OrderLine.brand, OrderLine.spec_model).where(OrderLine.listing_id.is_(None))
    )
    for price, brand, model in await s.execute(stmt):
        key = (brand_key(brand or ""), model_key(model or ""))
        if key[0] and key[1]:
            out[key].append(Decimal(str(price)))
    return out


async def compute(db: Database, *, now: datetime | None = None, window_days: int = WINDOW_DAYS) -> int:
    """Recompute price_stats from the deals of the window; returns how many brand+model rows it wrote."""
    now = now or clock.now()
    since = now - timedelta(days=window_days)
    stmt = (
        _deals(since)
        .add_columns(Listing.brand_key, Listing.model_key)
        .join(Listing, Listing.id == OrderLine.listing_id)
        .order_by(Listing.brand_key, Listing.model_key, OrderLine.unit_price)
    )
    out: list[dict[str, Any]] = []

    def add(key: Key, prices: list[Decimal]) -> None:
        p25, median, p75 = quantiles(sorted(prices))
        out.append(
            {
                "brand_key": key[0],
                "model_key": key[1],
                "samples": len(prices),
                "p25": p25,
                "median": median,
                "p75": p75,
                "window_days": window_days,
                "computed_at": now,
            }
        )

    async with db.read() as s:
        unlisted = await _unlisted(s, since)
        result = await s.stream(stmt.execution_options(yield_per=STREAM_BATCH))
        current: Key | None = None
        prices: list[Decimal] = []
        async for price, bk, mk in result:
            key = (bk, mk)
            if key != current:
                if current is not None and current[0] and current[1]:
                    add(current, prices + unlisted.pop(current, []))
                current, prices = key, []
            prices.append(Decimal(str(price)))
        if current is not None and prices and current[0] and current[1]:
            add(current, prices + unlisted.pop(current, []))
    for key, rest in unlisted.items():
        add(key, rest)
    # One row per brand and model that had deals: what the table holds, written in one transaction.
    async with db.write() as tx:
        await tx.session.execute(delete(PriceStat))
        for i in range(0, len(out), INSERT_BATCH):
            await tx.session.execute(insert(PriceStat), out[i : i + INSERT_BATCH])
    return len(out)


def market_of(stat: PriceStat | None) -> Market | None:
    if stat is None:
        return None
    return Market(stat.samples, stat.p25, stat.median, stat.p75)


async def market_for(s: AsyncSession, bkey: str, mkey: str) -> PriceStat | None:
    """The market statistic of one brand and model, or None where there were no deals."""
    return await s.get(PriceStat, (bkey, mkey))


async def markets_for(s: AsyncSession, keys: list[Key]) -> dict[Key, PriceStat]:
    """The market statistics of several brands and models (a comparison page's offers)."""
    wanted = set(keys)
    if not wanted:
        return {}
    brands = {k[0] for k in wanted}
    rows = (await s.execute(select(PriceStat).where(PriceStat.brand_key.in_(brands)))).scalars()
    return {(r.brand_key, r.model_key): r for r in rows if (r.brand_key, r.model_key) in wanted}
