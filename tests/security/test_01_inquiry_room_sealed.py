"""Until an inquiry's deadline nothing about other quotes leaves the server, through the live room
either: not to the buyer, the center, the regulator, an outsider or a quoting supplier. A supplier
that re-quotes to bracket another's sealed quote learns nothing from any answer. The auction page
embeds its room snapshot as JSON that data cannot break out of."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bidding import offers, room
from mall.core.models import OrgKind
from mall.core.settings import Settings
from tests.bidding.live import caller, serve, socket_answer
from tests.factories import World

ROLES = [
    "buyer_a",
    "buyer_b",
    "center",
    "regulator",
    "sysadmin",
    "secadmin",
    "auditor",
    "supplier_y",
    "s1",
    "s2",
    "s3",
]


async def publish(world: World, kind: str, invited: list[Any], **kw: Any) -> Any:
    """An inquiry or auction of ten desktops, open for an hour to these suppliers."""
    return await world.procedure(kind, invited=invited, **kw)


async def test_the_inquiry_room_reveals_nothing_to_anyone(app: Any, world: World, settings: Settings) -> None:
    quoting = [await world.org(f"s{i}", OrgKind.SUPPLIER, f"询价供应商{i}有限公司") for i in (1, 2, 3)]
    p = await publish(world, "inquiry", quoting)
    await offers.quote(world.db, quoting[0], p.id, "45800.00")  # supplier s1's sealed quote
    origin = settings.public_base_url
    path = f"/procedures/{p.id}/room"
    async with serve(app) as base:
        callers = {name: await caller(base, world, name) for name in ROLES}
        try:
            for name, c in callers.items():
                answer = await socket_answer(base, path, cookie=c.cookie_header, origin=origin)
                assert answer.messages == (), (name, answer)  # refused, or closed before saying anything

            # s2 re-quotes around s1's 45,800 and reads every answer it can get after each quote
            s2 = callers["s2"]
            seen: list[str] = []
            for amount in ("46000.00", "45810.00", "45790.00"):
                r = await s2.request("POST", f"/api/procedures/{p.id}/quotes", json={"amount": amount})
                assert r.status_code == 201, r.text
                seen.append(r.text)
                view = await s2.get(f"/api/procedures/{p.id}")
                seen.append(view.text)
                body = view.json()
                assert body["sealed"] is True and body["ranked"] is None
                assert body["my_rank"] is None and body["bidders"] is None and body["lowest"] is None
                seen.append((await s2.get(f"/procedures/{p.id}")).text)
                answer = await socket_answer(base, path, cookie=s2.cookie_header, origin=origin)
                assert answer.messages == (), answer
            everything = "\n".join(seen)
            assert "45800" not in everything and "45,800" not in everything
            # nothing that ranks or counts: the supplier's own three quotes, and no more
            assert 'my_rank":1' not in everything and 'my_rank":2' not in everything
        finally:
            for c in callers.values():
                await c.aclose()


async def test_no_page_embeds_an_inquiry_snapshot_and_auction_data_cannot_break_out(
    app: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    bidders = [await world.org(f"s{i}", OrgKind.SUPPLIER, f"询价供应商{i}有限公司") for i in (1, 2, 3)]
    inquiry = await publish(world, "inquiry", bidders)
    await offers.quote(world.db, bidders[0], inquiry.id, "45800.00")
    auction = await publish(world, "auction", bidders, decrement="100")
    await offers.bid(world.db, bidders[0], auction.id, "59000.00")

    evil = "</script><script>window.pwned=1</script><!--"
    real_snapshot = room.snapshot

    async def snapshot_with_markup(*args: Any, **kw: Any) -> dict[str, Any]:
        snap = await real_snapshot(*args, **kw)
        # whatever the data holds, it stays data: a reason carrying markup
        snap["my_bids"] = [
            *snap.get("my_bids", []),
            {"amount": None, "at": "", "at_local": "", "status": "refused", "reason": evil},
        ]
        return snap

    monkeypatch.setattr(room, "snapshot", snapshot_with_markup)
    async with serve(app) as base:
        for name in ("buyer_a", "s1", "s2"):
            c = await caller(base, world, name)
            try:
                html = (await c.get(f"/procedures/{inquiry.id}")).text
                assert 'id="room-snapshot"' not in html
                if name != "s1":
                    assert "45800" not in html and "45,800" not in html
                html = (await c.get(f"/procedures/{auction.id}")).text
                assert "window.pwned=1</script>" not in html, name
                m = re.search(
                    r'<script type="application/json" id="room-snapshot">(.*?)</script>', html, re.S
                )
                assert m, name
                snap = json.loads(m.group(1))
                assert snap["my_bids"][-1]["reason"] == evil
                assert "ranks" in snap and snap["lowest"] == "59000.00"
            finally:
                await c.aclose()
