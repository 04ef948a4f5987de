"""Reading suppliers' listing spreadsheets (CSV and XLSX files built here), the templates and the report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from catalog.spreadsheet import (
    COLUMNS,
    SheetError,
    SheetRow,
    read_rows,
    report_csv,
    template_csv,
    template_xlsx,
)

HEADERS = [header for _, header, _ in COLUMNS]
FIELDS = [field for field, _, _ in COLUMNS]
SHEET_XML = "xl/worksheets/sheet1.xml"

PAPER = [
    "复印纸 A4",
    "得力",
    "70g 500张/包",
    "A05040101",
    "箱",
    "168.50",
    "185",
    "京东商城",
    "200",
    "白色，双面可印",
]
STAPLER = ["订书机", "晨光", "12号", "A02021102", "个", "25", "29.9", "", "40", ""]


def csv_bytes(rows: Sequence[Sequence[str]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: dict[int, Sequence[Any]]) -> bytes:
    """A workbook whose first sheet has the given rows at the given row numbers (others left out)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "商品"
    for number, values in rows.items():
        for column, value in enumerate(values, start=1):
            if value is not None:
                sheet.cell(row=number, column=column, value=value)
    workbook.create_sheet("说明").append(["第二个工作表不会被读取"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_entry(content: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    """The same zip archive with one member's bytes changed."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info, change(data) if info.filename == name else data)
    return out.getvalue()


def read_all(filename: str, content: bytes, **kwargs: int) -> tuple[int, list[SheetRow]]:
    count, rows = read_rows(filename, content, **kwargs)
    return count, list(rows)


def expect_error(filename: str, content: bytes, **kwargs: int) -> str:
    with pytest.raises(SheetError) as info:
        read_rows(filename, content, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_each_encoding_reads_the_same_rows(encoding: str) -> None:
    content = csv_bytes([HEADERS, PAPER, STAPLER], encoding)
    if encoding == "utf-8-sig":
        assert content.startswith(b"\xef\xbb\xbf")
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")

    count, rows = read_all("商品.csv", content)

    assert count == 2
    assert [row.line for row in rows] == [2, 3]
    assert rows[0].values == dict(zip(FIELDS, PAPER, strict=True))
    assert rows[1].values["name"] == "订书机"
    assert rows[1].values["reference_source"] == ""


def test_csv_extension_is_case_insensitive_and_utf16_with_bom_is_read() -> None:
    content = csv_bytes([HEADERS, PAPER], "utf-16")
    count, rows = read_all("  LISTINGS.CSV ", content)
    assert count == 1
    assert rows[0].values["brand"] == "得力"


def test_csv_values_are_stripped_and_blank_rows_skipped_but_keep_their_line_numbers() -> None:
    padded = [f"  {value}\u3000" for value in PAPER]
    content = csv_bytes([HEADERS, padded, [], [""] * len(HEADERS), ["   "] * len(HEADERS), STAPLER])
    count, rows = read_all("a.csv", content)
    assert count == 2
    assert [row.line for row in rows] == [2, 6]
    assert rows[0].values["name"] == "复印纸 A4"
    assert rows[0].values["price"] == "168.50"


def test_csv_line_numbers_count_records_not_physical_lines() -> None:
    described = [*PAPER[:-1], "第一行\n第二行\n第三行"]
    content = csv_bytes([HEADERS, described, STAPLER])
    _, rows = read_all("a.csv", content)
    assert rows[0].values["description"] == "第一行\n第二行\n第三行"
    assert [row.line for row in rows] == [2, 3]


def test_csv_short_rows_leave_missing_cells_empty() -> None:
    content = csv_bytes([HEADERS, PAPER[:3]])
    _, rows = read_all("a.csv", content)
    assert rows[0].values["spec_model"] == "70g 500张/包"
    assert rows[0].values["category_code"] == ""
    assert set(rows[0].values) == set(FIELDS)


def test_csv_that_is_really_a_workbook_is_refused() -> None:
    message = expect_error("a.csv", xlsx_bytes({1: HEADERS}))
    assert message.startswith("文件无法读取")


def test_csv_with_an_oversized_cell_is_a_sheet_error() -> None:
    content = csv_bytes([HEADERS, [*PAPER[:-1], "长" * 200_000]])
    assert expect_error("a.csv", content).startswith("文件无法读取")


def test_empty_csv() -> None:
    assert "表头" in expect_error("a.csv", b"")
    assert "表头" in expect_error("a.csv", b"\xef\xbb\xbf")


def test_tab_separated_file_saved_as_csv_gets_a_hint() -> None:
    content = "\t".join(HEADERS).encode("utf-8")
    message = expect_error("a.csv", content)
    assert "逗号" in message


# ---------------------------------------------------------------- header matching


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("商品名称", "name"),
        ("  商品名称 ", "name"),
        ("名称", "name"),
        ("商品名", "name"),
        ("*商品名称", "name"),
        ("商品名称（必填）", "name"),
        ("型号", "spec_model"),
        ("规格", "spec_model"),
        ("品目代码", "category_code"),
        ("售价(元)", "price"),
        ("售价（元）", "price"),
        ("售价 （元） ", "price"),
        ("售价", "price"),
        ("单价", "price"),
        ("价格（元）", "price"),
        ("参考价", "reference_price"),
        ("参考市场价(元)", "reference_price"),
        ("参考市场价", "reference_price"),
        ("数量", "stock"),
        ("库存数量", "stock"),
        ("商品描述", "description"),
    ],
)
def test_header_variants(header: str, field: str) -> None:
    header_row = [header if name == field else canonical for name, canonical, _ in COLUMNS]
    _, rows = read_all("a.csv", csv_bytes([header_row, PAPER]))
    assert rows[0].values[field] == PAPER[FIELDS.index(field)]


def test_columns_may_come_in_any_order_and_optional_ones_may_be_absent() -> None:
    required = [(field, header) for field, header, needed in COLUMNS if needed]
    shuffled = list(reversed(required))
    header_row = [header for _, header in shuffled]
    data_row = [PAPER[FIELDS.index(field)] for field, _ in shuffled]
    _, rows = read_all("a.csv", csv_bytes([header_row, data_row]))
    assert rows[0].values == {
        **dict(zip(FIELDS, PAPER, strict=True)),
        "reference_source": "",
        "description": "",
    }


def test_missing_required_columns_are_named() -> None:
    header_row = [header for field, header, _ in COLUMNS if field not in ("price", "stock")]
    message = expect_error("a.csv", csv_bytes([header_row, PAPER[:8]]))
    assert "售价（元）" in message
    assert "库存" in message
    assert "品牌" not in message


def test_missing_optional_columns_are_not_an_error() -> None:
    header_row = [header for _, header, required in COLUMNS if required]
    count, _ = read_all("a.csv", csv_bytes([header_row]))
    assert count == 0


def test_two_columns_for_one_field_are_refused() -> None:
    header_row = [*HEADERS, "型号"]
    message = expect_error("a.csv", csv_bytes([header_row, [*PAPER, "X1"]]))
    assert "规格型号" in message
    assert "型号" in message


def test_header_must_be_on_the_first_row() -> None:
    content = csv_bytes([["商品导入表"], HEADERS, PAPER])
    message = expect_error("a.csv", content)
    assert "商品名称" in message


# ---------------------------------------------------------------- XLSX


def test_xlsx_numbers_blank_rows_extra_columns_and_aliases() -> None:
    header = [
        "名称",
        "品牌",
        " 型号 ",
        "品目代码",
        "计量单位",
        "单价(元)",
        "参考价",
        "备注",
        "数量",
        "商品描述",
    ]
    content = xlsx_bytes(
        {
            1: header,
            2: ["复印纸", "得力", "A4 70g", "A05040101", "箱", 4599.0, 4599.5, "内部备注", 200, "  白色  "],
            3: [None] * 10,
            4: ["   ", "", None, None, None, None, None, "只有备注的一行", None, None],
            # row 5 is absent from the file altogether
            6: ["订书机", "晨光", 12, "A02021102", "个", 25, 29.9, None, 0, None],
            7: [
                "日期",
                "牌",
                "型",
                "A02021102",
                "个",
                dt.datetime(2025, 3, 1),  # noqa: DTZ001 - spreadsheet date cells carry no time zone
                dt.date(2025, 3, 2),
                None,
                True,
                dt.datetime(2025, 3, 1, 8, 30),  # noqa: DTZ001
            ],
        }
    )

    count, rows = read_all("商品.xlsx", content)

    assert count == 3
    assert [row.line for row in rows] == [2, 6, 7]
    first, second, third = (row.values for row in rows)
    assert first == {
        "name": "复印纸",
        "brand": "得力",
        "spec_model": "A4 70g",
        "category_code": "A05040101",
        "unit": "箱",
        "price": "4599",
        "reference_price": "4599.5",
        "reference_source": "",
        "stock": "200",
        "description": "白色",
    }
    assert second["spec_model"] == "12"
    assert second["price"] == "25"
    assert second["reference_price"] == "29.9"
    assert second["stock"] == "0"
    assert third["price"] == "2025-03-01"
    assert third["reference_price"] == "2025-03-02"
    assert third["stock"] == "TRUE"
    assert third["description"] == "2025-03-01 08:30:00"


def test_xlsx_floats_keep_what_the_file_stores() -> None:
    content = xlsx_bytes({1: HEADERS, 2: [*PAPER[:5], 111111.25, 222222.75, "", 7, ""]})
    # openpyxl writes 15 significant digits; Excel may store the full 17 of a binary float.
    content = rewrite_entry(
        content, SHEET_XML, lambda xml: xml.replace(b">111111.25<", b">0.30000000000000004<")
    )
    content = rewrite_entry(content, SHEET_XML, lambda xml: xml.replace(b">222222.75<", b">1.5E-7<"))
    _, rows = read_all("a.xlsx", content)
    assert rows[0].values["price"] == "0.30000000000000004"
    assert rows[0].values["reference_price"] == "0.00000015"


def test_xlsx_formulas_give_the_value_excel_saved() -> None:
    content = xlsx_bytes({1: HEADERS, 2: [*PAPER[:5], "=G2*0.9", 50, "", "=10+5", ""]})
    xml = zipfile.ZipFile(io.BytesIO(content)).read(SHEET_XML)
    # openpyxl writes an empty value as <v /> (its own writer) or <v></v> (with lxml installed)
    empty = next(v for v in (b"<v />", b"<v></v>") if b"<f>G2*0.9</f>" + v in xml)
    # Excel stores the last computed value beside each formula; openpyxl itself stores none.
    content = rewrite_entry(
        content, SHEET_XML, lambda xml: xml.replace(b"<f>G2*0.9</f>" + empty, b"<f>G2*0.9</f><v>45</v>")
    )
    _, rows = read_all("a.xlsx", content)
    assert rows[0].values["price"] == "45"
    assert rows[0].values["stock"] == ""


def test_xlsx_with_a_wrong_recorded_dimension_is_read_to_the_end() -> None:
    content = xlsx_bytes({1: HEADERS, 2: PAPER, 3: STAPLER})
    original = zipfile.ZipFile(io.BytesIO(content)).read(SHEET_XML)
    assert b'<dimension ref="A1:J3"' in original
    content = rewrite_entry(content, SHEET_XML, lambda xml: xml.replace(b'ref="A1:J3"', b'ref="A1:B2"'))
    count, rows = read_all("a.xlsx", content)
    assert count == 2
    assert rows[1].values["stock"] == "40"
    assert rows[1].values["description"] == ""


def test_xlsx_that_makes_openpyxl_warn_is_still_read() -> None:
    # Files from some generators have no named cell styles; openpyxl warns and carries on.
    content = rewrite_entry(
        xlsx_bytes({1: HEADERS, 2: PAPER}),
        "xl/styles.xml",
        lambda xml: re.sub(rb"<cellStyles.*?</cellStyles>", b"", xml, flags=re.DOTALL),
    )
    with pytest.warns(UserWarning, match="no default style"):
        load_workbook(io.BytesIO(content), read_only=True).close()
    count, rows = read_all("a.xlsx", content)
    assert count == 1
    assert rows[0].values["price"] == "168.50"


def test_xlsx_reads_only_the_first_sheet() -> None:
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    first.append(HEADERS)
    first.append(PAPER)
    second = workbook.create_sheet("其他")
    second.append(HEADERS)
    second.append(STAPLER)
    second.append(STAPLER)
    buffer = io.BytesIO()
    workbook.save(buffer)
    count, rows = read_all("a.xlsx", buffer.getvalue())
    assert count == 1
    assert rows[0].values["name"] == "复印纸 A4"


def test_xlsx_missing_header_and_empty_sheet() -> None:
    header_row = [header for header in HEADERS if header != "计量单位"]
    assert "计量单位" in expect_error("a.xlsx", xlsx_bytes({1: header_row}))
    assert "表头" in expect_error("a.xlsx", xlsx_bytes({}))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(7).randbytes(4096), id="random-bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(csv_bytes([HEADERS, PAPER]), id="csv-named-xlsx"),
        pytest.param(xlsx_bytes({1: HEADERS, 2: PAPER})[:700], id="truncated"),
    ],
)
def test_unreadable_xlsx_is_a_sheet_error(content: bytes) -> None:
    assert expect_error("a.xlsx", content).startswith("文件无法读取")


def test_zip_that_is_not_a_workbook_is_a_sheet_error() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "不是工作簿")
    assert expect_error("a.xlsx", buffer.getvalue()).startswith("文件无法读取")


def test_xlsx_with_broken_sheet_xml_is_a_sheet_error() -> None:
    content = xlsx_bytes({1: HEADERS, 2: PAPER})
    content = rewrite_entry(content, SHEET_XML, lambda xml: xml[: len(xml) // 2])
    assert expect_error("a.xlsx", content).startswith("文件无法读取")


# Built once: a workbook records its creation time, and hypothesis needs the same input on replay.
SOUND_XLSX = xlsx_bytes({1: HEADERS, 2: PAPER, 3: STAPLER})


@settings(
    max_examples=min(60, settings().max_examples), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_damaged_xlsx_never_raises_anything_but_sheet_error(data: st.DataObject) -> None:
    content = bytearray(SOUND_XLSX)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(content) - 1))
        content[position] = data.draw(st.integers(0, 255))
    try:
        count, rows = read_rows("a.xlsx", bytes(content))
    except SheetError:
        return
    assert count == len(list(rows))


@settings(max_examples=settings().max_examples, deadline=None)
@given(content=st.binary(max_size=2048), extension=st.sampled_from(["csv", "xlsx"]))
def test_arbitrary_bytes_never_raise_anything_but_sheet_error(content: bytes, extension: str) -> None:
    try:
        count, rows = read_rows(f"x.{extension}", content)
    except SheetError:
        return
    assert count == len(list(rows))


# ---------------------------------------------------------------- file type and row limit


@pytest.mark.parametrize("filename", ["a.txt", "a.xls", "a.xlsm", "a.ods", "a", "csv", "a.csv.exe"])
def test_other_file_types_are_refused(filename: str) -> None:
    assert expect_error(filename, csv_bytes([HEADERS, PAPER])).startswith("仅支持 CSV 或 XLSX 文件")


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
def test_row_limit_counts_data_rows_only(extension: str) -> None:
    rows = [HEADERS, PAPER, [], STAPLER, [""] * 10, PAPER]
    content = csv_bytes(rows) if extension == "csv" else xlsx_bytes(dict(enumerate(rows, start=1)))

    count, read = read_all(f"a.{extension}", content, max_rows=3)
    assert count == 3
    assert [row.line for row in read] == [2, 4, 6]

    message = expect_error(f"a.{extension}", content, max_rows=2)
    assert "2" in message
    assert "上限" in message


def test_default_row_limit_is_10000() -> None:
    assert read_all("a.csv", csv_bytes([HEADERS] + [STAPLER] * 10_000))[0] == 10_000
    assert "10000" in expect_error("a.csv", csv_bytes([HEADERS] + [STAPLER] * 10_001))


def test_csv_sheet_limits() -> None:
    blank_rows = csv_bytes([HEADERS, *[[""]] * 20_000, STAPLER])
    assert "20000" in expect_error("a.csv", blank_rows)
    wide = csv_bytes([HEADERS + [f"备注{i}" for i in range(100)], STAPLER])
    assert "100 列" in expect_error("a.csv", wide)
    long_cell = csv_bytes([HEADERS, [*STAPLER[:-1], "长" * 32_768]])
    assert "32767" in expect_error("a.csv", long_cell)
    assert read_all("a.csv", csv_bytes([HEADERS, [*STAPLER[:-1], "长" * 32_767]]))[0] == 1


# ---------------------------------------------------------------- templates


def test_csv_template_has_bom_and_reads_back() -> None:
    content = template_csv()
    assert content.startswith(b"\xef\xbb\xbf")
    header = next(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert header == HEADERS
    count, rows = read_all("模板.csv", content)
    assert count == 1
    assert all(rows[0].values[field] for field in FIELDS)


def test_xlsx_template_matches_the_csv_template() -> None:
    content = template_xlsx()
    workbook = load_workbook(io.BytesIO(content))
    sheet = workbook.worksheets[0]
    assert [cell.value for cell in sheet[1]] == HEADERS
    assert all(cell.font.b for cell in sheet[1])
    assert sheet["F2"].value == 168.5  # a number cell, not text
    _, from_xlsx = read_all("模板.xlsx", content)
    _, from_csv = read_all("模板.csv", template_csv())
    assert from_xlsx[0].values["name"] == from_csv[0].values["name"]
    assert from_xlsx[0].values["category_code"] == from_csv[0].values["category_code"]
    assert from_xlsx[0].values["price"] == "168.5"
    assert from_csv[0].values["price"] == "168.50"


# ---------------------------------------------------------------- report


def test_report_round_trip() -> None:
    results = [
        (2, "通过", ""),
        (3, "未通过", "售价高于参考市场价；品目编码“A9”不存在"),
        (4, "未通过", '描述含有逗号, 引号" 和\n换行'),
    ]
    content = report_csv(results)
    assert content.startswith(b"\xef\xbb\xbf")
    assert not content[3:].startswith(b"\xef\xbb\xbf")
    read = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert read == [
        ["行号", "结果", "原因"],
        *([str(line), result, reason] for line, result, reason in results),
    ]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_report_guards_against_formulas(prefix: str) -> None:
    dangerous = f'{prefix}HYPERLINK("http://example.invalid","点击")'
    content = report_csv([(2, dangerous, dangerous), (3, "通过", f"a{prefix}b")])
    read = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert read[1] == ["2", "'" + dangerous, "'" + dangerous]
    assert read[2] == ["3", "通过", f"a{prefix}b"]


def test_empty_report_has_the_header_only() -> None:
    content = report_csv([])
    assert content.decode("utf-8-sig").splitlines() == ["行号,结果,原因"]
