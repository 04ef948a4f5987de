"""Ledger exports over HTTP (API and pages) and the public Atom feed.

Only procurement centers and regulators export; the Atom feed is public like the ledger itself.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import File, Redirect, Stream, Template

from mall.core import fields, files
from mall.core.auth import Principal
from mall.core.clock import rfc3339
from mall.core.db import Database
from mall.core.errors import DomainError, InvalidInput, RuleViolation
from mall.core.guards import PUBLIC, allow
from mall.core.models import JobStatus
from mall.core.settings import Settings
from mall.ledger import atom, disclosure, exports
from mall.ledger.models import ExportJob
from mall.web.deps import DB, Config, UserCall
from mall.web.helpers import AnyRequest, Form, flash, keep_form, pop_form

EXPORTERS = allow("center", "regulator")
TAGS = ["数据导出"]
FILTERS_DOC = (
    "筛选条件与 /api/disclosures 相同（after、mode、kind、buyer_credit_code、supplier_credit_code、from、to），"
    "另加 category（品目编码前缀，如 A0201）；没有 limit：导出全部匹配的记录。"
)


FilterText = Annotated[str, msgspec.Meta(max_length=fields.FILTER_MAX)]
# More than every filter an export knows (the feed's, `category`, `after`), so a stray key is still
# named by the filters' own check.
FILTERS_MAX = 20
Count = Annotated[int, msgspec.Meta(ge=0)]


class ExportJobIn(msgspec.Struct, forbid_unknown_fields=True):
    format: fields.Choice = "xlsx"  # csv | xlsx | ocds
    filters: Annotated[
        dict[FilterText, FilterText], fields.FILTER_VALUES, msgspec.Meta(max_length=FILTERS_MAX)
    ] = msgspec.field(default_factory=dict)


class ExportJobOut(msgspec.Struct):
    id: uuid.UUID
    format: str
    filters: dict[str, str]
    status: JobStatus
    status_label: str
    rows_done: Count
    rows_total: Count
    percent: Annotated[int, msgspec.Meta(ge=0, le=100)]
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
            status=JobStatus(job.status),
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


async def _stream(
    fmt: str, q: exports.ExportQuery, db: Database, settings: Settings, me: Principal
) -> Stream:
    if fmt == "ocds":
        await exports.require_records(db, q)
    await exports.record_download(db, me, fmt, q)
    chunks = exports.csv_chunks(db, q) if fmt == "csv" else exports.ocds_chunks(db, settings, q)
    return Stream(
        chunks,
        media_type=exports.MEDIA_TYPES[fmt],
        headers={"content-disposition": exports.content_disposition(exports.download_name(fmt, q))},
    )


async def _xlsx_file(q: exports.ExportQuery, db: Database, settings: Settings, me: Principal) -> File:
    count = await exports.count_records(db, q)
    if count > settings.export_xlsx_direct_max:
        raise RuleViolation(
            f"匹配的记录有 {count} 条，超过 {settings.export_xlsx_direct_max} 条的 Excel 文件请创建导出任务生成",
            code="export_too_large",
        )
    await exports.record_download(db, me, "xlsx", q)
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


async def _job_file(job: ExportJob, db: Database, settings: Settings, me: Principal) -> Stream:
    """The job's file, streamed from the file store piece by piece (whichever host wrote it)."""
    store = files.store_for(settings, db)
    info = await exports.job_file(store, settings, job)
    await exports.record_download(db, me, job.format, job=job)
    return Stream(
        store.chunks(info.key),
        media_type=exports.MEDIA_TYPES[job.format],
        headers={
            "content-disposition": exports.content_disposition(exports.job_download_name(job)),
            "content-length": str(info.size),
        },
    )


def _query(request: AnyRequest) -> exports.ExportQuery:
    return exports.parse_export_query(dict(request.query_params))


# ---------------------------------------------------------------- API


class ExportApi(Controller):
    path = "/api/exports"
    opt = EXPORTERS
    tags = TAGS

    @get("/disclosures.csv", summary="导出成交记录（CSV）", description=FILTERS_DOC)
    async def api_export_csv(self, call: UserCall) -> Stream:
        return await _stream("csv", _query(call.request), call.db, call.settings, call.me)

    @get(
        "/disclosures.ocds.json", summary="导出成交记录（OCDS 1.1 release package）", description=FILTERS_DOC
    )
    async def api_export_ocds(self, call: UserCall) -> Stream:
        return await _stream("ocds", _query(call.request), call.db, call.settings, call.me)

    @get(
        "/disclosures.xlsx",
        summary="导出成交记录（Excel，小批量；大批量请创建导出任务）",
        description=FILTERS_DOC,
    )
    async def api_export_xlsx(self, call: UserCall) -> File:
        return await _xlsx_file(_query(call.request), call.db, call.settings, call.me)

    @post("/", status_code=202, summary="创建导出任务（生成文件后下载）")
    async def api_start_export(self, call: UserCall, data: JSONBody[ExportJobIn]) -> ExportJobOut:
        q = exports.parse_export_query(data.filters)
        return ExportJobOut.of(await exports.start_job(call.db, call.me, data.format, q))

    @get("/", summary="本单位最近的导出任务")
    async def api_list_exports(self, call: UserCall) -> list[ExportJobOut]:
        return [ExportJobOut.of(j) for j in await exports.jobs_of(call.db, call.me, limit=20)]

    @get("/{export_id:uuid}", summary="导出任务的进度")
    async def api_export_status(self, call: UserCall, export_id: FromPath[uuid.UUID]) -> ExportJobOut:
        return ExportJobOut.of(await exports.get_job(call.db, call.me, export_id))

    @get("/{export_id:uuid}/download", summary="下载导出文件")
    async def api_export_download(self, call: UserCall, export_id: FromPath[uuid.UUID]) -> Stream:
        return await _job_file(
            await exports.get_job(call.db, call.me, export_id), call.db, call.settings, call.me
        )


# ---------------------------------------------------------------- Atom (public)


class DisclosureFeed(Controller):
    path = "/disclosures"
    opt = PUBLIC
    include_in_schema = False

    @get("/feed.atom")
    async def atom_feed(
        self,
        request: AnyRequest,
        db: DB,
        settings: Config,
        limit: Annotated[str | None, QueryParameter(description="条数，1–200，默认 50")] = None,
    ) -> Response[bytes]:
        q = disclosure.parse_feed_query(dict(request.query_params), max_limit=200, default_limit=50)
        records = await atom.newest(db, q, q.limit)
        base = settings.public_base_url
        query = request.url.query
        body = atom.feed_xml(
            records,
            base_url=base,
            self_url=f"{base}/disclosures/feed.atom" + (f"?{query}" if query else ""),
            site="阳光卖场",
        )
        return Response(body, media_type=atom.MEDIA_TYPE)


# ---------------------------------------------------------------- pages

# What the export pages show filters and jobs with.
LABELS: dict[str, Any] = {
    "modes": disclosure.MODE_LABELS,
    "kinds": disclosure.KIND_LABELS,
    "labels": exports.STATUS_LABELS,
    "format_labels": exports.FORMAT_LABELS,
    "describe": exports.describe_filters,
}


def _filters(data: dict[str, str]) -> dict[str, str]:
    return {k: str(data.get(k) or "").strip() for k in exports.FILTER_KEYS}


def _refused(request: AnyRequest, exc: DomainError, form: dict[str, str]) -> Redirect:
    flash(request, exc.detail, "error")
    keep_form(request, form)
    return Redirect("/exports", status_code=303)


class ExportPages(Controller):
    path = "/exports"
    opt = EXPORTERS
    include_in_schema = False

    @get("/")
    async def exports_page(self, call: UserCall) -> Template:
        jobs = await exports.jobs_of(call.db, call.me, limit=10)
        return call.render(
            "exports.html",
            form=pop_form(call.request),
            jobs=jobs,
            percent=percent,
            direct_max=call.settings.export_xlsx_direct_max,
            **LABELS,
        )

    @post("/download/{fmt:str}", status_code=200)
    async def page_download(self, call: UserCall, fmt: FromPath[str], data: Form) -> Stream | Redirect:
        form = _filters(data)
        try:
            if fmt not in ("csv", "ocds"):
                raise InvalidInput("不支持的导出格式", code="invalid_parameter", parameter="format")
            return await _stream(fmt, exports.parse_export_query(form), call.db, call.settings, call.me)
        except DomainError as exc:
            return _refused(call.request, exc, form)

    @post("/jobs")
    async def page_start_job(self, call: UserCall, data: Form) -> Redirect:
        form = _filters(data)
        try:
            job = await exports.start_job(call.db, call.me, "xlsx", exports.parse_export_query(form))
        except DomainError as exc:
            return _refused(call.request, exc, form)
        return Redirect(f"/exports/jobs/{job.id}", status_code=303)

    @get("/jobs/{export_id:uuid}")
    async def job_page(self, call: UserCall, export_id: FromPath[uuid.UUID]) -> Template:
        job = await exports.get_job(call.db, call.me, export_id)
        return call.render("export_job.html", job=job, percent=percent(job), **LABELS)

    @get("/jobs/{export_id:uuid}/status")
    async def job_status(self, call: UserCall, export_id: FromPath[uuid.UUID]) -> ExportJobOut:
        """The job page polls this (session cookie; the /api twin takes bearer tokens only)."""
        return ExportJobOut.of(await exports.get_job(call.db, call.me, export_id), prefix="/exports/jobs")

    @get("/jobs/{export_id:uuid}/download")
    async def job_download(self, call: UserCall, export_id: FromPath[uuid.UUID]) -> Stream:
        return await _job_file(
            await exports.get_job(call.db, call.me, export_id), call.db, call.settings, call.me
        )


ROUTES = [ExportApi, DisclosureFeed, ExportPages]
