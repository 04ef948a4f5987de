"""A small supplier's declaration in a real browser: a supplier without a 中小企业声明函 sells once (its
deal counts as no SME's); it files its declaration on its page and is classified as micro; its next deal
counts, and the regulator's SME statistics show the share move from 0% to 50%.

The web server and a worker run as real processes against the test database and Redis.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mall import orders
from mall.core.models import OrgKind
from tests.e2e.conftest import shot
from tests.e2e.pages import signed_in
from tests.e2e.test_cases_browser import submit
from tests.factories import World

pytestmark = pytest.mark.browser


async def _deal(world: World, listing_id: uuid.UUID) -> None:
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_b"],
        orders.CheckoutRequest(world.lines["b1"].id, uuid.uuid4().hex, ((listing_id, "1"),)),
    )
    await orders.confirm(world.db, world.who["supplier_s"], placed[0].id)


async def test_a_small_suppliers_declaration_changes_the_statistics(
    server: str, browser: Any, world: World
) -> None:
    errors: list[str] = []
    await world.org("supplier_s", OrgKind.SUPPLIER, "郑州小微文具店有限公司", sme=None)
    pens = await world.listing("pens", "supplier_s", "500.00", category="A05040101")
    await _deal(world, pens.id)  # before any declaration: not an SME's deal

    regulator = await signed_in(browser, errors, server, "regulator")
    await regulator.goto(f"{server}/sme/statistics")
    assert "乙单位" in await regulator.content()
    assert (await regulator.locator("#sme-total-share").inner_text()).strip() == "0.00%"

    supplier = await signed_in(browser, errors, server, "supplier_s")
    await supplier.goto(f"{server}/sme")
    assert "没有有效的中小企业声明函" in await supplier.content()
    await supplier.select_option("#sme-industry", "retail")
    await supplier.fill("#sme-employees", "6")
    await supplier.fill("#sme-revenue", "abc")
    text = await submit(supplier, "form[action='/sme/declarations']", expect="营业收入应为数字")
    assert await supplier.locator("#sme-employees").input_value() == "6"  # what was typed is kept
    await supplier.fill("#sme-revenue", "85")
    text = await submit(supplier, "form[action='/sme/declarations']", expect="已出具中小企业声明函")
    assert "微型企业" in text and "零售业" in text
    await shot(supplier, "sme-declaration")

    await _deal(world, pens.id)  # under the declaration: a micro enterprise's deal
    await regulator.goto(f"{server}/sme/statistics")
    assert (await regulator.locator("#sme-total-share").inner_text()).strip() == "50.00%"
    assert "1,000.00" in await regulator.locator("#sme-by-buyer").inner_text()
    await shot(regulator, "sme-statistics")
    assert errors == [], errors
