"""Export jobs: a large export runs as a job that writes its file into the file store (mall.core.files),
which every web process streams downloads from, and reports its progress; finished files are pruned
after `export_keep_days`, the job staying as the record of who exported what."""

from __future__ import annotations

import logging
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from mall.core import audit, clock, files, jobs, outbox
from mall.core.auth import Principal
from mall.core.db import Database, retried, retried_if_rolled_back
from mall.core.errors import InvalidInput, NotFound
from mall.core.models import JobStatus
from mall.core.settings import Settings
from mall.ledger.exports.reading import (
    ExportQuery,
    Tally,
    count_records,
    describe_filters,
    ledger_head,
    parse_export_query,
    require_records,
)
from mall.ledger.exports.writers import (
    FORMAT_LABELS,
    FORMATS,
    MEDIA_TYPES,
    SUFFIXES,
    csv_chunks,
    ocds_chunks,
    write_xlsx,
)
from mall.ledger.models import ExportJob

log = logging.getLogger("mall.exports")

STATUS_LABELS = {
    "queued": "排队中",
    "running": "导出中",
    "done": "已完成",
    "failed": "失败",
    "expired": "文件已清理",
}

# ---------------------------------------------------------------- export jobs


@retried_if_rolled_back
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
        audit.record(
            tx,
            who,
            "export_started",
            target_kind="export",
            target=str(job_id),
            detail=f"{FORMAT_LABELS.get(fmt, fmt)}：{describe_filters(q.params())}",
            after={"format": fmt, "filters": q.params()},
        )

        tx.after_commit(lambda: outbox.kick(outbox.EXPORT, job_id))
    return job


async def record_download(
    db: Database, who: Principal, fmt: str, q: ExportQuery | None = None, job: ExportJob | None = None
) -> None:
    """The audit entry of a download (a direct export, or a job's file), before it is served."""
    if job is not None:
        target, detail = str(job.id), f"{FORMAT_LABELS.get(job.format, job.format)}：导出任务的文件"
        filters: dict[str, str] = dict(job.filters or {})
    else:
        assert q is not None
        target, detail, filters = (
            fmt,
            f"{FORMAT_LABELS.get(fmt, fmt)}：{describe_filters(q.params())}",
            q.params(),
        )
    await audit.record_now(
        db,
        who,
        "export_downloaded",
        target_kind="export",
        target=target,
        detail=detail,
        after={"format": job.format if job else fmt, "filters": filters},
    )


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
        expired = list(
            (
                await s.execute(
                    select(ExportJob.id, ExportJob.file_key).where(
                        ExportJob.status == JobStatus.DONE, ExportJob.finished_at < before
                    )
                )
            ).all()
        )
    for job_id, key in expired:
        if key:
            await store.delete(key)
        await _set(db, job_id, status=JobStatus.EXPIRED, file_key="")
    return len(expired)


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


@retried
async def _set(db: Database, /, job_id: uuid.UUID, **values: Any) -> None:
    async with db.write() as tx:
        await tx.session.execute(update(ExportJob).where(ExportJob.id == job_id).values(**values))


async def run_job(db: Database, settings: Settings, job_id: uuid.UUID) -> str:
    """The job: write the file into the file store, reporting progress; idempotent (a finished job is
    left alone, a rerun replaces what a dead run half-wrote)."""
    if not await jobs.claim(db, ExportJob, job_id, ExportJob.heartbeat_at, rows_done=0):
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
    return await jobs.stalled(db, ExportJob, ExportJob.heartbeat_at, older_than)
