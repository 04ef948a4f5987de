"""One visibility rule for a procedure, the same on the API, the page, the room and the list: the
procedure's own buyer, the center, the regulator and the admin see it; suppliers see it when it is
open to their 品目 or they are invited; another buyer, or a supplier that was not invited, gets the
same 404 everywhere, and never the auction's current lowest price."""

from __future__ import annotations

from typing import Any

from bidding import service
from mall.core.models import OrgKind
from mall.core.settings import Settings
from tests.bidding.live import caller, serve, socket_answer
from tests.factories import World
from tests.security.test_01_inquiry_room_sealed import publish

SEES = {"buyer_a": True, "center": True, "regulator": True, "admin": True, "v1": True, "v2": True}
HIDDEN = {"buyer_b": False, "supplier_x": False, "supplier_y": False}


async def test_api_page_room_and_list_agree(app: Any, world: World, settings: Settings) -> None:
    invited = [await world.org(f"v{i}", OrgKind.SUPPLIER, f"受邀供应商{i}") for i in (1, 2, 3)]
    auction = await publish(world, "auction", invited, decrement="100")
    await service.bid(world.db, invited[0], auction.id, "57321.00")
    inquiry = await publish(world, "inquiry", invited)
    async with serve(app) as base:
        for name, sees in {**SEES, **HIDDEN}.items():
            who = await caller(base, world, name)
            try:
                listed = (await who.get("/procedures")).text
                for p in (auction, inquiry):
                    api = await who.get(f"/api/procedures/{p.id}")
                    page = await who.get(f"/procedures/{p.id}")
                    answer = await socket_answer(
                        base,
                        f"/procedures/{p.id}/room",
                        cookie=who.cookie_header,
                        origin=settings.publication_base_url,
                    )
                    if sees:
                        assert api.status_code == 200 and page.status_code == 200, (name, p.kind)
                        assert str(p.id) in listed, (name, p.kind)
                        if p.kind == "auction":
                            assert api.json()["lowest"] == "57321.00" and answer.messages, name
                    else:
                        assert api.status_code == 404 and api.json()["code"] == "procedure_not_found", (
                            name,
                            api.text,
                        )
                        assert page.status_code == 404, (name, p.kind)
                        assert str(p.id) not in listed, (name, p.kind)
                        assert answer.messages == (), (name, answer)
                        for r in (api, page):
                            assert "57321" not in r.text and "57,321" not in r.text and p.number not in r.text
            finally:
                await who.aclose()
