"""Exports of the disclosure ledger (CSV, XLSX, OCDS JSON) for procurement centers and regulators.

Records are read in `seq` order, a batch per read transaction, up to the ledger head as it was when
the export began, so memory stays flat whatever the size and a live ledger exports consistently.
The filters are the public feed's, plus a 品目 prefix. Large exports run as a job that writes a file
into the file store (mall.files), which every web process streams downloads from, and reports its
progress.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from sqlalchemy import func, select, update

from catalog.categories import names
from mall.core import clock, files, outbox, xlsx
from mall.core.auth import Principal
from mall.core.clock import SHANGHAI
from mall.core.db import Database
from mall.core.errors import InvalidInput, NotFound
from mall.core.fields import spreadsheet_safe
from mall.core.models import DisclosureRecord, ExportJob, JobStatus, LedgerHead
from mall.core.settings import Settings
from mall.ledger import ocds
from mall.ledger.disclosure import KIND_LABELS, MODE_LABELS, FeedQuery, parse_feed_query, records_matching

log = logging.getLogger("mall.exports")

FORMATS = ("csv", "xlsx", "ocds")
FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel（XLSX）", "ocds": "OCDS JSON"}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ocds": "application/json",
}
SUFFIXES = {"csv": ".csv", "xlsx": ".xlsx", "ocds": ".ocds.json"}
STATUS_LABELS = {
    "queued": "排队中",
    "running": "导出中",
    "done": "已完成",
    "failed": "失败",
    "expired": "文件已清理",
}
BATCH = 1000
PROGRESS_EVERY = 5000
# Excel stops at 1,048,576 rows a sheet: bigger exports continue on the next sheet.
SHEET_ROWS = 1_000_000
FILTER_KEYS = ("mode", "kind", "buyer_credit_code", "supplier_credit_code", "from", "to", "category")

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


FILTER_LABELS = {
    "mode": "采购方式",
    "kind": "记录类型",
    "buyer_credit_code": "采购人",
    "supplier_credit_code": "供应商",
    "from": "成交日期从",
    "to": "成交日期至",
    "category": "品目",
    "after": "公开序号大于",
}


def _beijing(rfc3339: str) -> str:
    """The publication instant (UTC in the record) as China time, the way people read it."""
    from datetime import datetime

    at = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def describe_filters(filters: dict[str, str]) -> str:
    """The filters of an export in words, for its pages."""
    labels = {"mode": MODE_LABELS, "kind": KIND_LABELS}
    parts = [f"{FILTER_LABELS.get(k, k)}：{labels.get(k, {}).get(v, v)}" for k, v in filters.items() if v]
    return "，".join(parts) or "全部记录"


@dataclass(frozen=True)
class ExportQuery:
    feed: FeedQuery
    category: str | None = None

    def params(self) -> dict[str, str]:
        """The filters as query parameters (what a job stores and a page links to)."""
        f = self.feed
        raw = {
            "mode": f.mode,
            "kind": f.kind,
            "buyer_credit_code": f.buyer_credit_code,
            "supplier_credit_code": f.supplier_credit_code,
            "from": f.date_from.isoformat() if f.date_from else None,
            "to": f.date_to.isoformat() if f.date_to else None,
            "category": self.category,
        }
        if f.after:
            raw["after"] = str(f.after)
        return {k: v for k, v in raw.items() if v}


def parse_export_query(params: dict[str, str]) -> ExportQuery:
    """The feed's parameters (validated by the feed's own parser) plus `category`; no `limit`."""
    given = {k: v.strip() for k, v in params.items() if isinstance(v, str) and v.strip()}
    given.pop("limit", None)
    feed = replace(parse_feed_query(given), limit=0)
    category = given.get("category")
    if category is not None:
        category = category.upper()
        if not re.fullmatch(r"[ABC][0-9]{0,8}", category):
            raise InvalidInput(
                "参数 category 应为品目编码或其前缀，如 A02 或 A02010104",
                code="invalid_parameter",
                parameter="category",
            )
    return ExportQuery(feed, category)


def matching_lines(record: dict[str, Any], category: str | None) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = record.get("lines") or []
    if category is None:
        return lines
    return [x for x in lines if str(x.get("category_code") or "").startswith(category)]


def _statement(q: ExportQuery) -> Any:
    stmt = records_matching(q.feed)
    if q.category:
        # Canonical JSON has no whitespace and fixed keys, so this finds every record with a line in
        # the 品目 (and a few false friends — a code inside a product name — dropped in Python).
        stmt = stmt.where(DisclosureRecord.body.like(f'%"category_code":"{q.category}%'))
    return stmt


async def ledger_head(db: Database) -> int:
    async with db.read() as s:
        return await s.scalar(select(LedgerHead.last_seq).where(LedgerHead.id == 1)) or 0


async def count_records(db: Database, q: ExportQuery, *, upto: int | None = None) -> int:
    """How many records the export will read (with a 品目 filter: an upper bound)."""
    stmt = _statement(q).where(DisclosureRecord.seq > q.feed.after)
    if upto is not None:
        stmt = stmt.where(DisclosureRecord.seq <= upto)
    async with db.read() as s:
        return await s.scalar(select(func.count()).select_from(stmt.subquery())) or 0


@dataclass
class Tally:
    """Counts the records an export has written and reports progress every so often."""

    records: int = 0
    progress: Callable[[int], Awaitable[None]] | None = None

    async def tick(self) -> None:
        self.records += 1
        if self.progress is not None and self.records % PROGRESS_EVERY == 0:
            await self.progress(self.records)


async def iter_records(
    db: Database, q: ExportQuery, *, upto: int | None = None, batch: int = BATCH, tally: Tally | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Matching records in `seq` order, one read transaction per batch, up to the head at the start."""
    if upto is None:
        upto = await ledger_head(db)
    after = q.feed.after
    base = _statement(q).with_only_columns(DisclosureRecord.seq, DisclosureRecord.body)
    while after < upto:
        async with db.read() as s:
            rows = (
                await s.execute(
                    base.where(DisclosureRecord.seq > after, DisclosureRecord.seq <= upto)
                    .order_by(DisclosureRecord.seq)
                    .limit(batch)
                )
            ).all()
        if not rows:
            return
        for _seq, body in rows:
            record: dict[str, Any] = json.loads(body)
            if q.category and not matching_lines(record, q.category):
                continue
            yield record
            if tally is not None:
                await tally.tick()
        after = rows[-1][0]


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
    uri = f"{settings.publication_base_url.rstrip('/')}/api/exports/disclosures.ocds.json"
    if params:
        uri += "?" + "&".join(f"{k}={quote(v)}" for k, v in sorted(params.items()))
    head = {
        "uri": uri,
        "version": "1.1",
        "extensions": [ocds.BID_EXTENSION],
        "publishedDate": published,
        "publisher": {"name": f"阳光卖场（{settings.region_name}政府采购电子卖场）"},
        "publicationPolicy": f"{settings.publication_base_url.rstrip('/')}/disclosures",
    }
    text = _encoder.encode(head)
    return text[:-1] + b',"releases":['


async def ocds_chunks(
    db: Database, settings: Settings, q: ExportQuery, *, upto: int | None = None, tally: Tally | None = None
) -> AsyncIterator[bytes]:
    names = _category_names()
    yield package_head(settings, q, clock.rfc3339(clock.now()))
    parts: list[bytes] = []
    first = True
    async for record in iter_records(db, q, upto=upto, tally=tally):
        parts.append(
            (b"" if first else b",") + _encoder.encode(ocds.release(record, settings.ocds_prefix, names))
        )
        first = False
        if len(parts) >= 200:
            yield b"".join(parts)
            parts = []
    parts.append(b"]}")
    yield b"".join(parts)


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


# ---------------------------------------------------------------- export jobs


async def require_records(db: Database, q: ExportQuery) -> None:
    """An OCDS release package holds at least one release (the schema's `minItems: 1`)."""
    if not await count_records(db, q):
        raise NotFound("没有符合条件的记录：OCDS 数据包至少要有一条记录", code="export_empty")


async def start_job(db: Database, who: Principal, fmt: str, q: ExportQuery) -> ExportJob:
    if fmt not in FORMATS:
        raise InvalidInput(
            f"导出格式应为 {' | '.join(FORMATS)} 之一", code="invalid_parameter", parameter="format"
        )
    if fmt == "ocds":
        await require_records(db, q)
    async with db.write() as tx:
        job = ExportJob(
            id=uuid.uuid4(),
            requested_by=who.user_id,
            org_id=who.org_id,
            format=fmt,
            filters=q.params(),
            status=JobStatus.QUEUED,
            rows_total=0,  # counted by the job: a filtered count can take seconds on a big ledger
            created_at=clock.now(),
        )
        tx.session.add(job)
        job_id = job.id

        tx.after_commit(lambda: outbox.kick(outbox.EXPORT, job_id))
    return job


def _visible(job: ExportJob, who: Principal) -> bool:
    return job.requested_by == who.user_id or (job.org_id is not None and job.org_id == who.org_id)


async def get_job(db: Database, who: Principal, job_id: uuid.UUID) -> ExportJob:
    async with db.read() as s:
        job = await s.get(ExportJob, job_id)
    if job is None or not _visible(job, who):
        raise NotFound("导出任务不存在", code="export_not_found")
    return job


async def jobs_of(db: Database, who: Principal, limit: int = 10) -> list[ExportJob]:
    async with db.read() as s:
        owner = (
            ExportJob.org_id == who.org_id
            if who.org_id is not None
            else ExportJob.requested_by == who.user_id
        )
        rows = await s.execute(
            select(ExportJob).where(owner).order_by(ExportJob.created_at.desc()).limit(limit)
        )
        return list(rows.scalars())


async def prune_files(db: Database, settings: Settings) -> int:
    """Delete from the file store the files of export jobs finished more than `export_keep_days` ago;
    the job stays, as the record of who exported what, marked expired (the file can be made again)."""
    before = clock.now() - timedelta(days=settings.export_keep_days)
    store = files.store_for(settings, db)
    async with db.read() as s:
        jobs = list(
            (
                await s.execute(
                    select(ExportJob.id, ExportJob.file_key).where(
                        ExportJob.status == JobStatus.DONE, ExportJob.finished_at < before
                    )
                )
            ).all()
        )
    for job_id, key in jobs:
        if key:
            await store.delete(key)
        await _set(db, job_id, status=JobStatus.EXPIRED, file_key="")
    return len(jobs)


async def job_file(store: files.FileStore, settings: Settings, job: ExportJob) -> files.FileInfo:
    """The job's file in the store, or the reason there is none (404)."""
    if job.status == JobStatus.EXPIRED:
        raise NotFound(
            f"导出文件已按规定清理（保留 {settings.export_keep_days} 天），请重新导出",
            code="export_file_expired",
        )
    if job.status != JobStatus.DONE or not job.file_key:
        raise NotFound("导出文件尚未生成", code="export_not_ready")
    info = await store.stat(job.file_key)
    if info is None:
        raise NotFound("导出文件已被清理，请重新导出", code="export_file_missing")
    return info


def job_download_name(job: ExportJob) -> str:
    return f"成交记录-{clock.local_date(job.created_at).strftime('%Y%m%d')}-{str(job.id)[:8]}{SUFFIXES[job.format]}"


async def _claim(db: Database, job_id: uuid.UUID, stale_after: timedelta) -> bool:
    """queued → running (or a run whose worker died: no heartbeat for a while). Only one job wins."""
    async with db.write() as tx:
        result = await tx.session.execute(
            update(ExportJob)
            .where(
                ExportJob.id == job_id,
                (ExportJob.status == JobStatus.QUEUED)
                | (
                    (ExportJob.status == JobStatus.RUNNING)
                    & (ExportJob.heartbeat_at < clock.now() - stale_after)
                ),
            )
            .values(status=JobStatus.RUNNING, rows_done=0, heartbeat_at=clock.now())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def _set(db: Database, job_id: uuid.UUID, **values: Any) -> None:
    async with db.write() as tx:
        await tx.session.execute(update(ExportJob).where(ExportJob.id == job_id).values(**values))


async def run_job(db: Database, settings: Settings, job_id: uuid.UUID) -> str:
    """The job: write the file into the file store, reporting progress; idempotent (a finished job is
    left alone, a rerun replaces what a dead run half-wrote)."""
    if not await _claim(db, job_id, timedelta(minutes=5)):
        return "skipped"
    async with db.read() as s:
        job = await s.get(ExportJob, job_id)
        assert job is not None
        fmt, filters = job.format, dict(job.filters)
    store = files.store_for(settings, db)
    key = f"exports/{job_id}{SUFFIXES[fmt]}"
    try:
        q = parse_export_query(filters)
        upto = await ledger_head(db)
        await _set(db, job_id, rows_total=await count_records(db, q, upto=upto), heartbeat_at=clock.now())

        async def progress(n: int) -> None:
            await _set(db, job_id, rows_done=n, heartbeat_at=clock.now())

        tally = Tally(progress=progress)
        if fmt == "xlsx":
            # A zip is finished at its end: written to a scratch file first, then into the store.
            with tempfile.TemporaryDirectory(prefix="mall-export-") as scratch:
                path = Path(scratch) / f"{job_id}.xlsx"
                await write_xlsx(db, q, path, upto=upto, tally=tally)
                await store.put(key, files.path_chunks(path), content_type=MEDIA_TYPES[fmt])
        elif fmt == "csv":
            await store.put(key, csv_chunks(db, q, upto=upto, tally=tally), content_type=MEDIA_TYPES[fmt])
        else:
            await store.put(
                key, ocds_chunks(db, settings, q, upto=upto, tally=tally), content_type=MEDIA_TYPES[fmt]
            )
    except Exception as exc:
        log.exception("export %s failed", job_id)
        await _set(
            db,
            job_id,
            status=JobStatus.FAILED,
            error=f"导出失败：{type(exc).__name__}",
            finished_at=clock.now(),
        )
        return "failed"
    await _set(
        db,
        job_id,
        status=JobStatus.DONE,
        rows_done=tally.records,
        rows_total=tally.records,
        file_key=key,
        error="",
        finished_at=clock.now(),
        heartbeat_at=clock.now(),
    )
    return "done"


async def stalled(db: Database, older_than: timedelta) -> list[uuid.UUID]:
    """Queued exports whose job was lost, or running ones whose worker died: enqueue them again."""
    cutoff = clock.now() - older_than
    async with db.read() as s:
        rows = await s.execute(
            select(ExportJob.id)
            .where(
                ((ExportJob.status == JobStatus.QUEUED) & (ExportJob.created_at < cutoff))
                | (
                    (ExportJob.status == JobStatus.RUNNING)
                    & (ExportJob.heartbeat_at < cutoff - timedelta(minutes=5))
                )
            )
            .limit(20)
        )
        return list(rows.scalars())
