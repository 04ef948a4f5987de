"""Small and medium enterprises (mall.sme): the classification by the thresholds of 工信部联企业〔2011〕300号,
the dated 中小企业声明函, the size each order records, and the statistics with the annual report."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from mall import orders
from mall.core import clock
from mall.core.errors import Forbidden, InvalidInput
from mall.core.models import OrgKind
from mall.orders.models import Order
from mall.sme import rules, service
from mall.sme.current import size_on
from tests.factories import World
from tests.security.login_helpers import assert_problem

D = Decimal


@pytest.mark.parametrize(
    ("industry", "employees", "revenue", "assets", "size"),
    [
        ("industry", 1000, 50000, None, "large"),  # at or above both ceilings
        ("industry", 1000, 39999, None, "medium"),  # below one ceiling: an SME; medium floors met
        ("industry", 300, 2000, None, "medium"),
        ("industry", 299, 2000, None, "small"),
        ("industry", 20, 300, None, "small"),
        ("industry", 19, 50000, None, "micro"),  # below a small floor
        ("wholesale", 20, 5000, None, "medium"),
        ("wholesale", 5, 1000, None, "small"),
        ("wholesale", 4, 30000, None, "micro"),
        ("retail", 350, 26000, None, "large"),
        ("software", 10, 50, None, "small"),
        ("software", 9, 5000, None, "micro"),
        ("agriculture", None, 500, None, "medium"),  # judged by revenue alone
        ("agriculture", None, 49, None, "micro"),
        ("construction", None, 6000, 5000, "medium"),
        ("construction", None, 90000, 90000, "large"),
        ("leasing", 100, None, 8000, "medium"),
        ("other", 9, None, None, "micro"),
        ("other", 300, None, None, "large"),
    ],
)
def test_the_thresholds_classify(
    industry: str, employees: int | None, revenue: int | None, assets: int | None, size: str
) -> None:
    values = {
        "employees": None if employees is None else D(employees),
        "revenue": None if revenue is None else D(revenue),
        "assets": None if assets is None else D(assets),
    }
    assert rules.classify(industry, values) == size


def test_a_missing_figure_and_the_deduction() -> None:
    with pytest.raises(ValueError):
        rules.classify("industry", {"employees": D(10), "revenue": None})
    assert len(rules.thresholds()) == 16
    assert rules.deducted(D("10000.00"), "small", D("0.10")) == D("9000.00")
    assert rules.deducted(D("10000.00"), "micro", D("0.20")) == D("8000.00")
    assert rules.deducted(D("10000.00"), "medium", D("0.10")) == D("10000.00")  # small and micro only
    assert rules.deducted(D("10000.00"), "small", None) == D("10000.00")
    assert rules.OCDS_SCALE["small"] == "sme" and rules.OCDS_SCALE["micro"] == "micro"


async def test_a_declaration_is_dated_and_each_order_keeps_the_size_it_was_made_under(world: World) -> None:
    x = world.who["supplier_x"]
    with pytest.raises(InvalidInput) as e:
        await service.declare(world.db, x, "industry", "abc", "", "")
    assert e.value.code == "sme_invalid" and "从业人员应为数字" in e.value.detail
    with pytest.raises(InvalidInput):
        await service.declare(world.db, x, "mining", "10", "10", "")
    with pytest.raises(InvalidInput) as e:
        await service.declare(world.db, x, "industry", "10", "", "")
    assert "营业收入" in e.value.detail
    with pytest.raises(Forbidden):
        await service.declare(world.db, world.who["buyer_a"], "industry", "10", "100", "")

    def checkout() -> Any:
        return orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(
                world.lines["a1"].id, uuid.uuid4().hex, ((world.listings["laptop"].id, "1"),)
            ),
        )

    first, _ = await checkout()  # under the factory's declaration: small
    d = await service.declare(world.db, x, "industry", "1200", "45000", "")
    assert d.size == "large" and d.valid_until == d.declared_on + timedelta(days=365)
    assert "工信部联企业〔2011〕300号" in d.statement and "大型企业" in d.statement
    second, _ = await checkout()
    async with world.db.read() as s:
        scales = [(await s.get(Order, o.id)).supplier_scale for o in (first[0], second[0])]  # type: ignore[union-attr]
        assert await size_on(s, x.org_id, clock.local_date(clock.now()) + timedelta(days=400)) == ""  # lapsed
    assert scales == ["small", "large"]


async def test_the_statistics_and_the_annual_report(client: Any, world: World) -> None:
    await world.org("supplier_m", OrgKind.SUPPLIER, "丙小微企业", sme="micro")
    await world.org("supplier_l", OrgKind.SUPPLIER, "丁大型企业", sme="large")
    m = await world.listing("m", "supplier_m", "300.00", category="A05010201")
    big = await world.listing("l", "supplier_l", "700.00", category="A05010201")
    for listing, who in ((m, "supplier_m"), (big, "supplier_l")):
        placed, _ = await orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((listing.id, "1"),)),
        )
        await orders.confirm(world.db, world.who[who], placed[0].id)
    year = clock.local_date(clock.now()).year
    r = await client.get(f"/api/sme/statistics?by=buyer&year={year}", headers=world.h("regulator"))
    assert r.status_code == 200, r.text
    [row] = r.json()["rows"]
    assert (row["name"], row["total"], row["sme"], row["small_micro"], row["sme_share"]) == (
        "甲单位",
        "1000.00",
        "300.00",
        "300.00",
        "30.00",
    )
    r = await client.get(f"/api/sme/statistics?by=year&year={year}", headers=world.h("center"))
    assert r.json()["rows"][-1]["key"] == str(year)
    r = await client.get(f"/api/sme/statistics?by=region&year={year}", headers=world.h("regulator"))
    assert r.json()["rows"][0]["sme"] == "300.00"
    assert_problem(
        await client.get("/api/sme/statistics?by=month", headers=world.h("regulator")),
        400,
        "invalid_parameter",
    )
    assert_problem(
        await client.get("/api/sme/statistics?year=1999", headers=world.h("regulator")), 400, "invalid_year"
    )
    assert_problem(await client.get("/api/sme/statistics", headers=world.h("buyer_a")), 403, "forbidden")

    r = await client.get(f"/api/sme/report/sme-report-{year}.csv", headers=world.h("regulator"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "采购单位" and rows[1][:2] == ["甲单位", rows[1][1]] and rows[-1][0] == "合计"
    assert rows[1][3:6] == ["1000.00", "300.00", "30.00"]
    r = await client.get(f"/api/sme/report/sme-report-{year}.xlsx", headers=world.h("regulator"))
    assert r.status_code == 200
    book = zipfile.ZipFile(io.BytesIO(r.content))
    assert "甲单位" in book.read("xl/worksheets/sheet1.xml").decode()
    assert_problem(
        await client.get("/api/sme/report/other.pdf", headers=world.h("regulator")), 404, "report_not_found"
    )


async def test_the_declaration_api_and_page(client: Any, world: World) -> None:
    from tests.mall.test_pages import HTML, assert_page, login_ok, post_form

    r = await client.post(
        "/api/sme/declarations",
        json={"industry": "software", "employees": "12", "revenue": "80"},
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["size"], r.json()["size_label"]) == ("small", "小型企业")
    bad = await client.post(
        "/api/sme/declarations", json={"industry": "software"}, headers=world.h("supplier_x")
    )
    assert_problem(bad, 400, "sme_invalid")
    assert_problem(
        await client.post(
            "/api/sme/declarations",
            json={"industry": "software", "employees": "1", "revenue": "1"},
            headers=world.h("buyer_a"),
        ),
        403,
        "forbidden",
    )
    mine = (await client.get("/api/sme/declarations", headers=world.h("supplier_x"))).json()
    assert {d["org_name"] for d in mine["items"]} == {"甲供应商有限公司"}
    every = (await client.get("/api/sme/declarations", headers=world.h("center"))).json()
    assert every["total"] > mine["total"]
    # the listing's answer names its supplier's size in force (the declaration just filed)
    r = await client.get(f"/api/listings/{world.listings['laptop'].id}")
    assert r.status_code == 200 and r.json()["supplier_scale"] == "small"
    industries = (await client.get("/api/sme/industries")).json()
    assert {
        "industry": "software",
        "label": "软件和信息技术服务业",
        "indicators": ["从业人员（人）", "营业收入（万元）"],
    } in industries

    await login_ok(client, "supplier_y")
    r = await post_form(
        client, "/sme/declarations", {"industry": "retail", "employees": "8", "revenue": "90"}
    )
    assert r.status_code == 303
    page = assert_page(await client.get("/sme", headers=HTML))
    assert "微型企业" in page and "零售业" in page
    r = await post_form(
        client, "/sme/declarations", {"industry": "retail", "employees": "x", "revenue": "90"}
    )
    assert r.status_code == 303
    page = assert_page(await client.get("/sme", headers=HTML))
    assert "从业人员应为数字" in page
    async with world.db.read() as s:
        assert await size_on(s, world.who["supplier_y"].org_id, clock.local_date(clock.now())) == "micro"
