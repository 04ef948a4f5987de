"""Sanctions: the center's decisions, the supplier's rebuttal and appeal, the regulator's decision on
the appeal (mall.sanctions), and the public list of sanctions in force (不良行为记录)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.response import Redirect, Stream, Template
from sqlalchemy import select

from mall.core import clock, fields, files
from mall.core.errors import InvalidInput
from mall.core.guards import PUBLIC, allow
from mall.core.models import Organization, OrgKind
from mall.sanctions import reports, service
from mall.sanctions.models import (
    AppealStatus,
    ReportReason,
    ReportStatus,
    Sanction,
    SanctionKind,
    SanctionStatus,
    ViolationReport,
)
from mall.sanctions.standing import until_text
from mall.web import forms
from mall.web.deps import DB, UserCall, Viewer
from mall.web.helpers import AnyRequest, Form, PageNo, PerPage, first_value, page_no, paging, pop_form, render

TAGS = ["处理决定"]
PER_PAGE = 20


class SanctionOut(msgspec.Struct):
    id: uuid.UUID
    sanction_no: str
    supplier_org_id: uuid.UUID
    supplier_name: str
    kind: str
    kind_label: str
    months: int
    status: str
    status_label: str
    in_force: bool
    reason: str
    basis: str
    decided_at: datetime
    starts_at: datetime
    ends_at: datetime | None
    term: str
    appeal_due_at: datetime
    appeal_status: str
    appeal_status_label: str
    rebut_due_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    # the statements: only the supplier itself, the center and the regulator read them
    rebuttal: str | None = None
    appeal_text: str | None = None
    appeal_reason: str | None = None

    @classmethod
    def of(cls, x: Sanction, name: str, *, private: bool) -> SanctionOut:
        return cls(
            x.id,
            x.sanction_no,
            x.supplier_org_id,
            name,
            x.kind,
            SanctionKind(x.kind).label,
            x.months,
            x.status,
            SanctionStatus(x.status).label,
            x.status == SanctionStatus.IN_FORCE and (x.ends_at is None or clock.now() < x.ends_at),
            x.reason,
            x.basis,
            x.decided_at,
            x.starts_at,
            x.ends_at,
            until_text(x),
            x.appeal_due_at,
            x.appeal_status,
            AppealStatus(x.appeal_status).label,
            x.rebut_due_at,
            x.ended_at,
            x.end_reason,
            x.rebuttal if private else None,
            x.appeal_text if private else None,
            x.appeal_reason if private else None,
        )


class SanctionPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[SanctionOut]


Months = Annotated[
    int, msgspec.Meta(ge=0, le=24, description="期限（月）：警告与暂停 1–24；紧急暂停、永久禁止不填")
]


class SanctionIn(msgspec.Struct, forbid_unknown_fields=True):
    supplier_org_id: uuid.UUID
    kind: fields.Choice  # warning | suspension | emergency | ban
    reason: fields.DecisionNote
    months: Months = 0
    basis: fields.Reason = ""
    case_id: uuid.UUID | None = None


class StatementIn(msgspec.Struct, forbid_unknown_fields=True):
    statement: fields.Explanation


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: fields.Choice  # lift | confirm
    reason: fields.DecisionNote
    months: Months = 0


class AppealDecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    outcome: fields.Choice  # upheld | overturned
    reason: fields.DecisionNote


async def _out(db: DB, who: Viewer, sanction_id: uuid.UUID) -> SanctionOut:
    async with db.read() as s:
        x = await service.get_visible(s, who, sanction_id)
        name = await s.scalar(select(Organization.name).where(Organization.id == x.supplier_org_id)) or ""
        return SanctionOut.of(x, name, private=service.can_read_statements(who, x))


class SanctionApi(Controller):
    path = "/api/sanctions"
    tags = TAGS

    @get("/", opt=PUBLIC, summary="不良行为记录：执行中的处理决定（新的在前）")
    async def sanctions_in_force(self, db: DB, page: PageNo = 1, per_page: PerPage = 20) -> SanctionPage:
        async with db.read() as s:
            total, rows = await service.public_list(s, page, per_page)
        return SanctionPage(total, page, per_page, [SanctionOut.of(x, n, private=False) for x, n in rows])

    @get("/{sanction_id:uuid}", opt=PUBLIC, summary="一项处理决定（执行中的公开；其余限本单位与监管方）")
    async def sanction(self, db: DB, viewer: Viewer, sanction_id: FromPath[uuid.UUID]) -> SanctionOut:
        return await _out(db, viewer, sanction_id)

    @post("/", opt=allow("center"), summary="集中采购机构作出处理决定（即时生效）")
    async def impose_sanction(self, call: UserCall, data: JSONBody[SanctionIn]) -> SanctionOut:
        x = await service.impose(
            call.db,
            call.settings,
            call.me,
            data.supplier_org_id,
            data.kind,
            data.months,
            data.reason,
            data.basis,
            data.case_id,
        )
        return await _out(call.db, call.me, x.id)

    @post(
        "/{sanction_id:uuid}/rebuttal",
        opt=allow("supplier"),
        status_code=200,
        summary="供应商对紧急暂停陈述申辩（1 个工作日内，一次）",
    )
    async def rebut_sanction(
        self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: JSONBody[StatementIn]
    ) -> SanctionOut:
        await service.rebut(call.db, call.me, sanction_id, data.statement)
        return await _out(call.db, call.me, sanction_id)

    @post(
        "/{sanction_id:uuid}/review",
        opt=allow("center"),
        status_code=200,
        summary="集中采购机构复核紧急暂停：撤销，或转为暂停交易资格（1–24 个月）",
    )
    async def review_sanction(
        self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: JSONBody[ReviewIn]
    ) -> SanctionOut:
        await service.review_emergency(call.db, call.me, sanction_id, data.decision, data.months, data.reason)
        return await _out(call.db, call.me, sanction_id)

    @post(
        "/{sanction_id:uuid}/appeal",
        opt=allow("supplier"),
        status_code=200,
        summary="供应商申诉（申诉期内，一次）",
    )
    async def appeal_sanction(
        self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: JSONBody[StatementIn]
    ) -> SanctionOut:
        await service.appeal(call.db, call.me, sanction_id, data.statement)
        return await _out(call.db, call.me, sanction_id)

    @post(
        "/{sanction_id:uuid}/appeal/decision",
        opt=allow("regulator"),
        status_code=200,
        summary="财政监管部门处理申诉：维持（upheld）或撤销（overturned）",
    )
    async def decide_sanction_appeal(
        self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: JSONBody[AppealDecisionIn]
    ) -> SanctionOut:
        await service.decide_appeal(call.db, call.me, sanction_id, data.outcome, data.reason)
        return await _out(call.db, call.me, sanction_id)


class SanctionForm(msgspec.Struct, forbid_unknown_fields=True):
    """The center's page form for a sanction without a report (the API's fields, as text)."""

    supplier_org_id: fields.ShortText  # a supplier's id (checked as one by the page)
    kind: fields.Choice
    reason: fields.DecisionNote
    months: fields.AmountText = ""
    basis: fields.Reason = ""


class SanctionPages(Controller):
    path = "/sanctions"
    include_in_schema = False

    @get("/mine", opt=allow("supplier"))
    async def my_sanctions_page(self, call: UserCall, page: FromQuery[str] = "1") -> Template:
        """A supplier's own sanctions, in force or not, with their appeal's state."""
        p = page_no(page)
        assert call.me.org_id is not None
        async with call.db.read() as s:
            total, rows = await service.supplier_sanctions(s, call.me.org_id, p, PER_PAGE)
        return call.render(
            "sanctions_mine.html",
            rows=[SanctionOut.of(x, n, private=True) for x, n in rows],
            **paging(total, p, PER_PAGE),
        )

    @get("/new", opt=allow("center"))
    async def new_sanction_page(self, call: UserCall, supplier: FromQuery[str] = "") -> Template:
        """The center's form for a sanction without a violation report (a case it found, a court's
        judgment...): the same decision as on a report's page."""
        async with call.db.read() as s:
            suppliers = (
                await s.execute(
                    select(Organization.id, Organization.name)
                    .where(Organization.kind == OrgKind.SUPPLIER)
                    .order_by(Organization.name)
                    .limit(2000)
                )
            ).all()
        return call.render(
            "sanction_new.html",
            suppliers=[(str(i), n) for i, n in suppliers],
            supplier=supplier,
            kinds=_kinds(),
            form=pop_form(call.request),
        )

    @post("/new", opt=allow("center"))
    async def new_sanction_form(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> Sanction:
            d = forms.decode(SanctionForm, data)
            supplier = _uuid_field(d.supplier_org_id, "supplier_org_id", required=True)
            assert supplier is not None
            return await service.impose(
                call.db, call.settings, call.me, supplier, d.kind, d.months or 0, d.reason, d.basis
            )

        return await call.act(
            go,
            lambda x: f"已作出处理决定 {x.sanction_no}，即时生效",
            "/sanctions/new",
            keep=data,
            to=lambda x: f"/sanctions/{x.id}",
        )

    @get("/", opt=PUBLIC)
    async def sanctions_page(self, request: AnyRequest, db: DB, page: FromQuery[str] = "1") -> Template:
        p = page_no(page)
        async with db.read() as s:
            total, rows = await service.public_list(s, p, PER_PAGE)
        return render(
            request,
            "sanctions.html",
            rows=[SanctionOut.of(x, n, private=False) for x, n in rows],
            **paging(total, p, PER_PAGE),
        )

    @get("/{sanction_id:uuid}", opt=PUBLIC)
    async def sanction_page(
        self, request: AnyRequest, db: DB, viewer: Viewer, sanction_id: FromPath[uuid.UUID]
    ) -> Template:
        x = await _out(db, viewer, sanction_id)
        now = clock.now()
        own = viewer is not None and viewer.role == "supplier" and viewer.org_id == x.supplier_org_id
        emergency = x.kind == SanctionKind.EMERGENCY and x.status == SanctionStatus.IN_FORCE
        return render(
            request,
            "sanction.html",
            x=x,
            may_rebut=own
            and emergency
            and not x.rebuttal
            and x.rebut_due_at is not None
            and now <= x.rebut_due_at,
            may_appeal=own and x.appeal_status == AppealStatus.NONE and now <= x.appeal_due_at,
            may_review=viewer is not None and viewer.role == "center" and emergency,
            may_decide_appeal=viewer is not None
            and viewer.role == "regulator"
            and x.appeal_status == AppealStatus.FILED,
            form=pop_form(request),
        )


# ---------------------------------------------------------------- violation reports


class EvidenceOut(msgspec.Struct):
    name: str
    size: int
    type: str
    sha256: str
    url: str


class ReportOut(msgspec.Struct):
    id: uuid.UUID
    report_no: str
    reporter_org_id: uuid.UUID
    supplier_org_id: uuid.UUID
    order_id: uuid.UUID | None
    reason: str
    reason_label: str
    description: str
    evidence: list[EvidenceOut]
    status: str
    status_label: str
    filed_at: datetime
    decide_due_at: datetime
    overdue: bool
    decided_at: datetime | None
    decision_reason: str
    sanction_id: uuid.UUID | None

    @classmethod
    def of(cls, r: ViolationReport) -> ReportOut:
        return cls(
            r.id,
            r.report_no,
            r.reporter_org_id,
            r.supplier_org_id,
            r.order_id,
            r.reason,
            ReportReason(r.reason).label,
            r.description,
            [
                EvidenceOut(
                    str(e["name"]),
                    int(e["size"]),
                    str(e["type"]),
                    str(e["sha256"]),
                    f"/api/sanctions/reports/{r.id}/evidence/{n}",
                )
                for n, e in enumerate(r.evidence or [], start=1)
            ],
            r.status,
            ReportStatus(r.status).label,
            r.filed_at,
            r.decide_due_at,
            reports.is_overdue(r),
            r.decided_at,
            r.decision_reason,
            r.sanction_id,
        )


class ReportPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[ReportOut]


class ReportDecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    outcome: fields.Choice  # upheld | dismissed
    reason: fields.DecisionNote
    # upheld: the sanction imposed (kind warning | suspension | emergency | ban)
    kind: fields.Choice = ""
    months: Months = 0
    sanction_reason: fields.DecisionNote = ""
    basis: fields.Reason = ""


def _one(value: Any) -> str:
    value = first_value(value)
    return value if isinstance(value, str) else ""


def _uuid_field(raw: str, field: str, *, required: bool) -> uuid.UUID | None:
    raw = raw.strip()
    if not raw:
        if required:
            raise InvalidInput("请选择被举报的供应商", code="supplier_required", field=field)
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("编号格式不正确", code="invalid_id", field=field) from None


async def _file_from(call: Any, data: Any) -> ViolationReport:
    data = data if isinstance(data, dict) else {}
    raw = data.get("evidence") or []
    uploads = [
        u for u in (raw if isinstance(raw, list) else [raw]) if isinstance(u, UploadFile) and u.filename
    ]
    if len(uploads) > reports.EVIDENCE_FILES:
        raise InvalidInput(
            f"证据材料最多 {reports.EVIDENCE_FILES} 个文件", code="too_many_files", field="evidence"
        )
    evidence = [(u.filename, await u.read(reports.EVIDENCE_BYTES + 1)) for u in uploads]
    supplier = _uuid_field(_one(data.get("supplier_org_id")), "supplier_org_id", required=True)
    assert supplier is not None
    return await reports.file_report(
        call.db,
        call.settings,
        files.store_for(call.settings, call.db),
        call.me,
        supplier,
        _one(data.get("reason")),
        _one(data.get("description")),
        evidence,
        _uuid_field(_one(data.get("order_id")), "order_id", required=False),
    )


async def _decide(call: Any, report_id: uuid.UUID, d: ReportDecisionIn) -> ViolationReport:
    terms = (
        service.checked(call.me, d.kind, d.months, d.sanction_reason or d.reason, d.basis)
        if d.outcome == ReportStatus.UPHELD
        else None
    )
    return await reports.decide(call.db, call.settings, call.me, report_id, d.outcome, d.reason, terms)


async def _report_out(call: Any, report_id: uuid.UUID) -> ReportOut:
    async with call.db.read() as s:
        return ReportOut.of(await reports.get_report(s, call.me, report_id))


async def _evidence(call: Any, report_id: uuid.UUID, n: int) -> Stream:
    item, chunks = await reports.evidence_file(
        call.db, files.store_for(call.settings, call.db), call.me, report_id, n
    )
    ext = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}.get(str(item["type"]), "bin")
    return Stream(
        chunks,
        media_type=str(item["type"]),
        headers={
            "content-disposition": f'attachment; filename="evidence-{n}.{ext}"',
            "x-content-sha256": str(item["sha256"]),
        },
    )


REPORT_READERS = allow("buyer", "supplier", "center", "regulator")


class ReportApi(Controller):
    path = "/api/sanctions/reports"
    tags = TAGS

    @post(
        "/",
        opt=allow("buyer"),
        summary="采购人举报供应商违规（multipart：supplier_org_id、reason、description、order_id，证据文件 evidence 至多 5 个，PDF/JPEG/PNG，每个不超过 10 MB）",
    )
    async def file_report(self, call: UserCall, data: MultipartBody[dict[str, Any]]) -> ReportOut:
        report = await _file_from(call, data)
        return await _report_out(call, report.id)

    @get(
        "/",
        opt=REPORT_READERS,
        summary="违规举报列表（采购人：本单位提交的；供应商：针对本单位的；集中采购机构、监管部门：全部）",
    )
    async def reports_list(
        self, call: UserCall, status: FromQuery[str] = "", page: PageNo = 1, per_page: PerPage = 20
    ) -> ReportPage:
        async with call.db.read() as s:
            total, rows = await reports.list_reports(s, call.me, status.strip(), page, per_page)
        return ReportPage(total, page, per_page, [ReportOut.of(r) for r in rows])

    @get("/{report_id:uuid}", opt=REPORT_READERS, summary="一项违规举报")
    async def report(self, call: UserCall, report_id: FromPath[uuid.UUID]) -> ReportOut:
        return await _report_out(call, report_id)

    @get(
        "/{report_id:uuid}/evidence/{n:int}",
        opt=REPORT_READERS,
        summary="证据材料（响应头 x-content-sha256 为其摘要）",
    )
    async def report_evidence(
        self, call: UserCall, report_id: FromPath[uuid.UUID], n: FromPath[int]
    ) -> Stream:
        return await _evidence(call, report_id, n)

    @post(
        "/{report_id:uuid}/decision",
        opt=allow("center"),
        status_code=200,
        summary="集中采购机构处理举报：查证属实（同时作出处理决定）或不予支持，均须说明理由",
    )
    async def decide_report(
        self, call: UserCall, report_id: FromPath[uuid.UUID], data: JSONBody[ReportDecisionIn]
    ) -> ReportOut:
        await _decide(call, report_id, data)
        return await _report_out(call, report_id)


def _kinds() -> list[tuple[str, str]]:
    return [(k.value, k.label) for k in SanctionKind]


class ReportPages(Controller):
    path = "/sanctions/reports"
    include_in_schema = False

    @get("/", opt=REPORT_READERS)
    async def reports_page(
        self, call: UserCall, status: FromQuery[str] = "", page: FromQuery[str] = "1"
    ) -> Template:
        p = page_no(page)
        chosen = status if status in ReportStatus.labels() else ""
        async with call.db.read() as s:
            total, rows = await reports.list_reports(s, call.me, chosen, p, PER_PAGE)
            names = await _names(s, {r.supplier_org_id for r in rows} | {r.reporter_org_id for r in rows})
        return call.render(
            "reports.html",
            rows=[ReportOut.of(r) for r in rows],
            names=names,
            statuses=ReportStatus.labels(),
            status=chosen,
            may_file=call.me.role == "buyer",
            **paging(total, p, PER_PAGE),
        )

    @get("/new", opt=allow("buyer"))
    async def new_report_page(
        self, call: UserCall, supplier: FromQuery[str] = "", order: FromQuery[str] = ""
    ) -> Template:
        async with call.db.read() as s:
            suppliers = (
                await s.execute(
                    select(Organization.id, Organization.name)
                    .where(Organization.kind == OrgKind.SUPPLIER)
                    .order_by(Organization.name)
                    .limit(500)
                )
            ).all()
        return call.render(
            "report_new.html",
            suppliers=[(str(i), n) for i, n in suppliers],
            reasons=list(ReportReason.labels().items()),
            supplier=supplier,
            order=order,
            form=pop_form(call.request),
            max_files=reports.EVIDENCE_FILES,
        )

    @post("/", opt=allow("buyer"))
    async def file_report_form(self, call: UserCall, data: MultipartBody[dict[str, Any]]) -> Redirect:
        kept = {
            k: _one(v)
            for k, v in (data or {}).items()
            if k in ("supplier_org_id", "reason", "description", "order_id")
        }
        return await call.act(
            lambda: _file_from(call, data),
            "举报已提交，集中采购机构将在期限内处理",
            "/sanctions/reports/new",
            keep=kept,
            to=lambda r: f"/sanctions/reports/{r.id}",
        )

    @get("/{report_id:uuid}", opt=REPORT_READERS)
    async def report_page(self, call: UserCall, report_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            r = await reports.get_report(s, call.me, report_id)
            names = await _names(s, {r.supplier_org_id, r.reporter_org_id})
            x = await reports.sanction_of(s, r)
        return call.render(
            "report.html",
            r=ReportOut.of(r),
            names=names,
            sanction=x,
            may_decide=call.me.role == "center" and r.status == ReportStatus.SUBMITTED,
            kinds=_kinds(),
            form=pop_form(call.request),
        )

    @get("/{report_id:uuid}/evidence/{n:int}", opt=REPORT_READERS)
    async def report_evidence_page(
        self, call: UserCall, report_id: FromPath[uuid.UUID], n: FromPath[int]
    ) -> Stream:
        return await _evidence(call, report_id, n)

    @post("/{report_id:uuid}/decision", opt=allow("center"))
    async def decide_report_form(
        self, call: UserCall, report_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        async def go() -> Any:
            return await _decide(call, report_id, forms.decode(ReportDecisionIn, data))

        back = f"/sanctions/reports/{report_id}"
        return await call.act(go, "已登记处理结论", back, keep={**data, "action": "decision"})


async def _names(s: Any, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = (await s.execute(select(Organization.id, Organization.name).where(Organization.id.in_(ids)))).all()
    return {i: n for i, n in rows}


class SanctionFormPages(Controller):
    """The sanction page's forms: the supplier's rebuttal and appeal, the center's review of an
    emergency suspension, the regulator's decision on the appeal."""

    path = "/sanctions"
    include_in_schema = False

    @post("/{sanction_id:uuid}/rebuttal", opt=allow("supplier"))
    async def rebut_form(self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            return await service.rebut(
                call.db, call.me, sanction_id, forms.decode(StatementIn, data).statement
            )

        return await call.act(
            go, "陈述申辩已提交", f"/sanctions/{sanction_id}", keep={**data, "action": "rebuttal"}
        )

    @post("/{sanction_id:uuid}/appeal", opt=allow("supplier"))
    async def appeal_form(self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            return await service.appeal(
                call.db, call.me, sanction_id, forms.decode(StatementIn, data).statement
            )

        return await call.act(
            go, "申诉已提交", f"/sanctions/{sanction_id}", keep={**data, "action": "appeal"}
        )

    @post("/{sanction_id:uuid}/review", opt=allow("center"))
    async def review_form(self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            d = forms.decode(ReviewIn, data)
            return await service.review_emergency(
                call.db, call.me, sanction_id, d.decision, d.months, d.reason
            )

        return await call.act(
            go, "已登记复核结论", f"/sanctions/{sanction_id}", keep={**data, "action": "review"}
        )

    @post("/{sanction_id:uuid}/appeal/decision", opt=allow("regulator"))
    async def appeal_decision_form(
        self, call: UserCall, sanction_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        async def go() -> Any:
            d = forms.decode(AppealDecisionIn, data)
            return await service.decide_appeal(call.db, call.me, sanction_id, d.outcome, d.reason)

        return await call.act(
            go, "已登记申诉处理结论", f"/sanctions/{sanction_id}", keep={**data, "action": "appeal_decision"}
        )


ROUTES = [SanctionApi, ReportApi]
PAGES = [SanctionPages, ReportPages, SanctionFormPages]
