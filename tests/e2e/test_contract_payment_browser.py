"""From the deal to the payment in a real browser: both parties sign the e-contract, the 合同公告 is
published, the supplier ships in two deliveries, the buyer receives them and accepts with a report,
the supplier records an invoice, the buyer confirms it and pays; each party's message centre shows
the steps that came to it.

The web server and a worker run as real processes against the test database and Redis.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mall import orders
from mall.core import clock
from mall.orders.models import Order
from tests.e2e.conftest import new_page, require_chromium, shot
from tests.e2e.pages import signed_in, wait_until_shown
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def submit(page: Any, form: str, *, expect: str) -> str:
    """Submit the form the selector names; the page it lands on must say `expect`."""
    await page.click(f"{form} button[type=submit]")
    await page.wait_for_load_state("networkidle")
    text = str(await page.content())
    if expect not in text:
        flash = await page.locator(".flash, .note-danger, [role=alert]").all_inner_texts()
        raise AssertionError(f"{form}: expected {expect!r}; the page says {flash}")
    return text


async def test_sign_publish_deliver_accept_invoice_and_pay(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    buyer_who, supplier_who = world.who["buyer_a"], world.who["supplier_x"]
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        buyer_who,
        orders.CheckoutRequest(
            world.lines["a1"].id,
            uuid.uuid4().hex,
            ((world.listings["printer"].id, "3"),),
            delivery_address="甲单位 行政楼 201 张三 13800138000",
        ),
    )
    order_id = placed[0].id
    await orders.confirm(world.db, supplier_who, order_id)
    async with world.db.read() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        contract_no, line_id, total = order.contract_no, order.lines[0].id, order.total_amount
    url = f"{server}/orders/{order_id}"
    sign = f"form[action='/orders/{order_id}/sign']"

    # The supplier signs first, with its own certificate; the buyer then signs too.
    supplier = await signed_in(browser, errors, server, "supplier_x")
    await supplier.goto(url)
    await submit(supplier, sign, expect="等待对方签署")
    buyer = await signed_in(browser, errors, server, "buyer_a")
    await buyer.goto(url)
    assert "对方已签署" in await buyer.content()
    await submit(buyer, sign, expect="合同已签订，待备案")
    await buyer.goto(f"{url}/contract")
    text = await buyer.content()
    assert "核验通过" in text and "防篡改签名" in text and "甲单位" in text
    await shot(buyer, "contract-01-signed-by-both")

    # The 合同公告 appears on the public list (the worker publishes it), without personal data.
    public = await new_page(browser, errors)
    assert contract_no
    await wait_until_shown(public, f"{server}/notices", "按时发布", "the contract notice")
    await public.click("table a[href^='/notices/']")
    await public.wait_for_load_state("networkidle")
    notice = await public.content()
    assert contract_no in notice and "13800138000" not in notice and "张三" not in notice
    await shot(public, "contract-02-notice")

    # The buyer files the contract; the supplier ships two of three, then the last one.
    await buyer.goto(url)
    await submit(buyer, f"form[action='/orders/{order_id}/file-contract']", expect="合同已备案")
    await supplier.goto(url)
    await supplier.fill(f"#qty_{line_id}", "2")
    await supplier.fill("#ship-carrier", "顺丰速运")
    await supplier.fill("#ship-tracking", "SF1234567890")
    await submit(supplier, "#ship form", expect="第 1 批")
    # A wrong input: shipping more than remains is refused with a message, nothing changes.
    await supplier.fill(f"#qty_{line_id}", "5")
    await supplier.evaluate(f"document.getElementById('qty_{line_id}').removeAttribute('max')")
    await supplier.fill("#ship-carrier", "顺丰速运")
    await supplier.fill("#ship-tracking", "SF1234567891")
    text = await submit(supplier, "#ship form", expect="第 1 批")
    assert "第 2 批" not in text
    await shot(supplier, "contract-03-ship-refused")
    await supplier.fill(f"#qty_{line_id}", "1")
    await supplier.fill("#ship-carrier", "顺丰速运")
    await supplier.fill("#ship-tracking", "SF1234567892")
    await submit(supplier, "#ship form", expect="第 2 批")

    # The buyer receives both deliveries and accepts with a report naming the inspectors.
    await buyer.goto(url)
    await submit(buyer, "#receive-1 form", expect="第 2 批")
    await submit(buyer, "#receive-2 form", expect="验收")
    await buyer.fill("#inspectors", "李四\n王五")
    await buyer.select_option("#score", "5")
    await submit(buyer, "#accept form", expect="已验收")
    await shot(buyer, "contract-04-accepted")
    await buyer.click("a[href*='/acceptance-reports/']")
    await buyer.wait_for_load_state("networkidle")
    report = await buyer.content()
    assert "验收单" in report and "李四" in report and "合格" in report
    await shot(buyer, "contract-05-acceptance-report")

    # The supplier records a 全电发票 for the whole amount; the buyer confirms it and pays.
    await supplier.goto(url)
    await supplier.click("#invoice summary")
    year = clock.local_date(clock.now()).strftime("%y")
    await supplier.fill("#invoice-no", f"{year}440000000000000123")
    await supplier.fill("#invoice-amount", f"{total:.2f}")
    await submit(supplier, "#invoice form", expect="发票")
    await buyer.goto(url)
    await buyer.click("form[action$='/invoice-confirm'] button[type=submit]")
    await buyer.wait_for_load_state("networkidle")
    await buyer.fill("#voucher_no", "abc")  # a wrong voucher number: refused, with the format
    await buyer.fill("#pay-amount", f"{total:.2f}")
    text = await submit(buyer, "#pay form", expect="凭证")
    assert "已付款" not in text
    await buyer.fill("#voucher_no", "GK2026-0001")
    await buyer.fill("#pay-amount", f"{total:.2f}")
    await submit(buyer, "#pay form", expect="已付款")
    await shot(buyer, "contract-06-paid")

    # Each party's message centre shows what came to it along the way.
    await wait_until_shown(supplier, f"{server}/messages", "已登记付款", "the supplier's payment message")
    text = await supplier.content()
    for title in ("合同待签订", "合同已备案，待发货", "订单已验收", "发票已确认", "已登记付款"):
        assert title in text, title
    await shot(supplier, "contract-07-supplier-messages")
    await wait_until_shown(buyer, f"{server}/messages", "发票待确认", "the buyer's invoice message")
    text = await buyer.content()
    for title in ("合同待签订", "到货待收货验收", "发票待确认"):
        assert title in text, title
    await shot(buyer, "contract-08-buyer-messages")
    assert errors == [], errors
