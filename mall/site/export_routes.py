"""Ledger exports over HTTP (API and pages) and the public Atom feed.

Only procurement centers and regulators export; the Atom feed is public like the ledger itself.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import File, Redirect, Stream, Template

from mall.core import fields, files
from mall.core.auth import PUBLIC, Principal, allow
from mall.core.clock import rfc3339
from mall.core.db import Database
from mall.core.errors import DomainError, InvalidInput, RuleViolation
from mall.core.models import ExportJob, JobStatus
from mall.core.settings import Settings
from mall.ledger import atom, disclosure, exports
from mall.web.deps import DB, Config
from mall.web.helpers import current_user, flash, keep_form, me_of, pop_form, render

EXPORTERS = allow("center", "regulator")
TAGS = ["数据导出"]
FILTERS_DOC = (
    "筛选条件与 /api/disclosures 相同（after、mode、kind、buyer_credit_code、supplier_credit_code、from、to），"
    "另加 category（品目编码前缀，如 A0201）；没有 limit：导出全部匹配的记录。"
)


FilterText = Annotated[str, msgspec.Meta(max_length=fields.FILTER_MAX)]


class ExportJobIn(msgspec.Struct, forbid_unknown_fields=True):
    format: fields.Choice = "xlsx"  # csv | xlsx | ocds
    filters: Annotated[dict[FilterText, FilterText], fields.FILTER_VALUES] = msgspec.field(
        default_factory=dict
    )


class ExportJobOut(msgspec.Struct):
    id: uuid.UUID
    format: str
    filters: dict[str, str]
    status: str
    status_label: str
    rows_done: int
    rows_total: int
    percent: int
    error: str
    created_at: str
    finished_at: str | None
    download_url: str | None

    @classmethod
    def of(cls, job: ExportJob, *, prefix: str = "/api/exports") -> ExportJobOut:
        return cls(
            id=job.id,
            format=job.format,
            filters=dict(job.filters),
            status=job.status,
            status_label=exports.STATUS_LABELS.get(job.status, job.status),
            rows_done=job.rows_done,
            rows_total=job.rows_total,
            percent=percent(job),
            error=job.error,
            created_at=rfc3339(job.created_at),
            finished_at=rfc3339(job.finished_at) if job.finished_at else None,
            download_url=f"{prefix}/{job.id}/download" if job.status == JobStatus.DONE else None,
        )


def percent(job: ExportJob) -> int:
    if job.status == JobStatus.DONE:
        return 100
    if job.rows_total <= 0:
        return 0
    return max(0, min(99, job.rows_done * 100 // job.rows_total))


async def _stream(fmt: str, q: exports.ExportQuery, db: Database, settings: Settings) -> Stream:
    if fmt == "ocds":
        await exports.require_records(db, q)
    chunks = exports.csv_chunks(db, q) if fmt == "csv" else exports.ocds_chunks(db, settings, q)
    return Stream(
        chunks,
        media_type=exports.MEDIA_TYPES[fmt],
        headers={"content-disposition": exports.content_disposition(exports.download_name(fmt, q))},
    )


async def _xlsx_file(q: exports.ExportQuery, db: Database, settings: Settings) -> File:
    count = await exports.count_records(db, q)
    if count > settings.export_xlsx_direct_max:
        raise RuleViolation(
            f"匹配的记录有 {count} 条，超过 {settings.export_xlsx_direct_max} 条的 Excel 文件请创建导出任务生成",
            code="export_too_large",
        )
    # A scratch file for this one response (a zip is finished only at its end), removed after it.
    with tempfile.NamedTemporaryFile(prefix="mall-export-", suffix=".xlsx", delete=False) as fh:
        path = Path(fh.name)
    await exports.write_xlsx(db, q, path)
    return File(
        path,
        media_type=exports.MEDIA_TYPES["xlsx"],
        headers={"content-disposition": exports.content_disposition(exports.download_name("xlsx", q))},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


# ---------------------------------------------------------------- API


@get(
    "/api/exports/disclosures.csv",
    opt=EXPORTERS,
    tags=TAGS,
    summary="导出成交记录（CSV）",
    description=FILTERS_DOC,
)
async def api_export_csv(request: Request[Any, Any, Any], db: DB, settings: Config) -> Stream:
    return await _stream("csv", exports.parse_export_query(dict(request.query_params)), db, settings)


@get(
    "/api/exports/disclosures.ocds.json",
    opt=EXPORTERS,
    tags=TAGS,
    summary="导出成交记录（OCDS 1.1 release package）",
    description=FILTERS_DOC,
)
async def api_export_ocds(request: Request[Any, Any, Any], db: DB, settings: Config) -> Stream:
    return await _stream("ocds", exports.parse_export_query(dict(request.query_params)), db, settings)


@get(
    "/api/exports/disclosures.xlsx",
    opt=EXPORTERS,
    tags=TAGS,
    summary="导出成交记录（Excel，小批量；大批量请创建导出任务）",
    description=FILTERS_DOC,
)
async def api_export_xlsx(request: Request[Any, Any, Any], db: DB, settings: Config) -> File:
    return await _xlsx_file(exports.parse_export_query(dict(request.query_params)), db, settings)


@post("/api/exports", opt=EXPORTERS, status_code=202, tags=TAGS, summary="创建导出任务（生成文件后下载）")
async def api_start_export(
    request: Request[Any, Any, Any], data: JSONBody[ExportJobIn], db: DB
) -> ExportJobOut:
    q = exports.parse_export_query(data.filters)
    job = await exports.start_job(db, me_of(request), data.format, q)
    return ExportJobOut.of(job)


@get("/api/exports", opt=EXPORTERS, tags=TAGS, summary="本单位最近的导出任务")
async def api_list_exports(request: Request[Any, Any, Any], db: DB) -> list[ExportJobOut]:
    return [ExportJobOut.of(j) for j in await exports.jobs_of(db, me_of(request), limit=20)]


@get("/api/exports/{export_id:uuid}", opt=EXPORTERS, tags=TAGS, summary="导出任务的进度")
async def api_export_status(
    request: Request[Any, Any, Any], export_id: FromPath[uuid.UUID], db: DB
) -> ExportJobOut:
    return ExportJobOut.of(await exports.get_job(db, me_of(request), export_id))


@get("/api/exports/{export_id:uuid}/download", opt=EXPORTERS, tags=TAGS, summary="下载导出文件")
async def api_export_download(
    request: Request[Any, Any, Any], export_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> Stream:
    return await _job_file(await exports.get_job(db, me_of(request), export_id), db, settings)


async def _job_file(job: ExportJob, db: Database, settings: Settings) -> Stream:
    """The job's file, streamed from the file store piece by piece (whichever host wrote it)."""
    store = files.store_for(settings, db)
    info = await exports.job_file(store, settings, job)
    return Stream(
        store.chunks(info.key),
        media_type=exports.MEDIA_TYPES[job.format],
        headers={
            "content-disposition": exports.content_disposition(exports.job_download_name(job)),
            "content-length": str(info.size),
        },
    )


# ---------------------------------------------------------------- Atom (public)


@get("/disclosures/feed.atom", opt=PUBLIC, include_in_schema=False)
async def atom_feed(
    request: Request[Any, Any, Any],
    db: DB,
    settings: Config,
    limit: Annotated[str | None, QueryParameter(description="条数，1–200，默认 50")] = None,
) -> Response[bytes]:
    q = disclosure.parse_feed_query(dict(request.query_params), max_limit=200, default_limit=50)
    records = await atom.newest(db, q, q.limit)
    base = settings.publication_base_url.rstrip("/")
    query = request.url.query
    body = atom.feed_xml(
        records,
        base_url=base,
        self_url=f"{base}/disclosures/feed.atom" + (f"?{query}" if query else ""),
        site="阳光卖场",
    )
    return Response(body, media_type=atom.MEDIA_TYPE)


# ---------------------------------------------------------------- pages


def _who(request: Request[Any, Any, Any]) -> Principal:
    who = current_user(request)
    assert who is not None
    return who


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k) or "").strip() for k in exports.FILTER_KEYS}


@get("/exports", opt=EXPORTERS, include_in_schema=False)
async def exports_page(request: Request[Any, Any, Any], db: DB, settings: Config) -> Template:
    jobs = await exports.jobs_of(db, _who(request), limit=10)
    return render(
        request,
        "exports.html",
        form=pop_form(request),
        jobs=jobs,
        modes=disclosure.MODE_LABELS,
        kinds=disclosure.KIND_LABELS,
        labels=exports.STATUS_LABELS,
        format_labels=exports.FORMAT_LABELS,
        percent=percent,
        describe=exports.describe_filters,
        direct_max=settings.export_xlsx_direct_max,
    )


def _refused(request: Request[Any, Any, Any], exc: DomainError, form: dict[str, str]) -> Redirect:
    flash(request, exc.detail, "error")
    keep_form(request, form)
    return Redirect("/exports", status_code=303)


@post("/exports/download/{fmt:str}", opt=EXPORTERS, status_code=200, include_in_schema=False)
async def page_download(
    request: Request[Any, Any, Any], fmt: FromPath[str], db: DB, settings: Config
) -> Stream | Redirect:
    form = await _form(request)
    try:
        if fmt not in ("csv", "ocds"):
            raise InvalidInput("不支持的导出格式", code="invalid_parameter", parameter="format")
        q = exports.parse_export_query(form)
        return await _stream(fmt, q, db, settings)
    except DomainError as exc:
        return _refused(request, exc, form)


@post("/exports/jobs", opt=EXPORTERS, include_in_schema=False)
async def page_start_job(request: Request[Any, Any, Any], db: DB) -> Redirect:
    form = await _form(request)
    try:
        q = exports.parse_export_query(form)
        job = await exports.start_job(db, _who(request), "xlsx", q)
    except DomainError as exc:
        return _refused(request, exc, form)
    return Redirect(f"/exports/jobs/{job.id}", status_code=303)


@get("/exports/jobs/{export_id:uuid}", opt=EXPORTERS, include_in_schema=False)
async def job_page(request: Request[Any, Any, Any], export_id: FromPath[uuid.UUID], db: DB) -> Template:
    job = await exports.get_job(db, _who(request), export_id)
    return render(
        request,
        "export_job.html",
        job=job,
        percent=percent(job),
        describe=exports.describe_filters,
        labels=exports.STATUS_LABELS,
        format_labels=exports.FORMAT_LABELS,
        modes=disclosure.MODE_LABELS,
        kinds=disclosure.KIND_LABELS,
    )


@get("/exports/jobs/{export_id:uuid}/status", opt=EXPORTERS, include_in_schema=False)
async def job_status(request: Request[Any, Any, Any], export_id: FromPath[uuid.UUID], db: DB) -> ExportJobOut:
    """The job page polls this (session cookie; the /api twin takes bearer tokens only)."""
    return ExportJobOut.of(await exports.get_job(db, _who(request), export_id), prefix="/exports/jobs")


@get("/exports/jobs/{export_id:uuid}/download", opt=EXPORTERS, include_in_schema=False)
async def job_download(
    request: Request[Any, Any, Any], export_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> Stream:
    return await _job_file(await exports.get_job(db, _who(request), export_id), db, settings)


ROUTES = [
    api_export_csv,
    api_export_ocds,
    api_export_xlsx,
    api_start_export,
    api_list_exports,
    api_export_status,
    api_export_download,
    atom_feed,
    exports_page,
    page_download,
    page_start_job,
    job_page,
    job_status,
    job_download,
]
