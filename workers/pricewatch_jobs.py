"""The price monitoring job: the daily sweep over every live listing (mall.pricewatch.sweep).

The cron enqueues it on its slow tick; it sweeps only when no sweep finished today (China time), so
enqueuing it often is harmless and a day missed while the workers were down is caught up at once."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from mall.core import clock
from mall.core.db import Database
from mall.core.settings import Settings
from mall.pricewatch import sweep
from workers import runtime

log = logging.getLogger("mall.jobs")


async def sweep_if_due(db: Database, settings: Settings) -> dict[str, Any] | None:
    """Sweep unless a sweep finished today already; what it did, or None when it was not due."""
    if await sweep.swept_on(db, clock.now()):
        return None
    result = await sweep.run(db, settings)
    log.info(
        "price sweep: %d listings, %d alerts opened, %d refreshed, %d closed",
        result.listings,
        result.opened,
        result.refreshed,
        result.closed,
    )
    return {**asdict(result), "sweep_id": str(result.sweep_id)}


def price_sweep() -> dict[str, Any] | None:
    """The daily price sweep (once a day; see sweep_if_due)."""
    return runtime.run(sweep_if_due)
