"""The export formats: rows of Chinese columns for CSV (streamed) and XLSX (a file: a zip cannot
stream), and the OCDS release package (streamed). Text cells are safe to open in a spreadsheet program."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from sqlalchemy import select

from catalog.categories import names
from mall.core import clock, xlsx
from mall.core.clock import SHANGHAI
from mall.core.db import Database
from mall.core.fields import spreadsheet_safe
from mall.core.models import Organization
from mall.core.settings import Settings
from mall.ledger import ocds
from mall.ledger.disclosure import KIND_LABELS, MODE_LABELS
from mall.ledger.exports.reading import ExportQuery, Tally, iter_records, matching_lines
from mall.sme.models import SmeDeclaration

FORMATS = ("csv", "xlsx", "ocds")
FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel（XLSX）", "ocds": "OCDS JSON"}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ocds": "application/json",
}
SUFFIXES = {"csv": ".csv", "xlsx": ".xlsx", "ocds": ".ocds.json"}
# Excel stops at 1,048,576 rows a sheet: bigger exports continue on the next sheet.
SHEET_ROWS = 1_000_000
HEADERS = [
    "公开序号",
    "记录编号",
    "记录类型",
    "更正/取消的记录",
    "采购方式",
    "订单编号",
    "区划",
    "成交日期",
    "发布时间（北京时间）",
    "采购人",
    "采购人统一社会信用代码",
    "供应商",
    "供应商统一社会信用代码",
    "供应商地址",
    "总金额（元）",
    "行号",
    "品目编码",
    "品目名称",
    "商品名称",
    "品牌",
    "规格型号",
    "数量",
    "单位",
    "单价（元）",
    "金额（元）",
    "失败原因",
    "哈希",
]
# An amount or quantity as the ledger writes it (the minus sign is there for safety: none is negative).
PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
MONEY_COLUMNS = frozenset(HEADERS.index(h) for h in ("总金额（元）", "单价（元）", "金额（元）"))
NUMBER_COLUMNS = MONEY_COLUMNS | {HEADERS.index("数量")}


def _beijing(rfc3339: str) -> str:
    """The publication instant (UTC in the record) as China time, the way people read it."""
    at = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- rows (CSV and XLSX)


def record_rows(record: dict[str, Any], category: str | None, names: dict[str, str]) -> Iterator[list[Any]]:
    """One row per line item (only the lines in the 品目 when filtered by one); amounts as exact text,
    text cells safe to open in a spreadsheet program (mall.core.fields.spreadsheet_safe)."""
    supplier = record.get("supplier") or {}
    head = [
        record["seq"],
        _text(record["id"]),
        _text(KIND_LABELS.get(record["kind"], record["kind"])),
        _text(record.get("amends")),
        _text(MODE_LABELS.get(record["mode"], record["mode"])),
        _text(record["order_no"]),
        _text(record.get("region_code")),
        _text(record["deal_date"]),
        _beijing(record["published_at"]),
        _text(record["buyer"]["name"]),
        _text(record["buyer"]["credit_code"]),
        _text(supplier.get("name")),
        _text(supplier.get("credit_code")),
        _text(supplier.get("address")),
        _number(record.get("total_amount")),
    ]
    tail = [_text(record.get("reason")), _text(record["hash"])]
    lines = matching_lines(record, category) or [{}]
    for n, line in enumerate(lines, start=1):
        code = str(line.get("category_code") or "")
        yield [
            *head,
            n if line else "",
            _text(code),
            _text(names.get(code, "") if code else ""),
            _text(line.get("item_name")),
            _text(line.get("brand")),
            _text(line.get("spec_model")),
            _number(line.get("quantity")),
            _text(line.get("unit")),
            _number(line.get("unit_price")),
            _number(line.get("amount")),
            *tail,
        ]


def _text(value: Any) -> str:
    """A text cell: one that a spreadsheet program would run as a formula is neutralised."""
    return spreadsheet_safe(str(value or ""))


def _number(value: Any) -> str:
    """An amount or quantity cell: the ledger's exact decimal text. A plain decimal, negative or not,
    is read as a number, never as a formula; anything else is text, neutralised like any other."""
    text = str(value or "")
    return text if not text or PLAIN_DECIMAL.fullmatch(text) else spreadsheet_safe(text)


def _category_names() -> dict[str, str]:
    return names()


async def csv_chunks(
    db: Database, q: ExportQuery, *, upto: int | None = None, tally: Tally | None = None
) -> AsyncIterator[bytes]:
    """UTF-8 with a BOM (so Excel reads the Chinese right), Chinese headers, one chunk per batch."""
    names = _category_names()
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(HEADERS)
    n = 0
    async for record in iter_records(db, q, upto=upto, tally=tally):
        writer.writerows(record_rows(record, q.category, names))
        n += 1
        if n % 200 == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


# ---------------------------------------------------------------- OCDS


_encoder = msgspec.json.Encoder(decimal_format="number")


def package_head(settings: Settings, q: ExportQuery, published: str) -> bytes:
    """The release package up to the opening of `releases` (streamed after it, then closed)."""
    params = q.params()
    uri = f"{settings.public_base_url}/api/exports/disclosures.ocds.json"
    if params:
        uri += "?" + "&".join(f"{k}={quote(v)}" for k, v in sorted(params.items()))
    head = {
        "uri": uri,
        "version": "1.1",
        "extensions": ocds.EXTENSIONS,
        "publishedDate": published,
        "publisher": {"name": f"阳光卖场（{settings.region_name}政府采购电子卖场）"},
        "publicationPolicy": f"{settings.public_base_url}/disclosures",
    }
    text = _encoder.encode(head)
    return text[:-1] + b',"releases":['


async def ocds_chunks(
    db: Database, settings: Settings, q: ExportQuery, *, upto: int | None = None, tally: Tally | None = None
) -> AsyncIterator[bytes]:
    names = _category_names()
    yield package_head(settings, q, clock.rfc3339(clock.now()))
    first = True
    batch: list[dict[str, Any]] = []

    async def encoded() -> bytes:
        nonlocal first
        scales = await _scales(db, batch)
        out = []
        for record in batch:
            release = ocds.release(record, settings.ocds_prefix, names, scales.get(record["order_no"], ""))
            out.append((b"" if first else b",") + _encoder.encode(release))
            first = False
        batch.clear()
        return b"".join(out)

    async for record in iter_records(db, q, upto=upto, tally=tally):
        batch.append(record)
        if len(batch) >= 200:
            yield await encoded()
    yield await encoded() + b"]}"


async def _scales(db: Database, records: list[dict[str, Any]]) -> dict[str, str]:
    """The size each deal's supplier declared in its 中小企业声明函 in force on the deal date (mall.sme),
    by order number; none for a record without a supplier or a declaration."""
    wanted = [r for r in records if r.get("supplier") and r.get("deal_date")]
    if not wanted:
        return {}
    codes = sorted({r["supplier"]["credit_code"] for r in wanted})
    async with db.read() as s:
        rows = (
            await s.execute(
                select(Organization.credit_code, SmeDeclaration)
                .join(SmeDeclaration, SmeDeclaration.org_id == Organization.id)
                .where(Organization.credit_code.in_(codes))
                .order_by(SmeDeclaration.declared_on, SmeDeclaration.declared_at)
            )
        ).all()
    by_code: dict[str, list[SmeDeclaration]] = {}
    for code, d in rows:
        by_code.setdefault(code, []).append(d)
    out = {}
    for r in wanted:
        day = date.fromisoformat(r["deal_date"])
        found = [
            d for d in by_code.get(r["supplier"]["credit_code"], []) if d.declared_on <= day <= d.valid_until
        ]
        if found:
            out[r["order_no"]] = found[-1].size  # the newest in force
    return out


# ---------------------------------------------------------------- XLSX (a file: a zip cannot stream)


async def write_xlsx(
    db: Database,
    q: ExportQuery,
    path: Path,
    *,
    upto: int | None = None,
    tally: Tally | None = None,
) -> None:
    """Rows stream into the sheet as they are read (mall.xlsx); amounts and quantities are numbers
    written from their exact decimal text, amounts shown with two places."""
    names = _category_names()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    wb = xlsx.Workbook(tmp, amount_columns=MONEY_COLUMNS)
    try:
        sheet_no, in_sheet = 1, 0
        wb.add_sheet("成交记录")
        wb.append(HEADERS)
        async for record in iter_records(db, q, upto=upto, tally=tally):
            for row in record_rows(record, q.category, names):
                if in_sheet >= SHEET_ROWS:
                    sheet_no, in_sheet = sheet_no + 1, 0
                    wb.add_sheet(f"成交记录{sheet_no}")
                    wb.append(HEADERS)
                wb.append(
                    [
                        Decimal(v) if i in NUMBER_COLUMNS and v and PLAIN_DECIMAL.fullmatch(v) else v
                        for i, v in enumerate(row)
                    ]
                )
                in_sheet += 1
    finally:
        wb.close()
    tmp.replace(path)


def download_name(fmt: str, q: ExportQuery) -> str:
    stamp = clock.local_date(clock.now()).strftime("%Y%m%d")
    return f"成交记录-{stamp}{SUFFIXES[fmt]}"


def content_disposition(filename: str) -> str:
    """RFC 6266 / 5987: an ASCII fallback, and the real (Chinese) name in UTF-8."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "", filename.encode("ascii", "ignore").decode()).strip(".-")
    ascii_name = "disclosures" + (ascii_name if ascii_name.startswith((".", "-")) else "-" + ascii_name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
