"""Supplier credit (mall.credit): a supplier's score with every event behind it (the supplier itself,
the center, the regulator), the ranking of suppliers by score (the center and the regulator), the
blacklist the system administrator imports, and the credit checks kept as evidence."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, MultipartBody
from litestar.response import Redirect, Template

from mall.core.errors import InvalidInput
from mall.core.guards import allow
from mall.credit import blacklist, rules, service
from mall.credit.models import BlacklistEntry, BlacklistImport, CreditCheck
from mall.web.deps import UserCall
from mall.web.helpers import PageNo, PerPage, first_value, org_id_filter, page_no, paging, pop_form

TAGS = ["供应商信用"]
PER_PAGE = 20
READERS = allow("supplier", "center", "regulator")
CHECK_READERS = allow("sysadmin", "center", "regulator")
SYSADMIN = allow("sysadmin")


class CreditLineOut(msgspec.Struct):
    at: datetime
    kind: str
    label: str
    ref: str
    points: str


class CreditOut(msgspec.Struct):
    supplier_org_id: uuid.UUID
    supplier_name: str
    score: int
    grade: str
    grade_label: str
    version: str
    window_from: datetime
    computed_at: datetime
    evaluations: int
    evaluation_average: str | None
    evaluation_points: str
    deductions: dict[str, int]
    lines: list[CreditLineOut]

    @classmethod
    def of(cls, d: service.Detail) -> CreditOut:
        x = d.score
        return cls(
            d.org_id,
            d.name,
            x.score,
            x.grade,
            rules.GRADE_LABELS[x.grade],
            x.version,
            d.since,
            d.computed_at,
            x.evaluations,
            x.average,
            x.evaluation_points,
            x.deductions,
            [CreditLineOut(line.at, line.kind, line.label, line.ref, line.points) for line in d.lines],
        )


class RankOut(msgspec.Struct):
    supplier_org_id: uuid.UUID
    supplier_name: str
    score: int
    grade: str
    grade_label: str
    evaluations: int
    events: int
    version: str
    computed_at: datetime


class RankPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    order: str
    items: list[RankOut]


def _order(order: str) -> str:
    if order not in service.RANK_ORDERS:
        raise InvalidInput("排序应为 asc（低分在前）或 desc（高分在前）", code="invalid_order", field="order")
    return order


class CreditApi(Controller):
    path = "/api/credit"
    tags = TAGS

    @get(
        "/suppliers/{org_id:uuid}",
        opt=READERS,
        summary="供应商信用分及其全部依据（本单位、集中采购机构、财政监管部门）",
    )
    async def supplier_credit(self, call: UserCall, org_id: FromPath[uuid.UUID]) -> CreditOut:
        async with call.db.read() as s:
            return CreditOut.of(await service.detail(s, call.me, org_id))

    @get("/ranking", opt=allow("center", "regulator"), summary="供应商信用排名（asc：低分在前）")
    async def credit_ranking(
        self, call: UserCall, page: PageNo = 1, per_page: PerPage = 20, order: FromQuery[str] = "asc"
    ) -> RankPage:
        async with call.db.read() as s:
            total, rows = await service.ranking(s, call.me, order=_order(order), page=page, per_page=per_page)
        return RankPage(total, page, per_page, order, [_rank(c, name) for c, name in rows])


def _rank(c: Any, name: str) -> RankOut:
    return RankOut(
        c.supplier_org_id,
        name,
        c.score,
        c.grade,
        rules.GRADE_LABELS.get(c.grade, c.grade),
        c.evaluations,
        c.events,
        c.version,
        c.computed_at,
    )


class CreditPages(Controller):
    path = "/credit"
    include_in_schema = False

    @get("/", opt=READERS)
    async def credit_home(self, call: UserCall) -> Redirect:
        """A supplier's own record; the overseers' ranking."""
        if call.me.role == "supplier" and call.me.org_id is not None:
            return Redirect(f"/credit/suppliers/{call.me.org_id}", status_code=303)
        return Redirect("/credit/ranking", status_code=303)

    @get("/suppliers/{org_id:uuid}", opt=READERS)
    async def credit_page(
        self, call: UserCall, org_id: FromPath[uuid.UUID], page: FromQuery[str] = "1"
    ) -> Template:
        async with call.db.read() as s:
            d = CreditOut.of(await service.detail(s, call.me, org_id))
        p = page_no(page)
        shown = d.lines[(p - 1) * PER_PAGE : p * PER_PAGE]
        return call.render(
            "credit.html",
            d=d,
            shown=shown,
            events=rules.EVENTS,
            rules=rules,
            **paging(len(d.lines), p, PER_PAGE),
        )

    @get("/ranking", opt=allow("center", "regulator"))
    async def ranking_page(
        self, call: UserCall, page: FromQuery[str] = "1", order: FromQuery[str] = "asc"
    ) -> Template:
        p = page_no(page)
        o = order if order in service.RANK_ORDERS else "asc"
        async with call.db.read() as s:
            total, rows = await service.ranking(s, call.me, order=o, page=p, per_page=PER_PAGE)
        return call.render(
            "credit_ranking.html",
            rows=[_rank(c, name) for c, name in rows],
            order=o,
            first=(p - 1) * PER_PAGE,
            **paging(total, p, PER_PAGE),
        )


class ImportOut(msgspec.Struct):
    id: uuid.UUID
    source: str
    data_date: str
    file_name: str
    sha256: str
    rows: int
    imported_at: datetime

    @classmethod
    def of(cls, x: BlacklistImport) -> ImportOut:
        return cls(x.id, x.source, x.data_date.isoformat(), x.file_name, x.sha256, x.rows, x.imported_at)


class EntryOut(msgspec.Struct):
    id: uuid.UUID
    source: str
    credit_code: str
    name: str
    reason: str
    listed_on: str
    until: str | None

    @classmethod
    def of(cls, x: BlacklistEntry) -> EntryOut:
        return cls(
            x.id,
            x.source,
            x.credit_code,
            x.name,
            x.reason,
            x.listed_on.isoformat(),
            x.until.isoformat() if x.until else None,
        )


class EntryPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[EntryOut]


class ImportPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[ImportOut]


class CheckOut(msgspec.Struct):
    id: uuid.UUID
    org_id: uuid.UUID | None
    credit_code: str
    name: str
    purpose: str
    purpose_label: str
    ref: str
    checker: str
    result: str
    result_label: str
    evidence: dict[str, Any]
    checked_at: datetime

    @classmethod
    def of(cls, x: CreditCheck) -> CheckOut:
        return cls(
            x.id,
            x.org_id,
            x.credit_code,
            x.name,
            x.purpose,
            PURPOSE_LABELS.get(x.purpose, x.purpose),
            x.ref,
            x.checker,
            x.result,
            RESULT_LABELS.get(x.result, x.result),
            x.evidence,
            x.checked_at,
        )


class CheckPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[CheckOut]


PURPOSE_LABELS = {"registration": "登记", "order": "下单", "import": "名单导入"}
RESULT_LABELS = {"clear": "未发现失信记录", "listed": "列入失信名单"}


async def _import_from(call: Any, data: dict[str, Any] | None) -> BlacklistImport:
    data = data if isinstance(data, dict) else {}
    upload = first_value(data.get("file"))
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("请选择名单文件（CSV）", code="file_required", field="file")
    raw = await upload.read(blacklist.MAX_BYTES + 1)
    return await blacklist.import_list(
        call.db,
        call.me,
        str(first_value(data.get("source")) or ""),
        str(first_value(data.get("data_date")) or ""),
        upload.filename,
        raw,
    )


class CreditCheckApi(Controller):
    path = "/api/credit"
    tags = TAGS

    @post(
        "/blacklist",
        opt=SYSADMIN,
        summary="系统管理员导入失信名单（multipart：file 为 CSV，source 名单来源，data_date 名单日期；同一来源的新名单替换旧名单）",
    )
    async def import_blacklist(self, call: UserCall, data: MultipartBody[dict[str, Any]]) -> ImportOut:
        return ImportOut.of(await _import_from(call, data))

    @get("/blacklist", opt=CHECK_READERS, summary="失信名单中现行的记录（可按统一社会信用代码查询）")
    async def blacklist_entries(
        self, call: UserCall, page: PageNo = 1, per_page: PerPage = 20, code: FromQuery[str] = ""
    ) -> EntryPage:
        async with call.db.read() as s:
            total, rows = await blacklist.entries(s, code=code, page=page, per_page=per_page)
        return EntryPage(total, page, per_page, [EntryOut.of(x) for x in rows])

    @get("/blacklist/imports", opt=CHECK_READERS, summary="失信名单的导入记录（新的在前）")
    async def blacklist_imports(self, call: UserCall, page: PageNo = 1, per_page: PerPage = 20) -> ImportPage:
        async with call.db.read() as s:
            total, rows = await blacklist.imports(s, page, per_page)
        return ImportPage(total, page, per_page, [ImportOut.of(x) for x in rows])

    @get("/checks", opt=CHECK_READERS, summary="信用核查记录（登记、下单、名单导入时；新的在前）")
    async def credit_checks(
        self,
        call: UserCall,
        page: PageNo = 1,
        per_page: PerPage = 20,
        org_id: FromQuery[str] = "",
        result: FromQuery[str] = "",
    ) -> CheckPage:
        async with call.db.read() as s:
            total, rows = await blacklist.checks(
                s, org_id=org_id_filter(org_id), result=result, page=page, per_page=per_page
            )
        return CheckPage(total, page, per_page, [CheckOut.of(x) for x in rows])


class CreditCheckPages(Controller):
    path = "/credit"
    include_in_schema = False

    @get("/blacklist", opt=CHECK_READERS)
    async def blacklist_page(
        self, call: UserCall, page: FromQuery[str] = "1", code: FromQuery[str] = ""
    ) -> Template:
        p = page_no(page)
        async with call.db.read() as s:
            total, rows = await blacklist.entries(s, code=code, page=p, per_page=PER_PAGE)
            _, batches = await blacklist.imports(s, 1, 10)
        return call.render(
            "credit_blacklist.html",
            rows=[EntryOut.of(x) for x in rows],
            batches=[ImportOut.of(x) for x in batches],
            code=code.strip().upper()[:18],
            columns=blacklist.COLUMNS,
            form=pop_form(call.request),
            **paging(total, p, PER_PAGE),
        )

    @post("/blacklist", opt=SYSADMIN)
    async def blacklist_import_form(self, call: UserCall, data: MultipartBody[dict[str, Any]]) -> Redirect:
        kept = {k: first_value(v) for k, v in (data or {}).items() if k in ("source", "data_date")}
        return await call.act(
            lambda: _import_from(call, data),
            lambda b: f"已导入「{b.source}」{b.rows} 条记录，替换该来源的原有名单",
            "/credit/blacklist",
            keep=kept,
        )

    @get("/checks", opt=CHECK_READERS)
    async def checks_page(
        self, call: UserCall, page: FromQuery[str] = "1", result: FromQuery[str] = ""
    ) -> Template:
        p = page_no(page)
        shown = result if result in RESULT_LABELS else ""
        async with call.db.read() as s:
            total, rows = await blacklist.checks(s, result=shown, page=p, per_page=PER_PAGE)
        return call.render(
            "credit_checks.html",
            rows=[CheckOut.of(x) for x in rows],
            result=shown,
            results=list(RESULT_LABELS.items()),
            **paging(total, p, PER_PAGE),
        )


ROUTES = [CreditApi, CreditCheckApi]
PAGES = [CreditPages, CreditCheckPages]
