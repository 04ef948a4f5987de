"""The demo data shows the whole mall: its public feed holds deals of all five ways of buying, a
cancellation, a correction and failure notices, and the regulator's every list has a case, all made
through the real services with the clock moved back."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from mall import oversight
from mall.core import clock
from mall.core.db import Database
from mall.core.settings import Settings
from mall.devtools import seed
from mall.ledger import disclosure
from mall.ledger.models import DisclosureRecord
from mall.orders.models import OrderClaim


@pytest.mark.slow  # (seeds the whole demo history: some seconds)
async def test_the_demo_feed_holds_every_mode_and_every_kind_it_can(
    clean: None, db: Database, settings: Settings
) -> None:
    made = await seed.seed_demo(db, settings)  # the history `mall run` makes
    async with db.read() as s:
        rows = list((await s.execute(select(DisclosureRecord).order_by(DisclosureRecord.seq))).scalars())
    assert made["published"] == len(rows)
    modes = Counter(r.mode for r in rows if r.kind == "deal")
    assert set(modes) == {"supermarket", "agreement", "designated", "inquiry", "auction"}, modes
    assert modes["agreement"] >= 2  # the agreement's summary has more than one deal
    kinds = Counter(r.kind for r in rows)
    assert kinds["cancellation"] >= 1 and kinds["correction"] >= 1 and kinds["failure"] == 2, kinds
    assert len(rows) > 40  # the public list pages (20 a page)
    failed: Any = Counter(r.mode for r in rows if r.kind == "failure")
    assert failed == {"inquiry": 1, "auction": 1}
    assert (await disclosure.verify_chain(db)).ok

    # every list of the regulator's page has a case
    now = clock.now()
    async with db.read() as s:
        overview = await oversight.overview(s, settings, now)
    # the split purchases made on purpose: three orders of the history (YY-2026-025), joined by any
    # history order of the same class, and those the supervision demo makes for its cases (JY-2026-001)
    assert sorted(c.project_code for c in overview.split_cases) == ["JY-2026-001", "YY-2026-025"]
    assert all(c.orders >= 3 for c in overview.split_cases)
    assert overview.late_paid and overview.unfiled and overview.overdue_reviews and overview.unpaid
    assert overview.watch.low_offers and overview.watch.failed and overview.watch.decliners

    # sanctions in force: a suspension (an upheld report) and a warning; a report waiting
    from mall.sanctions import service as sanctions
    from mall.sanctions.models import ReportStatus, ViolationReport

    async with db.read() as s:
        total, in_force = await sanctions.public_list(s)
        waiting = (
            await s.execute(select(ViolationReport).where(ViolationReport.status == ReportStatus.SUBMITTED))
        ).scalars()
        assert total == 2 and sorted(x.kind for x, _ in in_force) == ["suspension", "warning"]
        assert len(list(waiting)) == 1

    # credit: every supplier scored; the history's declines, lapses and claims count against some
    from mall.credit.models import CreditEvent, SupplierCredit

    async with db.read() as s:
        scored = list((await s.execute(select(SupplierCredit))).scalars())
        kinds = Counter(e.kind for e in (await s.execute(select(CreditEvent))).scalars())
    assert made["credit_scores"] == len(scored) >= 8
    assert kinds["after_sales_claim"] == 2 and sum(kinds.values()) > 2, kinds
    assert len({c.score for c in scored}) > 1  # the scores tell suppliers apart
    assert made["blacklisted"] == 2  # a public blacklist, naming no registered supplier
    # green and imported products; a mandatory 品目 (laptops) with certified and uncertified listings
    assert made["energy_certified"] > 5 and made["eco_certified"] > 2 and made["imported"] >= 1, made
    from catalog import policy
    from catalog.models import Listing

    async with db.read() as s:
        laptops = list(
            (await s.execute(select(Listing).where(Listing.category_code == "A02010108"))).scalars()
        )
    assert policy.needs_energy_certificate("A02010108")
    assert {bool(x.energy_cert_no) for x in laptops} == {True, False}

    # after-sales: a repair answered and resolved, an exchange waiting for the supplier's answer
    async with db.read() as s:
        statuses = sorted(
            (c.status, c.outcome or "") for c in (await s.execute(select(OrderClaim))).scalars()
        )
    assert statuses == [("closed", "resolved"), ("open", "")], statuses

    # signed contracts (each verifiable, signed by both where the order went past signing), their
    # notices, and messages in the parties' message centres once the worker delivers them
    from mall.contracts import service as contracts
    from mall.contracts import signing
    from mall.core import files
    from mall.notices.models import Notice
    from mall.notify import deliver
    from mall.notify.models import Notification
    from mall.orders.models import Order

    async with db.read() as s:
        signed = list(
            (
                await s.execute(select(Order).where(Order.signed_at.is_not(None)).order_by(Order.signed_at))
            ).scalars()
        )
        one_side = (
            (
                await s.execute(
                    select(Order).where(
                        Order.supplier_signed_at.is_not(None), Order.buyer_signed_at.is_(None)
                    )
                )
            )
            .scalars()
            .first()
        )
        notices = list((await s.execute(select(Notice))).scalars())
        data = await contracts.current_pdf(files.store_for(settings, db), signed[-1])
    assert len(signed) > 20 and one_side is not None
    assert {n.kind for n in notices} >= {"contract"} and made["notices"] == len(notices)
    assert data is not None
    assert (await signing.verify(data, await signing.LocalSigner(db).trust_roots())).signed_by_both
    while await deliver.deliver_pending(db):
        pass
    async with db.read() as s:
        assert len(list((await s.execute(select(Notification).limit(50))).scalars())) == 50
