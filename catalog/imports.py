"""Bulk listing import from a supplier's spreadsheet (CSV or XLSX, Chinese headers).

The upload goes into the file store (mall.files) and is processed by a job, which reports progress
as it validates. The web process never parses it: a spreadsheet can be built to inflate to
gigabytes, and only the job — after catalog.spreadsheet's checks on the inflated sizes — reads it.
Every row is checked like a listing typed into the form (fields, price rule, 品目, duplicates in the
file and in the catalogue). Then the good rows are written in ONE transaction and go to the center's
review queue; a failure while writing leaves nothing behind. With `strict`, a file with any bad row
imports nothing. The per-row report (行号, 结果, 原因) can be downloaded as CSV. Once processed, the
upload is deleted from the store; the report stays.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from catalog import service, spreadsheet
from catalog.agreement_queries import ceilings_in_force
from catalog.goods import brand_key, model_key
from catalog.models import Category, Listing, ListingImport
from catalog.structs import ListingDraft
from mall.core import auth, clock, fields, files, jobs, outbox
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import DomainError, InvalidInput, NotFound
from mall.core.models import JobStatus, User

log = logging.getLogger("mall.imports")

MAX_BYTES = 5 * 1024 * 1024  # the upload as sent; what it may inflate to is spreadsheet's business
MAX_ROWS = spreadsheet.MAX_ROWS
PROGRESS_EVERY = 100
OK, REFUSED = "通过", "未通过"
STATUS_LABELS = {"queued": "排队中", "running": "处理中", "done": "已完成", "failed": "失败"}


async def start_import(
    db: Database,
    store: files.FileStore,
    who: Principal,
    filename: str,
    content: bytes,
    *,
    strict: bool = False,
) -> ListingImport:
    """Put the upload into the file store and enqueue its processing. Nothing is parsed here: a
    wrong type (extension, first bytes), an empty or too large file is refused at once (400);
    everything else — header, rows, the limits on what the file inflates to — is the job's."""
    filename = fields.text(filename, "文件名", fields.NAME_MAX, field="file") or "upload"
    if not content:
        raise InvalidInput("请选择要上传的文件", code="file_required")
    if len(content) > MAX_BYTES:
        raise InvalidInput(f"文件不能超过 {MAX_BYTES // 1024 // 1024} MB", code="file_too_large")
    try:
        spreadsheet.check_upload(filename, content)
    except spreadsheet.SheetError as exc:
        raise InvalidInput(str(exc), code="file_invalid") from None
    assert who.org_id is not None
    import_id = uuid.uuid4()
    key = f"imports/{import_id}.{filename.rsplit('.', 1)[-1].lower()}"
    await store.put(key, content)
    try:
        async with db.write() as tx:
            batch = ListingImport(
                id=import_id,
                supplier_org_id=who.org_id,
                user_id=who.user_id,
                filename=filename,
                file_key=key,
                status=JobStatus.QUEUED,
                total=0,  # counted by the job, when it reads the file
                strict=strict,
                report=[],
                created_at=clock.now(),
            )
            tx.session.add(batch)

            tx.after_commit(lambda: outbox.kick(outbox.IMPORT, import_id))
    except BaseException:
        with contextlib.suppress(Exception):
            await store.delete(key)
        raise
    return batch


class Upload(Protocol):
    """A file as the web framework hands it over."""

    filename: str

    async def read(self, size: int = -1) -> bytes: ...


async def upload(
    db: Database, store: files.FileStore, who: Principal, file: Upload, *, strict: bool = False
) -> ListingImport:
    """An uploaded file, as the API and the page receive it (see `start_import`)."""
    # Stored, not parsed: the job reads it (one byte past the cap is enough to refuse it).
    content = await file.read(MAX_BYTES + 1)
    return await start_import(db, store, who, file.filename, content, strict=strict)


def percent(batch: ListingImport) -> int:
    """How far the job has come: 100 once the import has ended."""
    if batch.status in (JobStatus.DONE, JobStatus.FAILED):
        return 100
    return 100 * batch.processed // batch.total if batch.total else 0


async def get_import(db: Database, who: Principal, import_id: uuid.UUID) -> ListingImport:
    async with db.read() as s:
        batch = await s.get(ListingImport, import_id)
    if batch is None or batch.supplier_org_id != who.org_id:
        raise NotFound("导入记录不存在", code="import_not_found")
    return batch


async def imports_of(db: Database, who: Principal, limit: int = 10) -> list[ListingImport]:
    async with db.read() as s:
        rows = await s.execute(
            select(ListingImport)
            .where(ListingImport.supplier_org_id == who.org_id)
            .order_by(ListingImport.created_at.desc())
            .limit(limit)
        )
        return list(rows.scalars())


def report_bytes(batch: ListingImport) -> bytes:
    return spreadsheet.report_csv((int(r[0]), str(r[1]), str(r[2])) for r in batch.report or [])


async def _progress(db: Database, import_id: uuid.UUID, processed: int, **values: Any) -> None:
    async with db.write() as tx:
        await tx.session.execute(
            update(ListingImport)
            .where(ListingImport.id == import_id)
            .values(processed=processed, finished_at=clock.now(), **values)
        )


async def process_import(
    db: Database, store: files.FileStore, import_id: uuid.UUID, *, margin: Decimal, ceiling: Decimal | None
) -> dict[str, int]:
    """The job: read the upload (within the spreadsheet limits), validate every row, then write the
    good ones in one transaction; the upload is deleted from the store once the import has ended."""
    # An import's heartbeat is its finished_at, refreshed with every progress report.
    if not await jobs.claim(db, ListingImport, import_id, ListingImport.finished_at, processed=0):
        return {"skipped": 1}
    result = await _process(db, store, import_id, margin=margin, ceiling=ceiling)
    await drop_upload(db, store, import_id)
    return result


async def _process(
    db: Database, store: files.FileStore, import_id: uuid.UUID, *, margin: Decimal, ceiling: Decimal | None
) -> dict[str, int]:
    async with db.read() as s:
        batch = await s.get(ListingImport, import_id)
        assert batch is not None

        user = await s.get(User, batch.user_id)
        assert user is not None

        who = auth.principal_of(user)
        filename, file_key, strict = batch.filename, batch.file_key, batch.strict
        existing = {
            (b, m)
            for b, m in (
                await s.execute(
                    select(Listing.brand_key, Listing.model_key).where(
                        Listing.supplier_org_id == batch.supplier_org_id
                    )
                )
            ).all()
        }
        categories = {
            c.code: c for c in (await s.execute(select(Category).where(Category.version == "2022"))).scalars()
        }

        agreement_prices = await ceilings_in_force(s)
    try:
        content = await store.read(file_key, max_bytes=MAX_BYTES)
    except (files.FileMissing, files.FileTooLarge):
        return await _fail(db, import_id, "上传的文件已不在文件存储中，请重新上传")
    report: list[list[Any]] = []
    good: list[tuple[int, service.Checked, Category]] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        total, rows = spreadsheet.read_rows(filename, content, max_rows=MAX_ROWS)
        if total == 0:
            return await _fail(db, import_id, "文件中没有商品数据行")
        await _progress(db, import_id, 0, total=total)
        for n, row in enumerate(rows, start=1):
            try:
                checked = service.check_draft(ListingDraft(**row.values), ceiling=ceiling)
                service.check_price(checked.price, checked.reference_price, margin)
                draft = checked.draft
                category = categories.get(draft.category_code)
                if category is None:
                    raise InvalidInput(f"品目编码 {draft.category_code} 不在2022版品目目录中")
                if category.type != "goods":
                    raise InvalidInput("网上超市只能上架货物类品目")
                key = (brand_key(draft.brand), model_key(draft.spec_model))
                if key in existing:
                    raise InvalidInput("已存在相同品牌和型号的商品，不能重复上架")
                if key in agreement_prices and checked.price > agreement_prices[key][0]:
                    price, number = agreement_prices[key]
                    raise InvalidInput(
                        f"售价 {checked.price:,.2f} 元高于框架协议 {number} 中同品牌同型号的协议价 {price:,.2f} 元"
                    )
                if key in seen:
                    raise InvalidInput(f"与第 {seen[key]} 行的品牌和型号重复")
                seen[key] = row.line
                good.append((row.line, checked, category))
                report.append([row.line, OK, "待审核"])
            except DomainError as exc:
                report.append([row.line, REFUSED, exc.detail])
            if n % PROGRESS_EVERY == 0:
                await _progress(db, import_id, n)
    except spreadsheet.SheetError as exc:
        return await _fail(db, import_id, str(exc))
    refused = sum(1 for r in report if r[1] == REFUSED)
    if strict and refused:
        good = []
        report = [
            [r[0], r[1], r[2]] if r[1] == REFUSED else [r[0], REFUSED, "文件中有错误行，整份文件未导入"]
            for r in report
        ]
    try:
        async with db.write() as tx:
            for _line, checked, category in good:
                await service.add_listing(tx, who, checked, category, submit=True)
            await tx.session.execute(
                update(ListingImport)
                .where(ListingImport.id == import_id)
                .values(
                    status=JobStatus.DONE,
                    processed=len(report),
                    accepted=len(good),
                    refused=len(report) - len(good),
                    report=report,
                    error="",
                    finished_at=clock.now(),
                )
            )
    except DomainError as exc:  # e.g. the same model listed meanwhile through the form
        return await _fail(db, import_id, f"写入时出错，整份文件未导入：{exc.detail}")
    except IntegrityError:  # the same race, caught by the unique constraint
        return await _fail(
            db, import_id, "写入时发现重复商品（可能刚刚通过表单上架），整份文件未导入，请重新上传"
        )
    return {"accepted": len(good), "refused": len(report) - len(good)}


async def _fail(db: Database, import_id: uuid.UUID, reason: str) -> dict[str, int]:
    async with db.write() as tx:
        await tx.session.execute(
            update(ListingImport)
            .where(ListingImport.id == import_id)
            .values(status=JobStatus.FAILED, error=reason[:500], accepted=0, finished_at=clock.now())
        )
    return {"failed": 1}


async def drop_upload(db: Database, store: files.FileStore, import_id: uuid.UUID) -> None:
    """The upload of an import that has ended is no longer needed: out of the store (first, so a
    failure leaves the key for prune_uploads to try again)."""
    async with db.read() as s:
        key = await s.scalar(select(ListingImport.file_key).where(ListingImport.id == import_id))
    if not key:
        return
    try:
        await store.delete(key)
    except Exception:
        log.exception("upload %s of import %s not deleted; retention will", key, import_id)
        return
    async with db.write() as tx:
        await tx.session.execute(
            update(ListingImport).where(ListingImport.id == import_id).values(file_key="")
        )


async def prune_uploads(db: Database, store: files.FileStore) -> int:
    """Uploads of ended imports that drop_upload could not delete (the store was down, the worker
    died in between): delete them now."""
    async with db.read() as s:
        ids = list(
            (
                await s.execute(
                    select(ListingImport.id)
                    .where(
                        ListingImport.status.in_((JobStatus.DONE, JobStatus.FAILED)),
                        ListingImport.file_key != "",
                    )
                    .limit(100)
                )
            ).scalars()
        )
    for import_id in ids:
        await drop_upload(db, store, import_id)
    return len(ids)


async def stalled(db: Database, older_than: timedelta) -> list[uuid.UUID]:
    """Queued imports whose job was lost (Redis down at upload, worker killed): enqueue them again."""
    return await jobs.stalled(db, ListingImport, ListingImport.finished_at, older_than)


async def count_queued(db: Database) -> int:
    async with db.read() as s:
        return await s.scalar(select(func.count()).where(ListingImport.status == JobStatus.QUEUED)) or 0
