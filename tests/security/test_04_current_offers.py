"""Ranks and the current lowest price come from each supplier's current valid offer only: a quote
that was withdrawn, or revised, or a bid that was superseded by the same supplier's later bid, never
counts — on the API, on the page and in the room."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bidding import close, offers
from mall.core import clock
from mall.core.models import OrgKind
from mall.core.settings import Settings
from tests.bidding.live import caller, serve, socket_answer
from tests.factories import World
from tests.security.test_01_inquiry_room_sealed import publish


async def test_a_withdrawn_or_revised_quote_never_ranks(app: Any, world: World, settings: Settings) -> None:
    w, r, c, d = [await world.org(n, OrgKind.SUPPLIER, f"排名供应商{n}") for n in ("w", "r", "c", "d")]
    p = await publish(world, "inquiry", [w, r, c, d])
    await offers.quote(world.db, w, p.id, "40000.00")
    await offers.withdraw(world.db, w, p.id)  # the lowest quote, withdrawn
    await offers.quote(world.db, r, p.id, "41000.00")
    await offers.quote(world.db, r, p.id, "47000.00")  # revised upwards: 41,000 no longer counts
    await offers.quote(world.db, c, p.id, "45000.00")
    await offers.quote(world.db, d, p.id, "46000.00")

    clock.clock.freeze(clock.now() + timedelta(hours=2))
    try:
        async with serve(app) as base:
            for closed in (False, True):  # after the deadline, then after closing
                if closed:
                    assert (await close.close(world.db, p.id)).awarded_supplier_id == c.org_id
                for name in ("buyer_a", "r", "w"):
                    who = await caller(base, world, name)
                    try:
                        view = (await who.get(f"/api/procedures/{p.id}")).json()
                        assert [q["amount"] for q in view["ranked"]] == ["45000.00", "46000.00", "47000.00"]
                        ranks = {
                            q["label"].removeprefix("供应商 #"): n for n, q in enumerate(view["ranked"], 1)
                        }
                        html = (await who.get(f"/procedures/{p.id}")).text
                        assert "45,000.00" in html and "40,000.00" not in html and "41,000.00" not in html
                        answer = await socket_answer(
                            base,
                            f"/procedures/{p.id}/room",
                            cookie=who.cookie_header,
                            origin=settings.public_base_url,
                        )
                        if answer.messages:  # a room that answers must rank as the result does
                            snap = answer.first_json()
                            assert snap.get("ranks") == ranks, (name, closed, snap, ranks)
                    finally:
                        await who.aclose()
    finally:
        clock.clock.unfreeze()


async def test_superseded_bids_never_count(app: Any, world: World, settings: Settings) -> None:
    x, y, z = [await world.org(n, OrgKind.SUPPLIER, f"竞价供应商{n}") for n in ("x", "y", "z")]
    p = await publish(world, "auction", [x, y, z], decrement="100")
    await offers.bid(world.db, x, p.id, "59000.00")
    await offers.bid(world.db, y, p.id, "58500.00")
    await offers.bid(world.db, z, p.id, "58800.00")
    await offers.bid(world.db, x, p.id, "58000.00")  # x's 59,000 is superseded
    async with serve(app) as base:
        for name, rank in (("x", 1), ("y", 2), ("z", 3)):
            who = await caller(base, world, name)
            try:
                view = (await who.get(f"/api/procedures/{p.id}")).json()
                assert (view["lowest"], view["my_rank"], view["bidders"]) == ("58000.00", rank, 3)
                snap = (
                    await socket_answer(
                        base,
                        f"/procedures/{p.id}/room",
                        cookie=who.cookie_header,
                        origin=settings.public_base_url,
                    )
                ).first_json()
                assert snap["lowest"] == "58000.00" and snap["bidders"] == 3 and snap["my_rank"] == rank
                assert sorted(snap["ranks"].values()) == [1, 2, 3]
            finally:
                await who.aclose()
