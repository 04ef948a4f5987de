"""Inquiry and auction notices are public to visitors who are not logged in: the notice (items,
ceiling, deadline, eligibility) while open, nothing of the offers, not even an auction's lowest
price or its number of bidders (the room is for participants); the ranked result once closed.
Procedures by invitation, drafts and withdrawn ones stay private."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bidding import close, offers
from mall.core import clock
from mall.core.models import OrgKind
from tests.factories import World, frozen_at
from tests.mall.test_pages import HTML, assert_page


async def test_visitors_read_public_notices_and_results_never_offers(client: Any, world: World) -> None:
    invited = [await world.org(f"v{i}", OrgKind.SUPPLIER, f"受邀供应商{i}") for i in (1, 2, 3)]
    await world.listing("pc-y", "supplier_y", "4000.00", category="A02010105")  # y sells computers too
    start = clock.now()
    with frozen_at(start):
        inquiry = await world.procedure("inquiry", "公开询价：打印机", hours=1)
        auction = await world.procedure("auction", "公开竞价：台式机", decrement="100", hours=1)
        private = await world.procedure("inquiry", "邀请询价：投影仪", invited=invited, hours=1)
        x, y = world.who["supplier_x"], world.who["supplier_y"]  # live in the 品目: eligible
        await offers.quote(world.db, x, inquiry.id, "51234.00")
        await offers.bid(world.db, x, auction.id, "57321.00")
        await offers.bid(world.db, y, auction.id, "57000.00")

        listed = assert_page(await client.get("/procedures", headers=HTML))
        assert inquiry.number in listed and auction.number in listed and private.number not in listed
        assert "公开公告" in listed
        for p in (inquiry, auction):
            page = assert_page(await client.get(f"/procedures/{p.id}", headers=HTML))
            assert p.title in page and "最高限价" in page and "截止时间" in page
            for secret in ("51234", "51,234", "57321", "57,321", "57000", "57,000"):
                assert secret not in page, (p.kind, secret)
            assert 'id="room"' not in page and "room-snapshot" not in page and "出价供应商" not in page
        assert_page(await client.get(f"/procedures/{private.id}", headers=HTML), 404)
        nav = assert_page(await client.get("/", headers=HTML))
        assert 'href="/procedures"' in nav and 'href="/designated"' in nav

    # Closed: the auction's ranked bids are its published result, for everyone.
    with frozen_at(start + timedelta(hours=1, minutes=1)):
        await close.close(world.db, auction.id)
        page = assert_page(await client.get(f"/procedures/{auction.id}", headers=HTML))
        assert "¥57,000.00" in page and "¥57,321.00" in page
        assert "⚠" not in page  # the review's flags are not part of the public result
