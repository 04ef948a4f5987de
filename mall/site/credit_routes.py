"""Supplier credit (mall.credit): a supplier's score with every event behind it (the supplier itself,
the center, the regulator), and the ranking of suppliers by score (the center and the regulator)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall.core.errors import InvalidInput
from mall.core.guards import allow
from mall.credit import rules, service
from mall.web.deps import UserCall
from mall.web.helpers import PageNo, PerPage, page_no, paging

TAGS = ["供应商信用"]
PER_PAGE = 20
READERS = allow("supplier", "center", "regulator")


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


ROUTES = [CreditApi]
PAGES = [CreditPages]
