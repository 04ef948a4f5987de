"""Bulk import: a spreadsheet of listings, validated row by row, written in one transaction."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from catalog import imports
from catalog.models import Listing, ListingImport, ListingStatus
from mall.core import files
from tests.factories import World

HEADER = [
    "商品名称",
    "品牌",
    "规格型号",
    "品目编码",
    "计量单位",
    "售价（元）",
    "参考市场价（元）",
    "参考价来源",
    "库存",
]


def good_row(i: int) -> list[Any]:
    return [
        f"联想 启天M{i} 台式计算机",
        "联想",
        f"启天M{i}",
        "A02010105",
        "台",
        "4599.00",
        "4699",
        "京东自营",
        20,
    ]


def xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def store(world: World) -> files.FileStore:
    return files.store_for(world.settings, world.db)


async def start(world: World, who: Any, name: str, content: bytes, *, strict: bool = False) -> ListingImport:
    return await imports.start_import(world.db, store(world), who, name, content, strict=strict)


async def run(world: World, batch_id: uuid.UUID) -> dict[str, int]:
    s = world.settings
    return await imports.process_import(
        world.db, store(world), batch_id, margin=s.price_margin, ceiling=s.decentralized_threshold
    )


async def count_listings(world: World, org_id: Any) -> int:
    async with world.db.read() as s:
        return await s.scalar(select(func.count()).where(Listing.supplier_org_id == org_id)) or 0


@pytest.mark.slow
async def test_two_thousand_rows_with_bad_ones_report_each_and_keep_the_good(world: World) -> None:
    who = world.who["supplier_y"]
    rows = [good_row(i) for i in range(2000)]
    rows[10] = [*rows[10][:5], "4,599.00", *rows[10][6:]]  # not an amount
    rows[20][5] = "9999.00"  # more than 5% above the reference price
    rows[30][3] = "Z99999999"  # not a 品目 code
    rows[40][2] = rows[41][2]  # the same model twice in the file
    rows[50][3] = "C01000000"  # a service category
    before = await count_listings(world, who.org_id)
    batch = await start(world, who, "商品.xlsx", xlsx(rows))
    assert batch.status == "queued" and batch.total == 0  # the job reads the file, not the upload
    result = await run(world, batch.id)
    assert result == {"accepted": 1995, "refused": 5}
    async with world.db.read() as s:
        done = await s.get(ListingImport, batch.id)
        assert done is not None and done.status == "done" and done.processed == done.total == 2000
        statuses = set(
            (await s.execute(select(Listing.status).where(Listing.supplier_org_id == who.org_id))).scalars()
        )
    assert await count_listings(world, who.org_id) == before + 1995
    assert statuses == {ListingStatus.LIVE, ListingStatus.SUBMITTED}  # the factory's desk is live
    refused = {r[0]: r[2] for r in done.report if r[1] == imports.REFUSED}
    # header is row 1, so data row i is spreadsheet line i + 2
    assert set(refused) == {12, 22, 32, 43, 52}
    assert "售价" in refused[12] and "上浮" in refused[22] and "Z99999999" in refused[32]
    assert "第 42 行" in refused[43] and "货物" in refused[52]
    report = imports.report_bytes(done)
    assert report.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    assert lines[0] == ["行号", "结果", "原因"] and len(lines) == 2001


async def test_strict_import_of_a_file_with_a_bad_row_writes_nothing(world: World) -> None:
    who = world.who["supplier_y"]
    rows = [good_row(i) for i in range(50)]
    rows[7][6] = "-1"
    before = await count_listings(world, who.org_id)
    batch = await start(world, who, "a.csv", csv_bytes(rows), strict=True)
    assert await run(world, batch.id) == {"accepted": 0, "refused": 50}
    assert await count_listings(world, who.org_id) == before


async def test_rows_with_control_characters_or_overlong_text_are_refused_in_the_report(world: World) -> None:
    """Point 11: an imported row meets the form's rules — a control character, a bidi override or a
    text past its limit refuses the row (named in the report), never cut and never stored."""
    from mall.core import fields

    who = world.who["supplier_y"]
    header = [*HEADER, "商品描述"]
    rows = [[*good_row(i), "说明"] for i in range(8)]
    rows[1][0] = "联想\x00台式机"  # NUL: PostgreSQL cannot even store it
    rows[2][1] = "\u202e想联"  # a bidi override: displays as something else than it is
    rows[3][2] = "启天\x1bM3"  # ESC
    rows[4][9] = "长" * (fields.DESCRIPTION_MAX + 1)  # was silently cut to 2000
    rows[5][7] = "源" * (fields.SOURCE_MAX + 1)  # was silently cut to 300
    rows[6][0] = "名" * (fields.NAME_MAX + 1)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    before = await count_listings(world, who.org_id)
    batch = await start(world, who, "控制字符.csv", buf.getvalue().encode("utf-8"))
    assert await run(world, batch.id) == {"accepted": 2, "refused": 6}
    async with world.db.read() as s:
        done = await s.get(ListingImport, batch.id)
        names = set(
            (await s.execute(select(Listing.name).where(Listing.supplier_org_id == who.org_id))).scalars()
        )
    assert done is not None and done.status == "done"
    refused = {r[0]: r[2] for r in done.report if r[1] == imports.REFUSED}
    assert set(refused) == {3, 4, 5, 6, 7, 8}  # data row i is spreadsheet line i + 2
    assert "商品名称" in refused[3] and "U+0000" in refused[3]
    assert "品牌" in refused[4] and "U+202E" in refused[4]
    assert "规格型号" in refused[5] and "U+001B" in refused[5]
    assert f"不能超过 {fields.DESCRIPTION_MAX} 个字符" in refused[6]
    assert f"不能超过 {fields.SOURCE_MAX} 个字符" in refused[7]
    assert f"不能超过 {fields.NAME_MAX} 个字符" in refused[8]
    assert await count_listings(world, who.org_id) == before + 2
    assert all(fields.bad_character(n) is None and len(n) <= fields.NAME_MAX for n in names)


async def test_a_duplicate_of_an_existing_listing_is_refused_and_a_rerun_changes_nothing(
    world: World,
) -> None:
    who = world.who["supplier_x"]
    laptop = world.listings["laptop"]
    rows = [
        good_row(1),
        [
            laptop.name,
            " " + laptop.brand.lower(),
            laptop.spec_model.replace("-", " "),
            "A02010108",
            "台",
            "10",
            "10",
            "",
            1,
        ],
    ]
    batch = await start(world, who, "b.csv", csv_bytes(rows))
    assert await run(world, batch.id) == {"accepted": 1, "refused": 1}
    assert await run(world, batch.id) == {"skipped": 1}  # the job ran twice: nothing more happens
    async with world.db.read() as s:
        done = await s.get(ListingImport, batch.id)
    assert done is not None and "重复" in done.report[1][2]


async def test_a_write_failure_leaves_nothing_half_imported(world: World, monkeypatch: Any) -> None:
    who = world.who["supplier_y"]
    rows = [good_row(i) for i in range(30)]
    batch = await start(world, who, "c.csv", csv_bytes(rows))
    before = await count_listings(world, who.org_id)
    real = imports.service.add_listing
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 20:
            from mall.core.errors import Conflict

            raise Conflict("已存在相同品牌和型号的商品，不能重复上架", code="duplicate_listing")
        return await real(*args, **kwargs)

    monkeypatch.setattr(imports.service, "add_listing", flaky)
    assert await run(world, batch.id) == {"failed": 1}
    assert await count_listings(world, who.org_id) == before  # the 19 written rows were rolled back
    async with world.db.read() as s:
        done = await s.get(ListingImport, batch.id)
    assert done is not None and done.status == "failed" and "整份文件未导入" in done.error


async def test_http_upload_progress_and_report(client: Any, world: World) -> None:
    h = world.h("supplier_y")
    r = await client.post(
        "/api/supplier/imports",
        headers=h,
        files={"file": ("商品.csv", csv_bytes([good_row(1), good_row(2)]), "text/csv")},
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["total"] == 0 and body["report_url"] is None  # not read yet
    await run(world, uuid.UUID(body["id"]))
    r = await client.get(f"/api/supplier/imports/{body['id']}", headers=h)
    assert r.json()["status"] == "done" and r.json()["percent"] == 100 and r.json()["accepted"] == 2
    assert r.json()["total"] == 2
    r = await client.get(r.json()["report_url"], headers=h)
    assert r.status_code == 200 and "通过" in r.content.decode("utf-8-sig")
    # another supplier cannot see it
    r = await client.get(f"/api/supplier/imports/{body['id']}", headers=world.h("supplier_x"))
    assert r.status_code == 404
    # a wrong type is refused at once with a reason, and nothing is stored
    for name, content, code in [
        ("x.txt", b"abc", "file_invalid"),
        ("x.xlsx", b"not a zip", "file_invalid"),
        ("x.csv", b"PK\x03\x04 a workbook", "file_invalid"),
        ("x.csv", b"", "file_required"),
        ("x.csv", b"a" * (imports.MAX_BYTES + 1), "file_too_large"),
    ]:
        r = await client.post("/api/supplier/imports", headers=h, files={"file": (name, content, "text/csv")})
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code, (name, r.json())
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(ListingImport)) == 1
    # what only reading can tell is the job's: the import fails with the reason
    for content, reason in [("名称,品牌\n".encode(), "表头缺少必填列"), (csv_bytes([]), "没有商品数据行")]:
        r = await client.post(
            "/api/supplier/imports", headers=h, files={"file": ("x.csv", content, "text/csv")}
        )
        assert r.status_code == 202, r.text
        assert await run(world, uuid.UUID(r.json()["id"])) == {"failed": 1}
        failed = (await client.get(f"/api/supplier/imports/{r.json()['id']}", headers=h)).json()
        assert failed["status"] == "failed" and reason in failed["error"], failed
    r = await client.get("/api/catalog/import-template/xlsx")
    assert r.status_code == 200 and r.content[:2] == b"PK"
