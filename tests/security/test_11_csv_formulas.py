"""Point 11: no cell of a CSV or XLSX the mall writes can run as a formula when opened in a spreadsheet.

A listing whose name, brand and model look like formulas is sold and published; the disclosure exports
(CSV and XLSX, direct and as jobs), the import report and the templates are then read back cell by cell.
Amounts and quantities stay numbers.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from catalog import spreadsheet
from mall import orders
from mall.core.fields import FORMULA_PREFIXES
from mall.ledger import disclosure, exports
from tests.factories import World
from tests.mall.test_disclosure import place

EVIL_NAME = '=HYPERLINK("http://evil","x")'
EVIL_BRAND = "+cmd|' /C calc'!A0"
EVIL_MODEL = "@SUM(1+1)"
PLAIN_DECIMAL = re.compile(r"\A-?[0-9]+(\.[0-9]+)?\Z")
NUMBER_HEADERS = ("总金额（元）", "数量", "单价（元）", "金额（元）")


@pytest.fixture
async def sold(world: World) -> World:
    """The formula-looking listing, approved, bought, confirmed and published."""
    await world.listing("evil", "supplier_x", "100.00", name=EVIL_NAME, category="A02021003")
    async with world.db.write() as tx:
        from sqlalchemy import update

        from catalog.models import Listing

        # brand and model through the table: the factory names them after the key
        await tx.session.execute(
            update(Listing)
            .where(Listing.id == world.listings["evil"].id)
            .values(brand=EVIL_BRAND, spec_model=EVIL_MODEL)
        )
    order = await place(world, [("evil", "2")])
    await orders.confirm(world.db, world.who["supplier_x"], order.id)
    while await disclosure.publish_pending(world.db):
        pass
    return world


def assert_no_formula(cells: list[Any]) -> None:
    for cell in cells:
        if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
            assert PLAIN_DECIMAL.match(cell), f"a cell would run as a formula: {cell!r}"


def csv_rows(content: bytes) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    for row in rows:
        assert_no_formula(row)
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def xlsx_rows(content: bytes) -> list[dict[str, Any]]:
    book = load_workbook(io.BytesIO(content))  # not read-only: data types are visible
    sheet = book["成交记录"]
    out = []
    for row in sheet.iter_rows():
        assert all(c.data_type != "f" for c in row), [c.value for c in row]
        assert_no_formula([c.value for c in row])
        out.append([c.value for c in row])
    book.close()
    return [dict(zip(out[0], r, strict=True)) for r in out[1:]]


def check_row(row: dict[str, Any], *, numbers: bool) -> None:
    assert row["商品名称"] == "'" + EVIL_NAME
    assert row["品牌"] == "'" + EVIL_BRAND
    assert row["规格型号"] == "'" + EVIL_MODEL
    if numbers:  # XLSX: amounts and quantities are numbers, not text
        assert row["数量"] == 2 and Decimal(str(row["单价（元）"])) == Decimal("100")
        assert Decimal(str(row["金额（元）"])) == Decimal("200")
    else:
        assert row["数量"] == "2" and row["单价（元）"] == "100.00" and row["金额（元）"] == "200.00"


async def test_csv_export_neutralises_formulas(client: Any, sold: World) -> None:
    r = await client.get("/api/exports/disclosures.csv", headers=sold.h("center"))
    assert r.status_code == 200, r.text
    (row,) = csv_rows(r.content)
    check_row(row, numbers=False)


async def test_xlsx_export_neutralises_formulas_and_keeps_numbers(client: Any, sold: World) -> None:
    r = await client.get("/api/exports/disclosures.xlsx", headers=sold.h("regulator"))
    assert r.status_code == 200, r.text
    (row,) = xlsx_rows(r.content)
    check_row(row, numbers=True)


async def test_export_jobs_neutralise_formulas(client: Any, sold: World) -> None:
    from workers import jobs

    h = sold.h("center")
    for fmt in ("csv", "xlsx"):
        r = await client.post("/api/exports", json={"format": fmt}, headers=h)
        assert r.status_code == 202, r.text
        assert await asyncio.to_thread(jobs.run_export, r.json()["id"]) == "done"
        r = await client.get(f"/api/exports/{r.json()['id']}/download", headers=h)
        assert r.status_code == 200, r.text
        if fmt == "csv":
            (row,) = csv_rows(r.content)
            check_row(row, numbers=False)
        else:
            (row,) = xlsx_rows(r.content)
            check_row(row, numbers=True)


def test_a_negative_amount_stays_a_number() -> None:
    """Amounts in the ledger are never negative today; if one ever is, it must still read as a number
    (a plain decimal cannot be a formula), and anything that is not a plain decimal is text."""
    record = {
        "seq": 1,
        "id": "00000000-0000-0000-0000-000000000001",
        "kind": "correction",
        "amends": None,
        "mode": "supermarket",
        "order_no": "=1+1",
        "region_code": "410100",
        "deal_date": "2026-12-06",
        "published_at": "2026-12-06T01:00:00.000000Z",
        "buyer": {"name": "@甲单位", "credit_code": "-12345"},
        "supplier": {"name": "\t乙公司", "credit_code": "x", "address": "\r地址"},
        "total_amount": "-1.20",
        "lines": [
            {
                "item_name": "-2+3",
                "category_code": "A02021003",
                "quantity": "-1",
                "unit": "箱",
                "unit_price": "=1.20",
                "amount": "-1.20",
            }
        ],
        "hash": "0" * 64,
    }
    (row,) = list(exports.record_rows(record, None, {}))
    cells = dict(zip(exports.HEADERS, row, strict=True))
    assert cells["总金额（元）"] == "-1.20" and cells["金额（元）"] == "-1.20" and cells["数量"] == "-1"
    assert cells["单价（元）"] == "'=1.20"  # not a plain decimal: text, neutralised
    assert cells["订单编号"] == "'=1+1" and cells["商品名称"] == "'-2+3"
    assert (
        cells["采购人"] == "'@甲单位" and cells["供应商"] == "'\t乙公司" and cells["供应商地址"] == "'\r地址"
    )
    assert_no_formula(row)


def test_templates_and_the_import_report_are_neutralised() -> None:
    report = spreadsheet.report_csv([(2, "未通过", EVIL_NAME), (3, "通过", "-1")])
    rows = list(csv.reader(io.StringIO(report.decode("utf-8-sig"), newline="")))
    assert rows[1] == ["2", "未通过", "'" + EVIL_NAME] and rows[2] == ["3", "通过", "'-1"]
    for row in csv.reader(io.StringIO(spreadsheet.template_csv().decode("utf-8-sig"), newline="")):
        assert_no_formula(row)
    book = load_workbook(io.BytesIO(spreadsheet.template_xlsx()))
    for row in book.active.iter_rows():  # type: ignore[union-attr]
        assert all(c.data_type != "f" for c in row)
        assert_no_formula([c.value for c in row])
    book.close()


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"])
def test_every_formula_start_is_neutralised_full_width_included(start: str) -> None:
    from mall.core.fields import spreadsheet_safe

    assert spreadsheet_safe(f'{start}HYPERLINK("http://evil","x")').startswith("'")
    assert spreadsheet_safe(f"名称{start}1") == f"名称{start}1"
