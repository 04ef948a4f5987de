"""Ledger exports (CSV, XLSX, OCDS), export jobs, who may export, and the Atom feed.

The OCDS package is validated against the official 1.1.5 schema in ../shared/data/ocds-1.1.5/,
resolved locally (no network).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from mall import orders
from mall.core import files
from mall.core.db import Database
from mall.core.settings import Settings
from mall.ledger import disclosure, exports, ocds
from mall.orders.models import Order
from tests.factories import World
from tests.mall.test_disclosure import deal
from tests.mall.test_supermarket_flow import assert_problem

# The official schemas, copied unchanged into the repository so that the validation runs wherever
# it is checked out; the copy is checked against the shared originals when they are beside it.
OCDS_DIR = Path(__file__).resolve().parents[1] / "data" / "ocds-1.1.5"
SHARED_OCDS_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ocds-1.1.5"
ATOM = "{http://www.w3.org/2005/Atom}"


async def stage(db: Database, payload: dict[str, Any]) -> uuid.UUID:
    async with db.write() as tx:
        return disclosure.stage(tx, payload)


async def publish(db: Database) -> None:
    while await disclosure.publish_pending(db):
        pass


def inquiry_deal(order: Order) -> dict[str, Any]:
    """The deal of an inquiry as bidding.service publishes it: the order's record plus every quote."""
    payload = orders.deal_payload(order)
    payload["mode"] = "inquiry"
    payload["order_no"] = "XJ" + order.order_no
    payload["quotes"] = [
        {
            "rank": 1,
            "supplier_name": "甲供应商有限公司",
            "total_amount": payload["total_amount"],
            "submitted_at": "2026-11-20T02:00:00.000000Z",
        },
        {
            "rank": 2,
            "supplier_name": "乙供应商有限公司",
            "total_amount": "99999.99",
            "submitted_at": "2026-11-20T03:00:00.000000Z",
        },
    ]
    payload["rejected_quotes"] = [
        {
            "supplier_name": "丙公司",
            "total_amount": "1.00",
            "submitted_at": "2026-11-20T04:00:00.000000Z",
            "reason": "报价明显低于成本",
        }
    ]
    return payload


def failure(buyer: dict[str, str]) -> dict[str, Any]:
    """A failed auction's notice, shaped like bidding.service.failure_payload."""
    return {
        "kind": "failure",
        "amends": None,
        "mode": "auction",
        "order_no": "JJ202611290001",
        "region_code": "410100",
        "deal_date": "2026-11-29",
        "buyer": buyer,
        "supplier": None,
        "total_amount": None,
        "currency": "CNY",
        "lines": [
            {
                "item_name": "复印纸",
                "brand": "",
                "spec_model": "A4 70g",
                "category_code": "A02021003",
                "quantity": "100",
                "unit": "箱",
                "unit_price": None,
                "amount": None,
            }
        ],
        "quotes": [
            {
                "rank": 1,
                "supplier_name": "甲供应商有限公司",
                "total_amount": "9000.00",
                "submitted_at": "2026-11-29T01:00:00.000000Z",
            }
        ],
        "rejected_quotes": [],
        "reason": "有效报价不足3家",
    }


@pytest.fixture
async def ledger(world: World) -> dict[str, Any]:
    """Seven records: three supermarket deals, a correction and a cancellation of them, an inquiry deal
    with its quotes, and a failed auction."""
    laptop = await deal(world, "laptop", "2")  # A02010108
    desk = await deal(world, "desk", "3", who="buyer_b", line="b1")  # A05010201
    printer = await deal(world, "printer", "1")  # A02021003
    await publish(world.db)
    async with world.db.read() as s:
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        def load(o: Order) -> Any:
            return (
                select(Order)
                .where(Order.id == o.id)
                .options(selectinload(Order.lines), selectinload(Order.buyer), selectinload(Order.supplier))
            )

        laptop = (await s.execute(load(laptop))).scalar_one()
        desk = (await s.execute(load(desk))).scalar_one()
        printer = (await s.execute(load(printer))).scalar_one()
    correction = orders.deal_payload(laptop, kind="correction", amends=laptop.disclosure_id)
    await stage(world.db, correction)
    await stage(world.db, orders.deal_payload(desk, kind="cancellation", amends=desk.disclosure_id))
    await stage(world.db, inquiry_deal(printer))
    await stage(world.db, failure(orders.deal_payload(laptop)["buyer"]))
    await publish(world.db)
    return {"laptop": laptop, "desk": desk, "printer": printer}


def parse_xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 (the app's own response)


def read_csv(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf"), content[:10]
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == exports.HEADERS
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


# ---------------------------------------------------------------- CSV


async def test_csv_has_a_bom_chinese_headers_and_one_row_per_line(
    client: Any, world: World, ledger: dict[str, Any]
) -> None:
    r = await client.get("/api/exports/disclosures.csv", headers=world.h("center"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="disclosures')
    assert "filename*=UTF-8''%E6%88%90%E4%BA%A4" in disposition  # 成交记录-….csv
    rows = read_csv(r.content)
    assert [row["公开序号"] for row in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    kinds = [row["记录类型"] for row in rows]
    assert kinds.count("成交") == 4 and "更正" in kinds and "取消" in kinds and "失败" in kinds
    first = rows[0]
    assert first["采购方式"] == "网上超市" and first["采购人"] == "甲单位"
    assert first["数量"] == "2" and first["单价（元）"] == "5000.00" and first["金额（元）"] == "10000.00"
    assert first["总金额（元）"] == "10000.00" and first["品目编码"] == "A02010108"
    assert first["品目名称"]  # from the 2022 catalogue
    assert len(first["哈希"]) == 64
    correction = next(row for row in rows if row["记录类型"] == "更正")
    assert correction["更正/取消的记录"] == str(ledger["laptop"].disclosure_id)
    fail = next(row for row in rows if row["记录类型"] == "失败")
    assert fail["失败原因"] == "有效报价不足3家" and fail["供应商"] == "" and fail["总金额（元）"] == ""
    assert fail["采购方式"] == "反向竞价"


async def test_csv_filters_by_category_prefix_mode_kind_and_party(
    client: Any, world: World, ledger: dict[str, Any]
) -> None:
    h = world.h("regulator")

    async def rows(**params: str) -> list[dict[str, str]]:
        r = await client.get("/api/exports/disclosures.csv", params=params, headers=h)
        assert r.status_code == 200, r.text
        return read_csv(r.content)

    laptops = await rows(category="A0201")
    assert {row["品目编码"] for row in laptops} == {"A02010108"}
    assert [row["记录类型"] for row in laptops] == ["成交", "更正"]
    paper = await rows(category="a02021003")  # lower case accepted
    assert [row["采购方式"] for row in paper] == ["网上超市", "在线询价", "反向竞价"]
    assert [row["记录类型"] for row in await rows(mode="inquiry")] == ["成交"]
    assert [row["订单编号"] for row in await rows(kind="cancellation")] == [ledger["desk"].order_no]
    buyer_b = world.who["buyer_b"].org_credit_code
    assert {row["采购人"] for row in await rows(buyer_credit_code=buyer_b)} == {"乙单位"}
    assert await rows(category="C") == []
    assert [row["公开序号"] for row in await rows(after="5")] == ["6", "7"]


# ---------------------------------------------------------------- XLSX


async def test_small_xlsx_downloads_directly_and_reads_back(
    client: Any, world: World, ledger: dict[str, Any]
) -> None:
    from openpyxl import load_workbook

    r = await client.get(
        "/api/exports/disclosures.xlsx", params={"mode": "supermarket"}, headers=world.h("center")
    )
    assert r.status_code == 200, r.text
    assert r.content[:2] == b"PK"
    wb = load_workbook(io.BytesIO(r.content), read_only=True)
    ws = wb["成交记录"]
    values = [list(row) for row in ws.iter_rows(values_only=True)]
    assert values[0] == exports.HEADERS
    assert len(values) == 1 + 5  # three deals, the correction and the cancellation
    first = dict(zip(exports.HEADERS, values[1], strict=True))
    assert first["公开序号"] == 1 and first["采购人"] == "甲单位"
    assert Decimal(str(first["金额（元）"])) == Decimal("10000.00")
    wb.close()


async def test_an_xlsx_too_big_to_send_directly_asks_for_a_job(
    world: World, ledger: dict[str, Any], settings: Settings
) -> None:
    from dataclasses import replace

    from mall.core.errors import RuleViolation
    from mall.site import export_routes

    small = replace(settings, export_xlsx_direct_max=3)
    with pytest.raises(RuleViolation) as caught:
        await export_routes._xlsx_file(exports.parse_export_query({}), world.db, small, world.who["center"])
    assert caught.value.code == "export_too_large" and caught.value.status == 422


# ---------------------------------------------------------------- OCDS


def test_the_schema_copy_is_the_official_one() -> None:
    names = ("release-package-schema.json", "release-schema.json")
    assert all((OCDS_DIR / n).is_file() for n in names)
    if not SHARED_OCDS_DIR.is_dir():
        pytest.skip(f"nothing to compare with: {SHARED_OCDS_DIR} is not beside this checkout")
    for n in names:
        assert (OCDS_DIR / n).read_bytes() == (SHARED_OCDS_DIR / n).read_bytes(), n


def ocds_validator() -> Any:
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    package = json.loads((OCDS_DIR / "release-package-schema.json").read_text())
    release = json.loads((OCDS_DIR / "release-schema.json").read_text())
    registry = Registry().with_resource(
        release["id"], Resource.from_contents(release, default_specification=DRAFT4)
    )
    return Draft4Validator(package, registry=registry)


async def test_ocds_package_validates_against_the_official_schema(
    client: Any, world: World, ledger: dict[str, Any], settings: Settings
) -> None:
    r = await client.get("/api/exports/disclosures.ocds.json", headers=world.h("center"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    package = json.loads(r.content, parse_float=Decimal)
    errors = sorted(ocds_validator().iter_errors(json.loads(r.content)), key=str)
    assert errors == [], "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    releases = package["releases"]
    assert len(releases) == 7 and package["version"] == "1.1"
    assert package["extensions"] == [ocds.BID_EXTENSION, ocds.SCALE_EXTENSION]
    laptop = ledger["laptop"]
    ocid = settings.ocds_prefix + laptop.order_no
    same = [x for x in releases if x["ocid"] == ocid]
    assert [x["tag"] for x in same] == [["award", "contract"], ["awardUpdate", "contractUpdate"]]
    deal_release = same[0]
    assert {tuple(p["roles"]) for p in deal_release["parties"]} == {
        ("buyer", "procuringEntity"),
        ("supplier",),
    }
    # the supplier's size by its 中小企业声明函 on the deal date (the factory's: small, an OCDS "sme")
    supplier_party = next(p for p in deal_release["parties"] if p["roles"] == ["supplier"])
    assert supplier_party["details"] == {"scale": "sme"}
    assert deal_release["tender"]["procurementMethodDetails"] == "网上超市"
    award = deal_release["awards"][0]
    assert award["value"] == {"amount": Decimal("10000.00"), "currency": "CNY"}
    assert award["items"][0]["classification"]["id"] == "A02010108"
    assert award["items"][0]["quantity"] == 2
    assert award["items"][0]["unit"]["value"]["amount"] == Decimal("5000.00")
    assert deal_release["contracts"][0]["awardID"] == award["id"]
    # the correction updates the same award and contract
    assert same[1]["awards"][0]["id"] == award["id"]
    cancel = next(
        x
        for x in releases
        if x["ocid"] == settings.ocds_prefix + ledger["desk"].order_no and "awardCancellation" in x["tag"]
    )
    assert cancel["awards"][0]["status"] == "cancelled" and cancel["contracts"][0]["status"] == "cancelled"
    inquiry = next(x for x in releases if x["tender"]["procurementMethodDetails"] == "在线询价")
    stats = {s["measure"]: s["value"] for s in inquiry["bids"]["statistics"]}
    assert stats["validBids"] == 2 and stats["disqualifiedBids"] == 1 and stats["bids"] == 3
    assert stats["highestValidBidValue"] == Decimal("99999.99")
    failed = next(x for x in releases if x["tender"]["status"] == "unsuccessful")
    assert "awards" not in failed and failed["tag"] == ["tender"]
    assert failed["tender"]["procurementMethodDetails"] == "反向竞价"
    # filtered by 品目: only the records with a line in it
    r = await client.get(
        "/api/exports/disclosures.ocds.json", params={"category": "A05"}, headers=world.h("center")
    )
    assert [x["ocid"] for x in r.json()["releases"]] == [settings.ocds_prefix + ledger["desk"].order_no] * 2


# ---------------------------------------------------------------- access and parameters


async def test_only_centers_and_regulators_export(client: Any, world: World) -> None:
    for path in (
        "/api/exports/disclosures.csv",
        "/api/exports/disclosures.ocds.json",
        "/api/exports/disclosures.xlsx",
        "/api/exports",
    ):
        for who in ("buyer_a", "supplier_x", "sysadmin", "secadmin", "auditor"):
            assert_problem(await client.get(path, headers=world.h(who)), 403, "forbidden")
        assert_problem(await client.get(path), 401, "unauthenticated")
    r = await client.post("/api/exports", json={"format": "xlsx"}, headers=world.h("supplier_x"))
    assert_problem(r, 403, "forbidden")
    r = await client.get("/exports", follow_redirects=False)
    assert r.status_code in (302, 303, 401)
    r = await client.get("/api/exports/disclosures.csv", headers=world.h("regulator"))
    assert r.status_code == 200 and read_csv(r.content) == []


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"mode": "market"}, "mode"),
        ({"kind": "deals"}, "kind"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "from"),
        ({"buyer_credit_code": "123"}, "buyer_credit_code"),
        ({"category": "X0201"}, "category"),
        ({"category": "A020101041"}, "category"),
        ({"after": "-1"}, "after"),
    ],
)
async def test_bad_parameters_are_refused_with_the_parameter_named(
    client: Any, world: World, params: dict[str, str], parameter: str
) -> None:
    for path in ("/api/exports/disclosures.csv", "/api/exports/disclosures.ocds.json"):
        r = await client.get(path, params=params, headers=world.h("center"))
        assert_problem(r, 400, "invalid_parameter")
        assert r.json()["parameter"] == parameter
    r = await client.post(
        "/api/exports", json={"format": "xlsx", "filters": params}, headers=world.h("center")
    )
    assert_problem(r, 400, "invalid_parameter")
    r = await client.post("/api/exports", json={"format": "pdf"}, headers=world.h("center"))
    assert_problem(r, 400, "invalid_parameter")


# ---------------------------------------------------------------- export jobs


async def test_xlsx_job_reports_progress_and_serves_the_file_to_its_organization(
    client: Any, world: World, ledger: dict[str, Any], settings: Settings
) -> None:
    from openpyxl import load_workbook

    h = world.h("center")
    r = await client.post("/api/exports", json={"format": "xlsx", "filters": {"category": "A02"}}, headers=h)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["download_url"] is None and job["percent"] == 0
    r = await client.get(f"/api/exports/{job['id']}/download", headers=h)
    assert_problem(r, 404, "export_not_ready")
    # the worker's job function: its own engine on its own event loop, as in a work horse
    from workers import jobs

    assert await asyncio.to_thread(jobs.run_export, job["id"]) == "done"
    assert await asyncio.to_thread(jobs.run_export, job["id"]) == "skipped"  # idempotent
    r = await client.get(f"/api/exports/{job['id']}", headers=h)
    done = r.json()
    assert done["status"] == "done" and done["percent"] == 100 and done["rows_done"] == 5
    r = await client.get(done["download_url"], headers=h)
    assert r.status_code == 200 and "filename*=UTF-8''" in r.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(r.content), read_only=True)
    rows = list(wb["成交记录"].iter_rows(values_only=True))
    assert rows[0] == tuple(exports.HEADERS) and len(rows) == 1 + 5
    assert {row[exports.HEADERS.index("品目编码")][:3] for row in rows[1:]} == {"A02"}
    wb.close()
    assert [j["id"] for j in (await client.get("/api/exports", headers=h)).json()] == [job["id"]]
    # another organization sees nothing of it
    r = await client.get(f"/api/exports/{job['id']}", headers=world.h("regulator"))
    assert_problem(r, 404, "export_not_found")
    r = await client.get(f"/api/exports/{job['id']}/download", headers=world.h("regulator"))
    assert_problem(r, 404, "export_not_found")
    assert (await client.get("/api/exports", headers=world.h("regulator"))).json() == []


async def test_csv_and_ocds_jobs_write_the_same_as_the_streams(
    client: Any, world: World, ledger: dict[str, Any], settings: Settings
) -> None:
    who = world.who["regulator"]
    for fmt in ("csv", "ocds"):
        job = await exports.start_job(world.db, who, fmt, exports.parse_export_query({"mode": "supermarket"}))
        assert await exports.run_job(world.db, settings, job.id) == "done"
        done = await exports.get_job(world.db, who, job.id)
        store = files.store_for(settings, world.db)
        info = await exports.job_file(store, settings, done)
        content = b"".join([piece async for piece in store.chunks(info.key)])
        assert done.rows_done == 5
        if fmt == "csv":
            assert len(read_csv(content)) == 5
        else:
            assert len(json.loads(content)["releases"]) == 5


# ---------------------------------------------------------------- Atom


async def test_atom_feed_lists_the_newest_records(
    client: Any, world: World, ledger: dict[str, Any], settings: Settings
) -> None:
    r = await client.get("/disclosures/feed.atom")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/atom+xml")
    root = parse_xml(r.content)
    assert root.tag == f"{ATOM}feed"
    assert root.find(f"{ATOM}id") is not None and root.find(f"{ATOM}updated") is not None
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 7
    async with world.db.read() as s:
        from sqlalchemy import select

        from mall.ledger.models import DisclosureRecord

        newest = (
            (await s.execute(select(DisclosureRecord).order_by(DisclosureRecord.seq.desc())))
            .scalars()
            .first()
        )
    assert newest is not None
    top = entries[0]
    assert top.findtext(f"{ATOM}id") == f"urn:uuid:{newest.id}"
    link = top.find(f"{ATOM}link")
    assert link is not None and link.get("href") == f"{settings.public_base_url}/disclosures/7"
    assert top.findtext(f"{ATOM}updated") == json.loads(newest.body)["published_at"]
    titles = [e.findtext(f"{ATOM}title") or "" for e in entries]
    assert titles[0].startswith("失败公告：甲单位")
    assert titles[-1] == "成交公告：甲单位 向 甲供应商有限公司 采购 商品laptop"
    assert any(t.startswith("取消公告：乙单位") for t in titles)
    assert "有效报价不足3家" in (top.findtext(f"{ATOM}summary") or "")
    # filters and limits like the feed
    r = await client.get("/disclosures/feed.atom", params={"mode": "inquiry"})
    assert len(parse_xml(r.content).findall(f"{ATOM}entry")) == 1
    r = await client.get("/disclosures/feed.atom", params={"limit": "2"})
    assert len(parse_xml(r.content).findall(f"{ATOM}entry")) == 2
    assert_problem(
        await client.get("/disclosures/feed.atom", params={"limit": "999"}), 400, "invalid_parameter"
    )
    page = await client.get("/disclosures")
    assert 'type="application/atom+xml"' in page.text and "/disclosures/feed.atom" in page.text


# ---------------------------------------------------------------- pages


async def test_export_pages_for_a_center(client: Any, world: World, ledger: dict[str, Any]) -> None:
    from tests.mall.test_pages import HTML, assert_page, login_ok, post_form

    await login_ok(client, "buyer_a")
    r = await client.get("/exports", headers=HTML)
    assert r.status_code == 403
    await login_ok(client, "center")
    text = assert_page(await client.get("/exports", headers=HTML))
    assert "数据导出" in text and "还没有导出任务" in text
    # a refused filter comes back as a message, with what was typed
    r = await post_form(client, "/exports/download/csv", {"category": "Z9", "mode": "inquiry"})
    assert r.status_code == 303 and r.headers["location"] == "/exports"
    text = assert_page(await client.get("/exports", headers=HTML))
    assert "参数 category 应为品目编码或其前缀" in text and 'value="Z9"' in text
    r = await post_form(client, "/exports/download/csv", {"category": "A05"})
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    assert [row["品目编码"] for row in read_csv(r.content)] == ["A05010201", "A05010201"]
    r = await post_form(client, "/exports/download/ocds", {"mode": "inquiry"})
    assert r.status_code == 200 and len(r.json()["releases"]) == 1
    r = await post_form(client, "/exports/jobs", {"mode": "supermarket", "kind": ""})
    assert r.status_code == 303
    job_url = r.headers["location"]
    text = assert_page(await client.get(job_url, headers=HTML))
    assert "采购方式：网上超市" in text and "排队中" in text
    status = (await client.get(f"{job_url}/status")).json()
    assert status["status"] == "queued" and status["percent"] == 0 and status["download_url"] is None
    text = assert_page(await client.get("/exports", headers=HTML))
    assert job_url in text


def test_xlsx_writer_escapes_text_and_rolls_over_to_new_sheets(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from mall.core import xlsx

    path = tmp_path / "t.xlsx"
    wb = xlsx.Workbook(path, amount_columns={2})
    wb.add_sheet("成交记录")
    wb.append(["名称", "数量", "金额"])
    wb.append(['<甲&乙> "引号"', Decimal("2.5"), Decimal("10.00")])
    wb.append([" 前后空格 ", 7, None])
    wb.append(["控制\x01字符", "", Decimal("-1.20")])
    wb.add_sheet("成交记录2")
    wb.append(["名称"])
    wb.close()
    book = load_workbook(path)
    assert book.sheetnames == ["成交记录", "成交记录2"]
    rows = [[c.value for c in row] for row in book["成交记录"].iter_rows()]
    assert rows[1] == ['<甲&乙> "引号"', 2.5, 10]
    assert rows[2][:2] == [" 前后空格 ", 7]
    assert rows[3][0] == "控制字符" and rows[3][2] == -1.2
    assert book["成交记录"]["C2"].number_format == "0.00"
    assert book["成交记录2"]["A1"].value == "名称"


async def test_mall_export_command_with_filters(
    world: World, ledger: dict[str, Any], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openpyxl import load_workbook

    from mall import cli

    monkeypatch.setenv("DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("MALL_DATA_KEY", settings.data_key)
    monkeypatch.setenv("MALL_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("MALL_SETTINGS_FILE", raising=False)

    def run(*args: str) -> Any:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["export", *args])
        return exit_info.value.code

    # the command runs its own event loop: call it from a thread
    out = tmp_path / "a.csv"
    assert await asyncio.to_thread(run, "--format", "csv", "--category", "A05", "-o", str(out)) == 0
    assert [r["品目编码"] for r in read_csv(out.read_bytes())] == ["A05010201", "A05010201"]
    out = tmp_path / "a.ocds.json"
    assert await asyncio.to_thread(run, "--format", "ocds", "--kind", "failure", "--out", str(out)) == 0
    assert [x["tender"]["status"] for x in json.loads(out.read_bytes())["releases"]] == ["unsuccessful"]
    out = tmp_path / "a.xlsx"
    assert await asyncio.to_thread(run, "--format", "xlsx", "--mode", "inquiry", "-o", str(out)) == 0
    book = load_workbook(out, read_only=True)
    rows = list(book["成交记录"].iter_rows(values_only=True))
    book.close()
    assert len(rows) == 2 and rows[1][exports.HEADERS.index("采购方式")] == "在线询价"
    out = tmp_path / "a.jsonl"
    assert await asyncio.to_thread(run, "--format", "jsonl", "--after", "6", "-o", str(out)) == 0
    assert [json.loads(x)["seq"] for x in out.read_text().splitlines()] == [7]
    assert await asyncio.to_thread(run, "--format", "csv", "--category", "?") == 2


async def test_an_empty_ocds_export_is_refused_not_published_invalid(client: object, world: World) -> None:

    c: Any = client
    r = await c.get("/api/exports/disclosures.ocds.json?mode=agreement", headers=world.h("center"))
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "export_empty"
    r = await c.post(
        "/api/exports", json={"format": "ocds", "filters": {"mode": "agreement"}}, headers=world.h("center")
    )
    assert r.status_code == 404 and r.json()["code"] == "export_empty"
    r = await c.get("/api/exports/disclosures.csv?mode=agreement", headers=world.h("center"))
    assert r.status_code == 200 and r.text.startswith("\ufeff公开序号")  # a CSV may be just its header
