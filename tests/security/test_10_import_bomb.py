"""Point 10: a spreadsheet that inflates to hundreds of megabytes is refused before any workbook
parser sees it, and the web process never parses an upload at all.

The bombs are built here, small on disk (a few hundred KB) and huge once inflated. "Before any
parsing" is proven by a spy on openpyxl's `load_workbook` that records every call; "the bytes
actually produced are capped" by a counter on zipfile's member reads. The timings (refusal time,
/healthz latency during an import, web memory) belong to bench/imports.py, not here.
"""

from __future__ import annotations

import asyncio
import csv
import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from catalog import imports, spreadsheet
from tests.catalog.test_imports import HEADER, good_row, xlsx
from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, csrf, login_ok

MIB = 1024 * 1024
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
GOOD = good_row(1)


def small_workbook() -> bytes:
    return xlsx([GOOD])


def replace_part(content: bytes, name: str, pieces: Callable[[], Iterator[bytes]]) -> bytes:
    """The workbook with one part (added if absent) streamed from `pieces`, deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info, src.read(info.filename))
        with dst.open(name, "w", force_zip64=True) as fh:
            for piece in pieces():
                fh.write(piece)
    return out.getvalue()


def repeated(head: str, body: str, times: int, tail: str) -> Callable[[], Iterator[bytes]]:
    def pieces() -> Iterator[bytes]:
        yield head.encode()
        block = (body * 1000).encode()
        for _ in range(times // 1000):
            yield block
        yield tail.encode()

    return pieces


def shared_strings_bomb(inflated_mib: int = 100) -> bytes:
    """Many small shared strings: a part far above its cap once inflated (the 460 KB file of the issue
    inflated to 450 MB; this one to `inflated_mib`)."""
    si = "<si><t>炸弹炸弹炸弹</t></si>"
    times = inflated_mib * MIB // len(si.encode())
    return replace_part(
        small_workbook(),
        "xl/sharedStrings.xml",
        repeated(f'<sst xmlns="{MAIN}">', si, times, "</sst>"),
    )


def one_huge_string() -> bytes:
    return replace_part(
        small_workbook(),
        "xl/sharedStrings.xml",
        repeated(f'<sst xmlns="{MAIN}"><si><t>', "长", 40_000, "</t></si></sst>"),
    )


def sheet_with(rows_xml: Callable[[], Iterator[bytes]]) -> bytes:
    return replace_part(small_workbook(), "xl/worksheets/sheet1.xml", rows_xml)


def sheet_xml(rows: str) -> Callable[[], Iterator[bytes]]:
    def pieces() -> Iterator[bytes]:
        yield f'<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData></worksheet>'.encode()

    return pieces


def lying_sizes(content: bytes, name: str, claimed: int) -> bytes:
    """The same archive, but the local header and the central directory claim `claimed` bytes as the
    inflated size of `name` (ZIP64 is not used by the member patched here)."""
    data = bytearray(content)
    encoded = name.encode()
    # (signature, offsets of the name's length, the name and the uncompressed size) of a local file
    # header and of a central directory entry
    for signature, name_len_at, name_at, size_at in (
        (b"PK\x03\x04", 26, 30, 22),
        (b"PK\x01\x02", 28, 46, 24),
    ):
        pos = 0
        while (pos := data.find(signature, pos)) >= 0:
            name_len = struct.unpack_from("<H", data, pos + name_len_at)[0]
            if data[pos + name_at : pos + name_at + name_len] == encoded:
                struct.pack_into("<I", data, pos + size_at, claimed)
            pos += 4
    return bytes(data)


def plain_zip_member(content: bytes, name: str, payload: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        dst.writestr(name, payload)
    return out.getvalue()


def nested_zip() -> bytes:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.xml", "<a/>" * 1000)
    return plain_zip_member(small_workbook(), "xl/embeddings/payload.bin", inner.getvalue())


def many_parts() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(small_workbook())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        for i in range(1000):
            dst.writestr(f"xl/media/n{i}.txt", b"x")
    return out.getvalue()


def doctype() -> bytes:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        f'<styleSheet xmlns="{MAIN}"><numFmts>&lol2;</numFmts></styleSheet>'
    )
    return replace_part(small_workbook(), "xl/styles.xml", lambda: iter([laughs.encode()]))


BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "shared strings inflate to 100 MB": (shared_strings_bomb, "MB"),
    "the sizes in the zip directory lie": (
        lambda: lying_sizes(shared_strings_bomb(), "xl/sharedStrings.xml", 1000),
        "文件无法读取",
    ),
    "one cell of 40,000 characters": (one_huge_string, "32767"),
    "a sheet that inflates beyond its cap": (
        lambda: sheet_with(
            repeated(
                f'<worksheet xmlns="{MAIN}"><sheetData>',
                '<row r="2"><c r="A2"><v>1</v></c></row>',
                2_500_000,
                "</sheetData></worksheet>",
            )
        ),
        "MB",
    ),
    "a row far down the sheet": (
        lambda: sheet_with(sheet_xml('<row r="1048576"><c r="A1048576"><v>1</v></c></row>')),
        "行",
    ),
    "a cell far to the right": (
        lambda: sheet_with(sheet_xml('<row r="1"><c r="XFD1"><v>1</v></c></row>')),
        "列",
    ),
    "a thousand parts": (many_parts, "部件"),
    "a zip inside the workbook": (nested_zip, "嵌入"),
    "a DOCTYPE with entities": (doctype, "DOCTYPE"),
}


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of openpyxl's workbook reader (under any name it is reachable by) is recorded."""
    calls: list[str] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append("load_workbook")
        raise AssertionError("openpyxl was asked to parse the file")

    import openpyxl
    import openpyxl.reader.excel

    for target in (spreadsheet, openpyxl, openpyxl.reader.excel):
        monkeypatch.setattr(target, "load_workbook", spy)
    return calls


@pytest.mark.parametrize("bomb", list(BOMBS), ids=list(BOMBS))
def test_a_bomb_is_refused_before_openpyxl_sees_it(bomb: str, spies: list[str]) -> None:
    make, fragment = BOMBS[bomb]
    content = make()
    assert len(content) < imports.MAX_BYTES  # small enough to pass the upload cap
    with pytest.raises(spreadsheet.SheetError) as refused:
        list(spreadsheet.read_rows("商品.xlsx", content)[1])
    assert spies == [], "openpyxl parsed a workbook that should have been refused"
    message = str(refused.value)
    assert fragment in message, message
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message)


@pytest.mark.slow
def test_the_bytes_inflated_are_capped_whatever_the_directory_says(
    spies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    produced = {"bytes": 0}
    real_read = zipfile.ZipExtFile.read

    def counting_read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        data = real_read(self, n)
        produced["bytes"] += len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    for content in (
        shared_strings_bomb(200),
        lying_sizes(shared_strings_bomb(200), "xl/sharedStrings.xml", 4_000_000_000),
    ):
        produced["bytes"] = 0
        with pytest.raises(spreadsheet.SheetError):
            spreadsheet.read_rows("a.xlsx", content)
        # the shared strings' cap plus what the other parts of a small workbook hold
        assert produced["bytes"] <= spreadsheet.SHARED_STRINGS_MAX + MIB, produced
    assert spies == []


def test_a_sound_workbook_passes_the_checks_and_is_read() -> None:
    count, rows = spreadsheet.read_rows("a.xlsx", small_workbook())
    assert count == 1 and next(rows).values["spec_model"] == "启天M1"


# ---------------------------------------------------------------- the web process never parses


def csv_file(rows: int) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    for i in range(rows):
        w.writerow(
            [f"联想 启天M{i} 台式计算机", "联想", f"启天M{i}", "A02010105", "台", "4599.00", "4699", "", 20]
        )
    return buf.getvalue().encode("utf-8-sig")


@pytest.fixture
def parser_forbidden(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """While set, any call into the spreadsheet readers is recorded and fails; the returned function
    lifts the ban (for the job's turn) and gives the calls made so far."""
    calls: list[str] = []
    patch = pytest.MonkeyPatch()

    def forbid(name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"the web process called {name}")

        return refuse

    for name in ("read_rows", "check_xlsx", "load_workbook", "_read_csv", "_read_xlsx"):
        patch.setattr(spreadsheet, name, forbid(name), raising=False)

    def lift() -> list[str]:
        patch.undo()
        return calls

    yield lift
    patch.undo()


async def run_job(import_id: str) -> Any:
    from workers import jobs

    return await asyncio.to_thread(jobs.run_import, import_id)


async def test_the_api_upload_answers_before_any_parsing_and_the_job_refuses_a_bomb(
    client: Any, world: World, parser_forbidden: Callable[[], list[str]]
) -> None:
    h = world.h("supplier_y")
    r = await client.post(
        "/api/supplier/imports",
        headers=h,
        files={"file": ("炸弹.xlsx", shared_strings_bomb(), "application/octet-stream")},
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["error"] == ""
    assert parser_forbidden() == [], "the upload handler parsed the file"
    # the worker's turn: its own process, engine and event loop
    assert await run_job(body["id"]) == {"failed": 1}
    r = await client.get(f"/api/supplier/imports/{body['id']}", headers=h)
    done = r.json()
    assert done["status"] == "failed" and done["status_label"] == "失败" and done["report_url"] is None
    assert "MB" in done["error"] and "上限" in done["error"], done["error"]


async def test_the_page_upload_answers_before_any_parsing_and_shows_the_jobs_reason(
    client: Any, world: World, parser_forbidden: Callable[[], list[str]]
) -> None:
    await login_ok(client, "supplier_y")
    assert_page(await client.get("/supplier/listings", headers=HTML))
    r = await client.post(
        "/supplier/imports",
        data={"_csrf_token": csrf(client)},
        files={"file": ("炸弹.xlsx", one_huge_string(), "application/octet-stream")},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = r.headers["location"]
    assert page.startswith("/supplier/imports/")
    assert parser_forbidden() == [], "the upload handler parsed the file"
    text = assert_page(await client.get(page, headers=HTML))
    assert "排队中" in text
    await run_job(page.rsplit("/", 1)[1])
    text = assert_page(await client.get(page, headers=HTML))
    assert "失败" in text and "32767" in text


async def test_a_sound_upload_is_parsed_by_the_job_only(
    client: Any, world: World, parser_forbidden: Callable[[], list[str]]
) -> None:
    h = world.h("supplier_y")
    r = await client.post(
        "/api/supplier/imports", headers=h, files={"file": ("商品.csv", csv_file(3), "text/csv")}
    )
    assert r.status_code == 202, r.text
    assert r.json()["total"] == 0  # not counted: counting is parsing
    assert parser_forbidden() == []
    assert await run_job(r.json()["id"]) == {"accepted": 3, "refused": 0}
    done = (await client.get(f"/api/supplier/imports/{r.json()['id']}", headers=h)).json()
    assert done["status"] == "done" and done["total"] == 3 and done["accepted"] == 3


@pytest.mark.slow
async def test_ten_thousand_rows_are_the_limit(world: World) -> None:
    """10,000 data rows are read (strict, with the last one bad, so the test writes no listings);
    10,001 end the import as failed."""
    from catalog.models import ListingImport
    from mall.core import files

    who = world.who["supplier_y"]
    store = files.store_for(world.settings, world.db)
    for rows, expected in ((10_000, "done"), (10_001, "failed")):
        content = csv_file(rows).replace(b"4599.00", b"4599.001", 1) if rows == 10_000 else csv_file(rows)
        batch = await imports.start_import(world.db, store, who, f"{rows}.csv", content, strict=True)
        await run_job(str(batch.id))
        async with world.db.read() as s:
            row = await s.get(ListingImport, batch.id)
        assert row is not None and row.status == expected, (rows, row and row.error)
        if expected == "failed":
            assert "10000" in row.error and "上限" in row.error
        else:
            assert row.total == 10_000 and row.accepted == 0 and row.refused == 10_000


def test_a_long_text_cited_in_every_cell_is_kept_once() -> None:
    """Amplification without a bomb: one long shared string (with spaces around it, so that trimming
    makes a copy) cited by every cell of every row. The rows share one trimmed copy, so a small file
    can no longer become gigabytes of strings in the import job."""
    long_text = " " + "长" * 30_000 + " "
    columns = "ABCDEFGHI"
    header = "".join(
        f'<c r="{col}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for col, name in zip(columns, HEADER, strict=True)
    )
    body = "".join(
        f'<row r="{n}">' + "".join(f'<c r="{col}{n}" t="s"><v>0</v></c>' for col in columns) + "</row>"
        for n in range(2, 202)
    )
    content = sheet_with(sheet_xml(f'<row r="1">{header}</row>{body}'))
    # openpyxl writes inline strings: declare a shared strings part as Excel does.
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        types = z.read("[Content_Types].xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    types = types.replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdStrings" Target="sharedStrings.xml" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/sharedStrings"/></Relationships>',
    )
    content = replace_part(content, "[Content_Types].xml", lambda: iter([types.encode()]))
    content = replace_part(content, "xl/_rels/workbook.xml.rels", lambda: iter([rels.encode()]))
    content = replace_part(
        content,
        "xl/sharedStrings.xml",
        lambda: iter(
            [f'<sst xmlns="{MAIN}"><si><t xml:space="preserve">{long_text}</t></si></sst>'.encode()]
        ),
    )
    _count, rows = spreadsheet.read_rows("商品.xlsx", content)
    kept = list(rows)
    assert len(kept) == 200
    first = kept[0].values["name"]
    assert first == long_text.strip()
    assert all(row.values[field] is first for row in kept for field in ("name", "brand", "spec_model"))
