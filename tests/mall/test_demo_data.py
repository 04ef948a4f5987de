"""The demo data shows the whole mall: its public feed holds deals of all five ways of buying, a
cancellation and failure notices, all made through the real services with the clock moved back."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from mall.core.db import Database
from mall.core.settings import Settings
from mall.devtools import seed
from mall.ledger import disclosure
from mall.ledger.models import DisclosureRecord


@pytest.mark.slow  # (seeds the whole demo history: some seconds)
async def test_the_demo_feed_holds_every_mode_and_every_kind_it_can(
    clean: None, db: Database, settings: Settings
) -> None:
    made = await seed.seed_demo(db, settings, history=10)
    async with db.read() as s:
        rows = list((await s.execute(select(DisclosureRecord).order_by(DisclosureRecord.seq))).scalars())
    assert made["published"] == len(rows)
    modes = Counter(r.mode for r in rows if r.kind == "deal")
    assert set(modes) == {"supermarket", "agreement", "designated", "inquiry", "auction"}, modes
    kinds = Counter(r.kind for r in rows)
    assert kinds["cancellation"] >= 1 and kinds["failure"] == 2, kinds
    failed: Any = Counter(r.mode for r in rows if r.kind == "failure")
    assert failed == {"inquiry": 1, "auction": 1}
    assert (await disclosure.verify_chain(db)).ok
