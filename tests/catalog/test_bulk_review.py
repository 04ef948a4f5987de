"""The center's 批量通过: the ticked listings approved one by one as the reviewer saw them; one that
changed since is named with why and the others go live. Reference sources that are web addresses
are links."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from catalog.models import Listing, ListingStatus
from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, login, post_form


async def test_bulk_approval_takes_each_as_seen(client: Any, world: World) -> None:
    a = await world.listing("scan-a", "supplier_y", "900.00", live=False)
    b = await world.listing("scan-b", "supplier_y", "950.00", live=False)
    c = await world.listing("scan-c", "supplier_x", "990.00", live=False)
    await login(client, "center")
    queue = assert_page(await client.get("/center/listings", headers=HTML))
    assert f'name="pick_{a.id}" value="900.00|900.00"' in queue and 'form="bulk-approve"' in queue
    # the supplier lowers c's price after the center looked: c is refused, named, and stays in review
    async with world.db.write() as tx:
        row = await tx.session.get(Listing, c.id)
        assert row is not None
        row.price = Decimal("980.00")
    picks = {f"pick_{x.id}": f"{x.price}|{x.reference_price}" for x in (a, b, c)}
    r = await post_form(client, "/center/listings/approve-many", picks)
    assert r.status_code == 303
    page = assert_page(await client.get("/center/listings", headers=HTML))
    assert "已批量通过 2 件商品" in page and "1 件未能通过：「商品scan-c」" in page
    async with world.db.read() as s:
        states = {x.id: (await s.get(Listing, x.id)).status for x in (a, b, c)}  # type: ignore[union-attr]
    assert states == {a.id: ListingStatus.LIVE, b.id: ListingStatus.LIVE, c.id: ListingStatus.SUBMITTED}
    # nothing ticked: said, nothing done; a supplier cannot post it
    r = await post_form(client, "/center/listings/approve-many", {})
    assert "请先勾选要通过的商品" in assert_page(await client.get("/center/listings", headers=HTML))
    await login(client, "supplier_x")
    r = await post_form(client, "/center/listings/approve-many", {f"pick_{c.id}": "980.00|990.00"})
    assert r.status_code == 403


async def test_a_reference_source_that_is_a_web_address_is_a_link(client: Any, world: World) -> None:
    laptop = world.listings["laptop"]
    source = "https://item.jd.com/100012043978.html"
    r = await client.post(
        f"/api/listings/{laptop.id}/price",
        json={"price": "4990.00", "reference_price": "5100.00", "reference_source": source},
        headers=world.h("supplier_x"),
    )
    assert r.status_code in (200, 202), r.text
    await login(client, "center")
    page = assert_page(await client.get("/center/listings?status=prices", headers=HTML))
    assert 'href="https://item.jd.com/100012043978.html" rel="noopener noreferrer nofollow"' in page
    assert ">item.jd.com<" in page
    # anything else is text, never a link (javascript: and the like included)
    r = await client.post(
        f"/api/listings/{world.listings['printer'].id}/price",
        json={"price": "1190.00", "reference_price": "1300.00", "reference_source": "javascript:alert(1)"},
        headers=world.h("supplier_x"),
    )
    assert r.status_code in (200, 202), r.text
    page = assert_page(await client.get("/center/listings?status=prices", headers=HTML))
    assert 'href="javascript' not in page and "javascript:alert(1)" in page
