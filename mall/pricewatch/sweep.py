"""The daily sweep: every live listing against the rules (mall.pricewatch.rules).

It first recomputes the market statistics (mall.pricewatch.stats), then reads the live listings in
batches ordered by id (keyset paging: memory for one batch, whatever the size of the catalogue),
each with its supplier's region and the statistic of its brand and model; the agreement ceilings
are loaded once (few rows). For each batch, in one short write transaction:

- a finding with no live alert of its kind on the listing opens one (status open);
- a finding with a live alert (open, asked, answered) refreshes it: price, reference, detail and
  last_seen_at — the center's work on it (question, answer) stays;
- an alert still `open` whose condition is gone is closed with the note "复查时已不再触发"
  (nobody had started on it). An alert the center already asked about, or that was answered, is
  never closed by the sweep: the center closes it with its own note;
- an alert the center closed is not opened again while the listing's price is the one the alert
  saw (the center judged that price); a new price is judged again.

Then the per-品目-class summary (monitored, flagged) is replaced, and the sweep's row says how many
listings it read and how many alerts it opened, refreshed and closed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, select, update

from catalog.agreement_queries import ceilings_in_force
from catalog.models import Listing, ListingStatus, PriceChange
from mall.core import clock
from mall.core.db import Database, new_id
from mall.core.models import Organization
from mall.core.settings import Settings
from mall.pricewatch import stats
from mall.pricewatch.models import (
    AlertStatus,
    PriceAlert,
    PriceStat,
    PriceSweep,
    PriceWatchSummary,
    SweepStatus,
)
from mall.pricewatch.rules import DEFAULT_LIMITS, Facts, Limits, Market, findings

BATCH = 5000
CLASS_LENGTH = 7  # a 品目 class: the first seven characters of the code (A020101 计算机)
GONE_NOTE = "复查时已不再触发"


def limits_of(settings: Settings | None) -> Limits:
    """The thresholds, from the settings (MALL_PRICEWATCH_*); the defaults without settings."""
    if settings is None:
        return DEFAULT_LIMITS
    d = DEFAULT_LIMITS
    return Limits(
        above_market_share=settings.pricewatch_above_market_share,
        min_samples=settings.pricewatch_min_samples,
        low_share=settings.pricewatch_low_share,
        stale_days=settings.pricewatch_stale_days,
        raise_window_days=d.raise_window_days,
        max_raises=d.max_raises,
    )


@dataclass
class Result:
    sweep_id: uuid.UUID
    listings: int = 0
    opened: int = 0
    refreshed: int = 0
    closed: int = 0
    flagged: int = 0
    stats: int = 0


def _batch_stmt(after: uuid.UUID | None, size: int) -> Any:
    stmt = (
        select(
            Listing.id,
            Listing.price,
            Listing.category_code,
            Listing.supplier_org_id,
            Listing.brand_key,
            Listing.model_key,
            Listing.ecommerce_price,
            Listing.ecommerce_url,
            Listing.ecommerce_captured_on,
            Organization.region_code,
            PriceStat.samples,
            PriceStat.p25,
            PriceStat.median,
            PriceStat.p75,
        )
        .join(Organization, Organization.id == Listing.supplier_org_id)
        .outerjoin(
            PriceStat,
            and_(PriceStat.brand_key == Listing.brand_key, PriceStat.model_key == Listing.model_key),
        )
        # Through a function, so no planner walks the (status, category) index and sorts every live
        # listing for each batch: the primary key gives the id order and the range, the status is a filter.
        .where(func.coalesce(Listing.status, "") == ListingStatus.LIVE)
        .order_by(Listing.id)
        .limit(size)
    )
    if after is not None:
        stmt = stmt.where(Listing.id > after)
    return stmt


ALERTS = cast(Table, PriceAlert.__table__)  # Core statements: executemany, no ORM bookkeeping per row
_REFRESH = (
    update(ALERTS)
    .where(ALERTS.c.id == bindparam("alert_id"), ALERTS.c.status != AlertStatus.CLOSED)
    .values(
        price=bindparam("new_price"),
        reference=bindparam("new_reference"),
        detail=bindparam("new_detail"),
        last_seen_at=bindparam("seen"),
    )
)


async def run(
    db: Database,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
    limits: Limits | None = None,
    with_stats: bool = True,
) -> Result:
    """One sweep over every live listing. Safe to run again: a second run on the same day refreshes
    what the first opened and opens nothing twice."""
    now = now or clock.now()
    limits = limits or limits_of(settings)
    sweep_id = new_id()
    async with db.write() as tx:
        tx.session.add(PriceSweep(id=sweep_id, started_at=now, status=SweepStatus.RUNNING))
    result = Result(sweep_id)
    try:
        await _sweep(db, result, now, batch, limits, with_stats)
    except Exception as exc:
        async with db.write() as tx:
            await tx.session.execute(
                update(PriceSweep)
                .where(PriceSweep.id == sweep_id)
                .values(
                    status=SweepStatus.FAILED,
                    finished_at=clock.now(),
                    error=f"{type(exc).__name__}: {exc}"[:500],
                )
            )
        raise
    async with db.write() as tx:
        await tx.session.execute(
            update(PriceSweep)
            .where(PriceSweep.id == sweep_id)
            .values(
                status=SweepStatus.DONE,
                finished_at=clock.now(),
                listings=result.listings,
                opened=result.opened,
                refreshed=result.refreshed,
            )
        )
    return result


async def _sweep(
    db: Database, result: Result, now: datetime, batch: int, limits: Limits, with_stats: bool
) -> None:
    if with_stats:
        result.stats = await stats.compute(db, now=now, window_days=limits.raise_window_days)
    today = clock.local_date(now)
    raise_since = now - timedelta(days=limits.raise_window_days)
    async with db.read() as s:
        ceilings = await ceilings_in_force(s)
    classes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    after: uuid.UUID | None = None
    while True:
        async with db.read() as s:
            rows = (await s.execute(_batch_stmt(after, batch))).all()
            if not rows:
                break
            first, last = rows[0][0], rows[-1][0]
            raises = dict(
                (
                    await s.execute(
                        select(PriceChange.listing_id, func.count())
                        .where(
                            PriceChange.listing_id >= first,
                            PriceChange.listing_id <= last,
                            PriceChange.at >= raise_since,
                            PriceChange.previous_price.is_not(None),
                            PriceChange.price > PriceChange.previous_price,
                        )
                        .group_by(PriceChange.listing_id)
                        .having(func.count() > limits.max_raises)
                    )
                ).all()
            )
            live = (
                await s.execute(
                    select(PriceAlert.id, PriceAlert.listing_id, PriceAlert.kind, PriceAlert.status).where(
                        PriceAlert.listing_id >= first,
                        PriceAlert.listing_id <= last,
                        PriceAlert.status != AlertStatus.CLOSED,
                    )
                )
            ).all()
            # Alerts the center closed itself: they stay closed while the price is the one it saw.
            settled = set(
                (
                    await s.execute(
                        select(PriceAlert.listing_id, PriceAlert.kind, PriceAlert.price).where(
                            PriceAlert.listing_id >= first,
                            PriceAlert.listing_id <= last,
                            PriceAlert.status == AlertStatus.CLOSED,
                            PriceAlert.closed_by.is_not(None),
                        )
                    )
                ).all()
            )
        after = last
        existing = {(lid, kind): (aid, status) for aid, lid, kind, status in live}
        inserts: list[dict[str, Any]] = []
        refreshes: list[dict[str, Any]] = []
        found: set[tuple[uuid.UUID, str]] = set()
        for row in rows:
            (lid, price, category, supplier, bkey, mkey, e_price, e_url, e_on, region, n, p25, med, p75) = row
            agreement = ceilings.get((bkey, mkey))
            facts = Facts(
                price=price,
                today=today,
                ecommerce_price=e_price,
                ecommerce_captured_on=e_on,
                ecommerce_url=e_url or "",
                market=Market(n, p25, med, p75) if n is not None else None,
                agreement_price=agreement[0] if agreement else None,
                agreement_number=agreement[1] if agreement else "",
                raises=int(raises.get(lid, 0)),
            )
            hits = findings(facts, limits)
            counts = classes[category[:CLASS_LENGTH]]
            counts[0] += 1
            if hits:
                counts[1] += 1
                result.flagged += 1
            for hit in hits:
                found.add((lid, hit.kind))
                had = existing.get((lid, hit.kind))
                if had is None and (lid, hit.kind, price) in settled:
                    continue
                if had is None:
                    inserts.append(
                        {
                            "id": new_id(),
                            "listing_id": lid,
                            "supplier_org_id": supplier,
                            "category_code": category,
                            "region_code": region,
                            "kind": hit.kind,
                            "status": AlertStatus.OPEN,
                            "price": price,
                            "reference": hit.reference,
                            "detail": hit.detail,
                            "opened_at": now,
                            "last_seen_at": now,
                            "answer": "",
                            "close_note": "",
                        }
                    )
                else:
                    refreshes.append(
                        {
                            "alert_id": had[0],
                            "new_price": price,
                            "new_reference": hit.reference,
                            "new_detail": hit.detail,
                            "seen": now,
                        }
                    )
        gone = [
            aid for key, (aid, status) in existing.items() if status == AlertStatus.OPEN and key not in found
        ]
        result.listings += len(rows)
        if inserts or refreshes or gone:
            async with db.write() as tx:
                if inserts:
                    await tx.session.execute(insert(ALERTS), inserts)
                if refreshes:
                    await tx.session.execute(_REFRESH, refreshes)
                if gone:
                    await tx.session.execute(
                        update(ALERTS)
                        .where(ALERTS.c.id.in_(gone), ALERTS.c.status == AlertStatus.OPEN)
                        .values(status=AlertStatus.CLOSED, closed_at=now, close_note=GONE_NOTE)
                    )
        result.opened += len(inserts)
        result.refreshed += len(refreshes)
        result.closed += len(gone)
        if len(rows) < batch:
            break
    async with db.write() as tx:
        await tx.session.execute(delete(PriceWatchSummary))
        summary = [
            {"category_class": cls, "monitored": m, "flagged": f, "computed_at": now}
            for cls, (m, f) in sorted(classes.items())
        ]
        if summary:
            await tx.session.execute(insert(PriceWatchSummary), summary)


async def last_sweep(db: Database) -> PriceSweep | None:
    """The latest finished sweep."""
    async with db.read() as s:
        return await s.scalar(
            select(PriceSweep)
            .where(PriceSweep.status == SweepStatus.DONE)
            .order_by(PriceSweep.started_at.desc())
            .limit(1)
        )


async def swept_on(db: Database, day: datetime) -> bool:
    """Whether a sweep finished on this day (China time) already: the daily job runs once a day."""
    start = datetime.combine(clock.local_date(day), datetime.min.time(), clock.SHANGHAI)
    async with db.read() as s:
        found = await s.scalar(
            select(PriceSweep.id)
            .where(PriceSweep.status == SweepStatus.DONE, PriceSweep.started_at >= start)
            .limit(1)
        )
    return found is not None
