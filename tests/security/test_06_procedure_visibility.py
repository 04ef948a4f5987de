"""One visibility rule for a procedure, the same on the API, the page, the room and the lists: the
procedure's own buyer, the center and the regulator see it; suppliers see it when it is open to their
品目 or they are invited; another buyer, a supplier that was not invited, or one of the platform's
administrators (whose duties are not the business), gets the same 404 everywhere, and never the
auction's current lowest price."""

from __future__ import annotations

from typing import Any

import pytest

from bidding import offers
from mall.core.models import OrgKind
from mall.core.settings import Settings
from tests.bidding.live import caller, serve, socket_answer
from tests.factories import World
from tests.security.test_01_inquiry_room_sealed import publish

SEES = {"buyer_a": True, "center": True, "regulator": True, "v1": True, "v2": True}
HIDDEN = {"buyer_b": False, "supplier_x": False, "supplier_y": False, "sysadmin": False, "auditor": False}


@pytest.mark.slow
async def test_api_page_room_and_list_agree(app: Any, world: World, settings: Settings) -> None:
    invited = [await world.org(f"v{i}", OrgKind.SUPPLIER, f"受邀供应商{i}") for i in (1, 2, 3)]
    auction = await publish(world, "auction", invited, decrement="100")
    await offers.bid(world.db, invited[0], auction.id, "57321.00")
    inquiry = await publish(world, "inquiry", invited)
    async with serve(app) as base:
        for name, sees in {**SEES, **HIDDEN}.items():
            who = await caller(base, world, name)
            try:
                listed = (await who.get("/procedures")).text
                api_list = await who.get("/api/procedures", params={"per_page": "100"})
                assert api_list.status_code == 200, (name, api_list.text)
                api_listed = {i["id"] for i in api_list.json()["items"]}
                assert "57321" not in api_list.text  # a list carries the notices, never an offer
                for p in (auction, inquiry):
                    api = await who.get(f"/api/procedures/{p.id}")
                    page = await who.get(f"/procedures/{p.id}")
                    answer = await socket_answer(
                        base,
                        f"/procedures/{p.id}/room",
                        cookie=who.cookie_header,
                        origin=settings.public_base_url,
                    )
                    if sees:
                        assert api.status_code == 200 and page.status_code == 200, (name, p.kind)
                        assert str(p.id) in listed and str(p.id) in api_listed, (name, p.kind)
                        if p.kind == "auction":
                            assert api.json()["lowest"] == "57321.00" and answer.messages, name
                    else:
                        assert api.status_code == 404 and api.json()["code"] == "procedure_not_found", (
                            name,
                            api.text,
                        )
                        assert page.status_code == 404, (name, p.kind)
                        assert str(p.id) not in listed and str(p.id) not in api_listed, (name, p.kind)
                        assert answer.messages == (), (name, answer)
                        for r in (api, page):
                            assert "57321" not in r.text and "57,321" not in r.text and p.number not in r.text
            finally:
                await who.aclose()


async def test_writes_answer_an_outsider_as_reads_do(client: Any, world: World) -> None:
    """A supplier that may not see an invitation-only procedure gets the same 404 from every write
    (quote, withdrawal, bid, confirmation, declining) as from the reads: a 403 `not_eligible` or a
    409 `no_award` would tell it that the procedure exists."""
    invited = [await world.org(f"v{i}", OrgKind.SUPPLIER, f"受邀供应商{i}") for i in (1, 2, 3)]
    inquiry = await publish(world, "inquiry", invited)
    auction = await publish(world, "auction", invited, decrement="100")
    outsider = world.h("supplier_x")
    amount = {"amount": "50000.00"}
    for method, path, body in (
        ("POST", f"/api/procedures/{inquiry.id}/quotes", amount),
        ("DELETE", f"/api/procedures/{inquiry.id}/quotes", None),
        ("POST", f"/api/procedures/{auction.id}/bids", amount),
        ("POST", f"/api/procedures/{inquiry.id}/award/confirm", {"unit_prices": {}}),
        ("POST", f"/api/procedures/{inquiry.id}/award/decline", None),
        ("POST", f"/api/procedures/{auction.id}/award/decline", None),
    ):
        r = await client.request(method, path, json=body, headers=outsider)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["code"] == "procedure_not_found", (method, path, r.text)
    # An invited supplier is told what is really wrong.
    r = await client.post(f"/api/procedures/{inquiry.id}/award/decline", headers=world.h("v1"))
    assert r.status_code == 409 and r.json()["code"] == "no_award", r.text


async def test_a_sealed_quote_has_a_bounded_number_of_revisions(client: Any, world: World) -> None:
    invited = [await world.org(f"v{i}", OrgKind.SUPPLIER, f"受邀供应商{i}") for i in (1, 2, 3)]
    inquiry = await publish(world, "inquiry", invited)
    path = f"/api/procedures/{inquiry.id}/quotes"
    for i in range(offers.QUOTE_REVISIONS_MAX - 1):
        r = await client.post(path, json={"amount": f"{50000 - i}.00"}, headers=world.h("v1"))
        assert r.status_code == 201, r.text
    r = await client.delete(path, headers=world.h("v1"))  # a withdrawal is a revision too
    assert r.status_code == 200, r.text
    r = await client.post(path, json={"amount": "40000.00"}, headers=world.h("v1"))
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "too_many_revisions" and "20" in r.json()["detail"]
    # The other suppliers are not affected.
    r = await client.post(path, json={"amount": "45000.00"}, headers=world.h("v2"))
    assert r.status_code == 201, r.text


async def test_an_outsider_logged_in_reads_a_public_notice_as_a_visitor_does(
    app: Any, world: World, settings: Settings
) -> None:
    """A public notice (open to every supplier of its 品目) is public: another buyer or one of the
    platform's administrators reads its page and API answer while logged in, as a visitor does —
    the notice, never the lowest price or the number of bidders, and not the room; it stays out of
    their lists (those are of the procedures they take part in)."""
    await world.listing("pc-y", "supplier_y", "4000.00", category="A02010105")
    auction = await world.procedure("auction", "公开竞价：台式机", decrement="100", hours=1)
    await offers.bid(world.db, world.who["supplier_x"], auction.id, "57321.00")
    async with serve(app) as base:
        for name, party in {
            "buyer_a": True,
            "supplier_y": True,
            "center": True,
            "buyer_b": False,
            "sysadmin": False,
            "auditor": False,
        }.items():
            who = await caller(base, world, name)
            try:
                api = await who.get(f"/api/procedures/{auction.id}")
                page = await who.get(f"/procedures/{auction.id}")
                assert api.status_code == 200 and page.status_code == 200, (name, api.text)
                answer = await socket_answer(
                    base,
                    f"/procedures/{auction.id}/room",
                    cookie=who.cookie_header,
                    origin=settings.public_base_url,
                )
                listed = (await who.get("/api/procedures", params={"per_page": "100"})).json()["items"]
                if party:
                    assert api.json()["lowest"] == "57321.00" and answer.messages, name
                    assert str(auction.id) in {i["id"] for i in listed}, name
                else:
                    assert api.json()["lowest"] is None and api.json()["bidders"] is None, (name, api.text)
                    assert answer.messages == (), (name, answer)
                    for r in (api, page):
                        assert "57321" not in r.text and "57,321" not in r.text, name
                    assert 'id="room"' not in page.text and auction.title in page.text
                    assert str(auction.id) not in {i["id"] for i in listed}, name
            finally:
                await who.aclose()
