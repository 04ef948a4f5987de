"""Suppliers' listing spreadsheets: reading CSV and XLSX files with Chinese headers into rows, the import
template, and the per-row import report.

This module only reads a file faithfully (header matching, encodings, cell rendering); what the values
mean (prices, catalogue codes, stock) is checked by the listing rules elsewhere.

An XLSX file is a zip of XML parts, and a small one can inflate to gigabytes (a 460 KB upload held
450 MB of shared strings). `check_xlsx` therefore inflates every part as a stream, with a hard cap
on the bytes actually produced (the sizes written in the zip directory can lie), and scans the XML
for its shape, before openpyxl is handed a workbook; the limits are the constants below. Reading is
for the import job only: the web process never calls anything here but `check_upload`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from xml.parsers import expat

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from mall.core.fields import spreadsheet_safe

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
_GZIP_MAGIC = b"\x1f\x8b"

# ---------------------------------------------------------------- limits

MIB = 1024 * 1024
MAX_ROWS = 10_000  # data rows of the sheet read (blank rows not counted)
SHEET_ROWS_MAX = 20_000  # rows of any sheet, blank ones included (row elements and row numbers)
SHEET_COLUMNS_MAX = 100  # columns of any sheet (up to CV)
CELL_CHARS_MAX = 32_767  # characters in one cell: Excel's own limit, so no genuine file is refused
# XLSX parts, inflated (a workbook saved by Excel has about a dozen parts of a few KB each):
MAX_PARTS = 200
SHEET_MAX = 64 * MIB  # one worksheet (xl/worksheets/*.xml)
SHARED_STRINGS_MAX = 32 * MIB  # xl/sharedStrings.xml
PART_MAX = 8 * MIB  # any other part: workbook, styles, theme, images…
INFLATED_MAX = 128 * MIB  # all parts together
PART_ELEMENTS_MAX = 500_000  # XML elements in a part other than a sheet or the shared strings

_DAMAGED = "文件无法读取：XLSX 文件已损坏或不是有效的 Excel 工作簿，请重新保存后再试"
_LIMIT = "文件超出导入限制："
_SHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml", re.IGNORECASE)
_XML_PART = (".xml", ".rels", ".vml")
_CELL_REF = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")


class SheetError(Exception):
    """A problem with the whole file; ``str(error)`` is a message for the user."""


@dataclass(frozen=True)
class SheetRow:
    """One data row: ``line`` is the row number shown in the user's spreadsheet (the header is row 1);
    ``values`` has every field of COLUMNS, "" where the cell is empty or the optional column is absent."""

    line: int
    values: dict[str, str]


# ---------------------------------------------------------------- XLSX checks before parsing


def _byte_cap(name: str) -> tuple[int, str]:
    if _SHEET_PART.fullmatch(name):
        return SHEET_MAX, "工作表"
    if name.lower() == "xl/sharedstrings.xml":
        return SHARED_STRINGS_MAX, "共享字符串"
    return PART_MAX, "部件"


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _too_many_rows() -> SheetError:
    return SheetError(
        f"{_LIMIT}工作表超过 {SHEET_ROWS_MAX} 行（空行也计算在内），请删除多余的行；"
        f"商品数据超过 {MAX_ROWS} 行请分批导入"
    )


class _PartScan:
    """One XML part through expat, its shape checked as it goes: no DOCTYPE (entities), and for a
    worksheet its rows and columns, for every part the length of each cell's text."""

    def __init__(self) -> None:
        p = expat.ParserCreate(namespace_separator=" ")
        p.buffer_text = True
        p.StartDoctypeDeclHandler = self._doctype
        p.EntityDeclHandler = self._doctype
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._text
        self.parser = p
        self.kind = ""  # sheet | strings | other, from the root element
        self.elements = self.rows = self.row = self.column = self.cells = 0
        self.run = self.cell_chars = 0
        self.in_cell = False

    def feed(self, data: bytes, final: bool = False) -> None:
        self.parser.Parse(data, final)

    def _doctype(self, *_: object) -> None:
        raise SheetError("文件无法读取：工作簿含有不允许的 XML 声明（DOCTYPE），请在 Excel 中另存后再试")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        self.elements += 1
        self.run = 0
        if not self.kind:
            self.kind = {"worksheet": "sheet", "sst": "strings"}.get(local, "other")
        if self.kind == "other":
            if self.elements > PART_ELEMENTS_MAX:
                raise SheetError(f"{_LIMIT}工作簿中的部件含有超过 {PART_ELEMENTS_MAX} 个元素")
        elif self.kind == "sheet" and local == "row":
            number = attrs.get("r", "")
            self.row = int(number) if number.isdigit() else self.row + 1
            self.rows += 1
            self.column = self.cells = 0
            if self.row > SHEET_ROWS_MAX or self.rows > SHEET_ROWS_MAX:
                raise _too_many_rows()
        elif self.kind == "sheet" and local == "c":
            ref = _CELL_REF.fullmatch(attrs.get("r", ""))
            self.column = _column_number(ref.group(1)) if ref else self.column + 1
            self.cells += 1
            if self.column > SHEET_COLUMNS_MAX or self.cells > SHEET_COLUMNS_MAX:
                raise SheetError(f"{_LIMIT}工作表超过 {SHEET_COLUMNS_MAX} 列，请删除多余的列")
            if ref and int(ref.group(2)) > SHEET_ROWS_MAX:
                raise _too_many_rows()
            self.in_cell, self.cell_chars = True, 0
        elif local == "si":
            self.in_cell, self.cell_chars = True, 0

    def _end(self, name: str) -> None:
        self.run = 0
        if name.endswith((" c", " si")) or name in ("c", "si"):
            self.in_cell = False

    def _text(self, data: str) -> None:
        self.run += len(data)
        if self.in_cell:
            self.cell_chars += len(data)
        if self.run > CELL_CHARS_MAX or self.cell_chars > CELL_CHARS_MAX:
            raise SheetError(f"{_LIMIT}有单元格超过 {CELL_CHARS_MAX} 个字符")


class _Overflow(Exception):
    pass


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> Iterator[bytes]:
    """A part's bytes as they are inflated; _Overflow as soon as more than `cap` are produced."""
    produced = 0
    with archive.open(info) as stream:
        while chunk := stream.read(64 * 1024):
            produced += len(chunk)
            if produced > cap:
                raise _Overflow
            yield chunk


def check_xlsx(content: bytes) -> None:
    """Refuse (SheetError) an XLSX file that inflates beyond the limits or is not shaped like a
    workbook, without handing it to any workbook reader."""
    try:
        _check_xlsx(content)
    except SheetError:
        raise
    except Exception as exc:  # zip, zlib and expat errors of a damaged file
        raise SheetError(_DAMAGED) from exc


def _check_xlsx(content: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        parts = archive.infolist()
        if len(parts) > MAX_PARTS:
            raise SheetError(f"{_LIMIT}工作簿含有 {len(parts)} 个部件，超过 {MAX_PARTS} 个的上限")
        names: set[str] = set()
        for info in parts:
            name = info.filename
            odd = (
                name in names
                or len(name) > 255
                or name.startswith("/")
                or "\\" in name
                or ".." in name.split("/")
                or any(ord(ch) < 32 for ch in name)
            )
            if odd or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise SheetError("文件无法读取：工作簿中有不合规的部件，请在 Excel 中另存后再试")
            if info.flag_bits & 0x1:
                raise SheetError("文件无法读取：工作簿已加密，请取消密码保护后再导入")
            names.add(name)
        # First the sizes alone (inflating is fast), so a bomb is refused in a fraction of a second…
        total = 0
        for info in parts:
            if info.is_dir():
                continue
            cap, label = _byte_cap(info.filename)
            budget = INFLATED_MAX - total
            first = True
            try:
                for chunk in _inflate(archive, info, min(cap, budget)):
                    if first and chunk.startswith((_ZIP_MAGIC, _OLE_MAGIC, _GZIP_MAGIC)):
                        raise SheetError(
                            "文件无法导入：工作簿中嵌入了其他文件或对象（压缩包、OLE 对象或宏），"
                            "请删除后另存为只含数据的工作簿"
                        )
                    first = False
                    total += len(chunk)
            except _Overflow:
                if budget < cap:
                    raise SheetError(
                        f"{_LIMIT}工作簿解压后超过 {INFLATED_MAX // MIB} MB 的上限（可能是压缩炸弹），"
                        "请另存为只含商品数据的工作簿"
                    ) from None
                raise SheetError(
                    f"{_LIMIT}工作簿中的{label}解压后超过 {cap // MIB} MB 的上限（可能是压缩炸弹），"
                    "请另存为只含商品数据的工作簿"
                ) from None
        # …then the XML of every part that is XML, whatever its name claims to be.
        for info in parts:
            if info.is_dir() or not info.filename.lower().endswith(_XML_PART):
                continue
            scan = _PartScan()
            for chunk in _inflate(archive, info, _byte_cap(info.filename)[0]):
                scan.feed(chunk)
            scan.feed(b"", final=True)


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


def _check_record(line: int, cells: Sequence[str]) -> None:
    """The sheet limits for a CSV record (an XLSX file met them in check_xlsx already)."""
    if line > SHEET_ROWS_MAX:
        raise _too_many_rows()
    if len(cells) > SHEET_COLUMNS_MAX:
        raise SheetError(f"{_LIMIT}第 {line} 行超过 {SHEET_COLUMNS_MAX} 列，请删除多余的列")
    if any(len(cell) > CELL_CHARS_MAX for cell in cells):
        raise SheetError(f"{_LIMIT}第 {line} 行有单元格超过 {CELL_CHARS_MAX} 个字符")


_SHORT_CELL = 256  # cells up to this length are stripped as they come


def _collect(
    records: Iterator[tuple[int, Sequence[str]]], *, csv_file: bool, max_rows: int
) -> list[SheetRow]:
    """Turn raw records (sheet row number, cell texts) into rows: header check, blank rows skipped,
    row limit enforced as soon as it is passed."""
    first = next(records, None)
    if first is None:
        raise SheetError("文件为空，未找到表头")
    _check_record(first[0], first[1])
    positions = _map_header(first[1], csv_file=csv_file)
    rows: list[SheetRow] = []
    # A workbook stores a text once and may cite it in every cell; stripping each citation would
    # make a copy per cell (a 32,767-character text cited 90,000 times is gigabytes). Long texts are
    # stripped once per distinct text and shared, so memory stays within the inflated-size caps.
    stripped: dict[str, str] = {}
    for line, cells in records:
        _check_record(line, cells)
        values = {field: "" for field, _, _ in COLUMNS}
        for field, index in positions.items():
            if index < len(cells):
                cell = cells[index]
                if len(cell) <= _SHORT_CELL:
                    values[field] = cell.strip()
                else:
                    values[field] = stripped.get(cell) or stripped.setdefault(cell, cell.strip())
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
    check_xlsx(content)
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
        raise SheetError(_DAMAGED) from exc


def _extension(filename: str) -> str:
    return filename.strip().lower().rsplit(".", 1)[-1] if "." in filename else ""


def check_upload(filename: str, content: bytes) -> None:
    """What can be told of an upload without reading it: a file type the import takes (from the
    extension) whose first bytes do not contradict it. Raises SheetError."""
    extension = _extension(filename)
    if extension == "xls":
        raise SheetError("仅支持 CSV 或 XLSX 文件（旧版 .xls 请在 Excel 中另存为 .xlsx）")
    if extension not in ("csv", "xlsx"):
        raise SheetError("仅支持 CSV 或 XLSX 文件")
    if extension == "xlsx" and not content.startswith(_ZIP_MAGIC):
        raise SheetError(_DAMAGED)
    if extension == "csv" and content.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        raise SheetError("文件无法读取：内容是 Excel 工作簿而不是 CSV，请检查扩展名或另存为 CSV")


def read_rows(filename: str, content: bytes, *, max_rows: int = MAX_ROWS) -> tuple[int, Iterator[SheetRow]]:
    """Read a listing spreadsheet: returns (number of data rows, the rows in sheet order).

    The format follows the extension (.csv or .xlsx). The header must be row 1; headers are matched
    leniently (whitespace, full-width parentheses, the （元） suffix, a few aliases) and unknown
    columns are ignored. Blank rows are skipped and not counted. Raises SheetError for a problem
    with the whole file (format, encoding, damage, header, the limits above)."""
    extension = _extension(filename)
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
