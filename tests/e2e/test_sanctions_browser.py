"""A sanction in a real browser: a buyer reports a supplier with a PDF of evidence; the center reads
it and upholds it with a three-month suspension; the supplier's listing leaves the search, and its
bid in an auction room is refused with the decision named; the public list shows the sanction.

The web server and a worker run as real processes against the test database and Redis.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from mall.core.models import OrgKind
from mall.sanctions.models import ReportStatus, ViolationReport
from tests.e2e.conftest import indexed, shot
from tests.e2e.pages import signed_in
from tests.e2e.test_cases_browser import submit
from tests.factories import World

pytestmark = pytest.mark.browser


async def test_a_report_leads_to_a_suspension_that_binds_search_and_bids(
    server: str, browser: Any, world: World, tmp_path: Path
) -> None:
    errors: list[str] = []
    third = await world.org("supplier_z", OrgKind.SUPPLIER, "丙供应商有限公司")
    auction = await world.procedure(
        "auction",
        "办公台式计算机竞价项目",
        invited=[world.who["supplier_x"], world.who["supplier_y"], third],
        decrement="100",
        hours=2,
    )
    laptop = world.listings["laptop"]
    await indexed(world)

    buyer = await signed_in(browser, errors, server, "buyer_a")
    await buyer.goto(f"{server}/goods?q=商品laptop")
    assert await buyer.locator(f"#results a[href='/goods/{laptop.id}']").count() == 1

    evidence = tmp_path / "催告函.pdf"
    evidence.write_bytes("%PDF-1.4\n% 2026-11-20 催告函：请于三日内供货\n".encode())
    await buyer.goto(f"{server}/sanctions/reports/new")
    await buyer.select_option("#report-supplier", str(world.who["supplier_x"].org_id))
    await buyer.select_option("#report-reason", "not_delivered")
    await buyer.fill("#report-description", "11月10日成交的笔记本电脑，至今未供货，两次书面催告无回复。")
    await buyer.set_input_files("#report-evidence", str(evidence))
    await shot(buyer, "sanction-report-form")
    text = await submit(buyer, "form[action='/sanctions/reports']", expect="举报已提交")
    assert "催告函.pdf" in text and "待处理" in text
    async with world.db.read() as s:
        from sqlalchemy import select

        report = (await s.execute(select(ViolationReport))).scalar_one()

    center = await signed_in(browser, errors, server, "center")
    await center.goto(f"{server}/sanctions/reports")
    assert report.report_no in await center.content()
    await center.click(f"a[href='/sanctions/reports/{report.id}']")
    await center.wait_for_load_state("networkidle")
    async with center.expect_download() as download:
        await center.click(f"a[href='/sanctions/reports/{report.id}/evidence/1']")
    assert (await (await download.value).path()).read_bytes() == evidence.read_bytes()
    await center.select_option("#report-outcome", "upheld")
    await center.fill("#report-decision-reason", "经核实，成交后逾期未供货且无正当理由。")
    await center.select_option("#report-kind", "suspension")
    await center.fill("#report-months", "3")
    await center.fill("#report-basis", "《政府采购法》第七十七条")
    text = await submit(
        center, f"form[action='/sanctions/reports/{report.id}/decision']", expect="已登记处理结论"
    )
    assert "查证属实" in text
    await shot(center, "sanction-report-upheld")
    async with world.db.read() as s:
        decided = await s.get(ViolationReport, report.id)
    assert decided is not None and decided.status == ReportStatus.UPHELD and decided.sanction_id

    # the listing leaves the search (through the outbox and a worker: a deadline for a loaded machine,
    # not a speed check)
    started = time.monotonic()
    await buyer.goto(f"{server}/goods?q=商品laptop")
    while await buyer.locator(f"#results a[href='/goods/{laptop.id}']").count():
        assert time.monotonic() - started < 60, "a suspended supplier's listing stayed in the search"
        await buyer.wait_for_timeout(300)
        await buyer.goto(f"{server}/goods?q=商品laptop")
    print(f"the listing left the search after {time.monotonic() - started:.1f} s")
    await shot(buyer, "sanction-search-gone")

    # its bid is refused, and the refusal names the decision
    supplier = await signed_in(browser, errors, server, "supplier_x")
    await supplier.goto(f"{server}/procedures/{auction.id}")
    await expect(supplier.locator("#room-live")).to_have_text("已实时连接")
    await supplier.fill("#bid-amount", "59000.00")
    await supplier.click("#bid-form button[type=submit]")
    await expect(supplier.locator("#bid-message")).to_contain_text("暂停交易资格")
    await shot(supplier, "sanction-bid-refused")

    # the public list (不良行为记录) and the decision's own page
    visitor = await browser.new_page()
    await visitor.goto(f"{server}/sanctions")
    assert "甲供应商有限公司" in await visitor.content() and "暂停交易资格" in await visitor.content()
    await visitor.click(f"a[href='/sanctions/{decided.sanction_id}']")
    await visitor.wait_for_load_state("networkidle")
    assert "申诉期限" in await visitor.content()
    await shot(visitor, "sanction-public")
    await visitor.close()
    assert [e for e in errors if "status of 422" not in e] == [], errors
