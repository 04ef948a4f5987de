"""Sanctions: the center's decisions, the supplier's rebuttal and appeal, the regulator's decision on
the appeal (mall.sanctions), and the public list of sanctions in force (不良行为记录)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Template
from sqlalchemy import select

from mall.core import clock, fields
from mall.core.guards import PUBLIC, allow
from mall.core.models import Organization
from mall.sanctions import service
from mall.sanctions.models import AppealStatus, Sanction, SanctionKind, SanctionStatus
from mall.sanctions.standing import until_text
from mall.web.deps import DB, UserCall, Viewer
from mall.web.helpers import AnyRequest, PageNo, PerPage, page_no, paging, render

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


class SanctionPages(Controller):
    path = "/sanctions"
    include_in_schema = False

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
        return render(request, "sanction.html", x=await _out(db, viewer, sanction_id))


ROUTES = [SanctionApi]
PAGES = [SanctionPages]
