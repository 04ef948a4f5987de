"""Suppliers' listing spreadsheets: reading CSV and XLSX files with Chinese headers into rows, the import
template, and the per-row import report.

This module only reads a file faithfully (header matching, encodings, cell rendering); what the values
mean (prices, catalogue codes, stock) is checked by the listing rules elsewhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from mall.fields import spreadsheet_safe

# (field, header as in the template, required), in template order.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("name", "商品名称", True),
    ("brand", "品牌", True),
    ("spec_model", "规格型号", True),
    ("category_code", "品目编码", True),
    ("unit", "计量单位", True),
    ("price", "售价（元）", True),
    ("reference_price", "参考市场价（元）", True),
    ("reference_source", "参考价来源", False),
    ("stock", "库存", True),
    ("description", "商品描述", False),
)

# Other headers accepted for a field, besides its template header.
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("名称", "商品名", "产品名称"),
    "brand": ("品牌名称",),
    "spec_model": ("型号", "规格", "规格/型号"),
    "category_code": ("品目代码", "品目"),
    "unit": ("单位",),
    "price": ("单价", "价格", "销售价"),
    "reference_price": ("参考价", "参考价格", "市场价"),
    "reference_source": ("参考价格来源", "市场价来源"),
    "stock": ("数量", "库存数量"),
    "description": ("描述", "商品说明"),
}

_HEADER_OF = {field: header for field, header, _ in COLUMNS}

_EXAMPLE_ROW: dict[str, str | int] = {
    "name": "得力 A4 复印纸 70g",
    "brand": "得力",
    "spec_model": "A4 70g 500张/包 8包/箱",
    "category_code": "A05040101",
    "unit": "箱",
    "price": "168.50",
    "reference_price": "185.00",
    "reference_source": "京东商城 2025年1月",
    "stock": 200,
    "description": "白色复印纸，适用于激光和喷墨打印机",
}

# Trailing notes some templates put on a header, e.g. 售价（元）, 商品名称（必填）.
_HEADER_SUFFIX = re.compile(r"(?:\((?:元|人民币元|必填|选填|可选)\))+$")
_WHITESPACE = re.compile(r"\s+")

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


class SheetError(Exception):
    """A problem with the whole file; ``str(error)`` is a message for the user."""


@dataclass(frozen=True)
class SheetRow:
    """One data row: ``line`` is the row number shown in the user's spreadsheet (the header is row 1);
    ``values`` has every field of COLUMNS, "" where the cell is empty or the optional column is absent."""

    line: int
    values: dict[str, str]


def _normalize_header(text: str) -> str:
    # NFKC folds full-width parentheses, letters and spaces into their half-width forms.
    folded = _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))
    folded = folded.strip("*")
    return _HEADER_SUFFIX.sub("", folded)


def _build_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for field, header, _ in COLUMNS:
        for name in (header, *_ALIASES.get(field, ())):
            key = _normalize_header(name)
            assert lookup.get(key, field) == field, f"header {name!r} is ambiguous"
            lookup[key] = field
    return lookup


_LOOKUP = _build_lookup()


def _map_header(cells: Sequence[str], *, csv_file: bool) -> dict[str, int]:
    """Field -> column index (0-based) for the header row; unknown columns are left out."""
    positions: dict[str, int] = {}
    for index, cell in enumerate(cells):
        field = _LOOKUP.get(_normalize_header(cell))
        if field is None:
            continue
        if field in positions:
            first = cells[positions[field]].strip()
            raise SheetError(
                f"表头“{first}”和“{cell.strip()}”都对应“{_HEADER_OF[field]}”列，请只保留其中一列"
            )
        positions[field] = index
    missing = [header for field, header, required in COLUMNS if required and field not in positions]
    if missing:
        if not any(cell.strip() for cell in cells):
            raise SheetError("第 1 行应为表头，但该行为空；请使用商品导入模板")
        message = f"表头缺少必填列：{'、'.join(missing)}。请使用商品导入模板，表头须在第 1 行"
        if csv_file and any("\t" in cell for cell in cells):
            message += "（CSV 文件须以英文逗号分隔）"
        raise SheetError(message)
    return positions


def _collect(
    records: Iterator[tuple[int, Sequence[str]]], *, csv_file: bool, max_rows: int
) -> list[SheetRow]:
    """Turn raw records (sheet row number, cell texts) into rows: header check, blank rows skipped,
    row limit enforced as soon as it is passed."""
    first = next(records, None)
    if first is None:
        raise SheetError("文件为空，未找到表头")
    positions = _map_header(first[1], csv_file=csv_file)
    rows: list[SheetRow] = []
    for line, cells in records:
        values = {field: "" for field, _, _ in COLUMNS}
        for field, index in positions.items():
            if index < len(cells):
                values[field] = cells[index].strip()
        if not any(values.values()):
            continue
        if len(rows) >= max_rows:
            raise SheetError(f"数据超过 {max_rows} 行的上限，请分批导入")
        rows.append(SheetRow(line=line, values=values))
    return rows


def _decode_csv(content: bytes) -> str:
    if content.startswith(_ZIP_MAGIC) or content.startswith(_OLE_MAGIC):
        raise SheetError("文件无法读取：内容是 Excel 工作簿而不是 CSV，请检查扩展名或另存为 CSV")
    if content.startswith(_UTF16_BOMS):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SheetError("文件无法读取：文本编码无法识别，请另存为 CSV UTF-8 格式") from exc
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Excel in Chinese locales saves CSV in the ANSI code page (GBK); GB18030 is its superset.
        return content.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SheetError("文件无法读取：文本编码无法识别，请另存为 CSV UTF-8 格式") from exc


def _read_csv(content: bytes, max_rows: int) -> list[SheetRow]:
    text = _decode_csv(content)
    # Records are numbered as a spreadsheet program shows them: a quoted cell spanning several
    # lines is still one row.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _collect(enumerate(reader, start=1), csv_file=True, max_rows=max_rows)
    except csv.Error as exc:
        # E.g. a cell longer than the csv module's field size limit.
        raise SheetError(f"文件无法读取：CSV 格式有误（第 {reader.line_num} 行附近）") from exc


def _render_cell(value: object) -> str:
    """A cell value as text, without the float noise of the XLSX storage format."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        # 4599.0 -> "4599", 1.5e-07 -> "0.00000015"
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _xlsx_records(sheet: ReadOnlyWorksheet) -> Iterator[tuple[int, Sequence[str]]]:
    # The dimension recorded in the file is not trusted: some programs write a wrong one, and
    # openpyxl would then stop early.
    sheet.reset_dimensions()
    # types-openpyxl declares ReadOnlyWorksheet.iter_rows as Worksheet's unbound function, so the
    # calls below fail its self-type check although openpyxl shares the method on purpose.
    header = next(sheet.iter_rows(max_row=1, values_only=True), ())  # type: ignore[misc]
    header_cells = [_render_cell(value) for value in header]
    yield 1, header_cells
    width = max(
        (index + 1 for index, cell in enumerate(header_cells) if _LOOKUP.get(_normalize_header(cell))),
        default=1,
    )
    rows = sheet.iter_rows(min_row=2, max_col=width, values_only=True)  # type: ignore[misc]
    for line, row in enumerate(rows, start=2):
        yield line, [_render_cell(value) for value in row]


def _read_xlsx(content: bytes, max_rows: int) -> list[SheetRow]:
    try:
        with warnings.catch_warnings():
            # openpyxl warns about features it drops (data validation, conditional formatting,
            # missing default style); none of them matter for reading values.
            warnings.simplefilter("ignore")
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
            try:
                sheets = workbook.worksheets
                if not sheets or not isinstance(sheets[0], ReadOnlyWorksheet):
                    raise SheetError("文件无法读取：工作簿中没有工作表")
                return _collect(_xlsx_records(sheets[0]), csv_file=False, max_rows=max_rows)
            finally:
                workbook.close()
    except SheetError:
        raise
    except Exception as exc:
        # A damaged or disguised file can fail anywhere inside the zip and XML readers, with
        # many exception types; to the user they all mean the same thing.
        raise SheetError("文件无法读取：XLSX 文件已损坏或不是有效的 Excel 工作簿，请重新保存后再试") from exc


def read_rows(filename: str, content: bytes, *, max_rows: int = 5000) -> tuple[int, Iterator[SheetRow]]:
    """Read a listing spreadsheet: returns (number of data rows, the rows in sheet order).

    The format follows the extension (.csv or .xlsx). The header must be row 1; headers are matched
    leniently (whitespace, full-width parentheses, the （元） suffix, a few aliases) and unknown
    columns are ignored. Blank rows are skipped and not counted. Raises SheetError for a problem
    with the whole file (format, encoding, damage, header, too many rows)."""
    extension = filename.strip().lower().rsplit(".", 1)[-1] if "." in filename else ""
    if extension == "csv":
        rows = _read_csv(content, max_rows)
    elif extension == "xlsx":
        rows = _read_xlsx(content, max_rows)
    elif extension == "xls":
        raise SheetError("仅支持 CSV 或 XLSX 文件（旧版 .xls 请在 Excel 中另存为 .xlsx）")
    else:
        raise SheetError("仅支持 CSV 或 XLSX 文件")
    return len(rows), iter(rows)


def _csv_bytes(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerows(rows)
    # UTF-8 with a byte order mark, so that Excel opens it without garbling the Chinese text.
    return buffer.getvalue().encode("utf-8-sig")


def template_csv() -> bytes:
    """The import template as CSV (UTF-8 with BOM): the header row and one example row."""
    header = [spreadsheet_safe(header) for _, header, _ in COLUMNS]
    example = [spreadsheet_safe(str(_EXAMPLE_ROW[field])) for field, _, _ in COLUMNS]
    return _csv_bytes([header, example])


def template_xlsx() -> bytes:
    """The import template as XLSX: the header row (bold) and one example row."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("商品导入")
    for index, (_, header, _) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, 2 * len(header) + 4)
    bold = Font(bold=True)
    header_cells = []
    for _, header, _ in COLUMNS:
        cell = WriteOnlyCell(sheet, value=spreadsheet_safe(header))
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    example: list[str | int | float] = []
    for field, _, _ in COLUMNS:
        value = _EXAMPLE_ROW[field]
        # Amounts as numbers, so the example behaves like a user's own figures in Excel; openpyxl
        # would store text starting with "=" as a formula.
        if field in ("price", "reference_price"):
            example.append(float(value))
        else:
            example.append(spreadsheet_safe(value) if isinstance(value, str) else value)
    sheet.append(example)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def report_csv(rows: Iterable[tuple[int, str, str]]) -> bytes:
    """The per-row import report (行号, 结果, 原因) as CSV, UTF-8 with BOM. Text cells that a
    spreadsheet program would run as a formula are prefixed with a single quote."""
    lines: list[list[str]] = [["行号", "结果", "原因"]]
    lines.extend(
        [str(line), spreadsheet_safe(result), spreadsheet_safe(reason)] for line, result, reason in rows
    )
    return _csv_bytes(lines)
