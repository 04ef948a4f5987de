"""Small and medium enterprises (mall.sme): a supplier's 中小企业声明函, the list of declarations for the
center and the regulator, and the SME statistics with the annual report's figures (CSV and XLSX)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Template

from mall.core import clock, fields
from mall.core.errors import InvalidInput, NotFound
from mall.core.guards import PUBLIC, allow
from mall.core.regions import org_region
from mall.sme import rules, service
from mall.sme.current import declarations_on
from mall.sme.models import SmeDeclaration
from mall.stats import sme as sme_stats
from mall.stats.period import Filter, Period, parse_region
from mall.web import forms
from mall.web.deps import UserCall
from mall.web.helpers import Form, PageNo, PerPage, org_id_filter, page_no, paging, pop_form

TAGS = ["中小企业"]
PER_PAGE = 20
OVERSEERS = allow("center", "regulator")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class DeclarationIn(msgspec.Struct, forbid_unknown_fields=True):
    industry: fields.Choice
    employees: fields.AmountText = ""  # 从业人员（人）
    revenue: fields.AmountText = ""  # 营业收入（万元）
    assets: fields.AmountText = ""  # 资产总额（万元）


class DeclarationOut(msgspec.Struct):
    id: uuid.UUID
    org_id: uuid.UUID
    org_name: str
    industry: str
    industry_label: str
    employees: int | None
    revenue: str | None
    assets: str | None
    size: str
    size_label: str
    declared_on: str
    valid_until: str
    source: str
    statement: str
    declared_at: datetime

    @classmethod
    def of(cls, d: SmeDeclaration, name: str) -> DeclarationOut:
        t = rules.thresholds().get(d.industry)
        return cls(
            d.id,
            d.org_id,
            name,
            d.industry,
            t.label if t else "",
            d.employees,
            None if d.revenue is None else f"{d.revenue:.2f}",
            None if d.assets is None else f"{d.assets:.2f}",
            d.size,
            rules.SIZES.get(d.size, d.size),
            d.declared_on.isoformat(),
            d.valid_until.isoformat(),
            d.source,
            d.statement,
            d.declared_at,
        )


class DeclarationPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[DeclarationOut]


class IndustryOut(msgspec.Struct):
    industry: str
    label: str
    indicators: list[str]


def _year(raw: str) -> int:
    today = clock.local_date(clock.now())
    if not raw:
        return today.year
    if not raw.isdigit() or not 2000 <= int(raw) <= today.year:
        raise InvalidInput(f"年度应为 2000 至 {today.year} 之间的年份", code="invalid_year", field="year")
    return int(raw)


async def _filter(call: Any, year: int, region: str) -> Filter:
    async with call.db.read() as s:
        own = await org_region(s, call.me.org_id)
    return Filter(Period(date(year, 1, 1), date(year, 12, 31)), parse_region(region, own))


class SmeApi(Controller):
    path = "/api/sme"
    tags = TAGS

    @get("/industries", opt=PUBLIC, summary="中小企业划型的行业及其指标（工信部联企业〔2011〕300号）")
    async def sme_industries(self) -> list[IndustryOut]:
        return [
            IndustryOut(t.industry, t.label, [rules.INDICATORS[k] for k in (t.first, t.second) if k])
            for t in rules.thresholds().values()
        ]

    @post(
        "/declarations",
        opt=allow("supplier"),
        summary="供应商出具中小企业声明函（行业与上一年度从业人员、营业收入、资产总额；按划型标准确定规模，自出具之日起一年有效）",
    )
    async def declare_sme(self, call: UserCall, data: JSONBody[DeclarationIn]) -> DeclarationOut:
        d = await service.declare(call.db, call.me, data.industry, data.employees, data.revenue, data.assets)
        return DeclarationOut.of(d, call.me.org_name or "")

    @get(
        "/declarations",
        opt=allow("supplier", "center", "regulator"),
        summary="中小企业声明函（供应商：本单位的；集中采购机构、监管部门：全部，可按单位查询）",
    )
    async def sme_declarations(
        self, call: UserCall, page: PageNo = 1, per_page: PerPage = 20, org_id: FromQuery[str] = ""
    ) -> DeclarationPage:
        async with call.db.read() as s:
            total, rows = await service.listed(
                s, call.me, org_id=org_id_filter(org_id), page=page, per_page=per_page
            )
        return DeclarationPage(total, page, per_page, [DeclarationOut.of(d, n) for d, n in rows])

    @get(
        "/statistics",
        opt=OVERSEERS,
        summary="中小企业成交占比：按采购单位、地区或年度（by=buyer|region|year），year 年度，region 地区（本单位所辖）",
    )
    async def sme_statistics(
        self,
        call: UserCall,
        by: FromQuery[str] = "buyer",
        year: FromQuery[str] = "",
        region: FromQuery[str] = "",
    ) -> dict[str, Any]:
        if by not in sme_stats.BY:
            raise InvalidInput("by 应为 buyer、region 或 year", code="invalid_parameter", field="by")
        y = _year(year)
        f = await _filter(call, y, region)
        if by == "year":  # every year up to this one
            f = Filter(Period(date(max(2000, y - 4), 1, 1), date(y, 12, 31)), f.scope)
        async with call.db.read() as s:
            rows = await sme_stats.shares(s, f, by)
        return {"by": by, "year": y, "region": f.scope, "rows": [r.api() for r in rows]}

    @get(
        "/report/{name:str}",
        opt=OVERSEERS,
        summary="中小企业采购年度报告数据（按采购单位）：sme-report-YYYY.csv 或 sme-report-YYYY.xlsx",
    )
    async def sme_report(
        self, call: UserCall, name: FromPath[str], region: FromQuery[str] = ""
    ) -> Response[bytes]:
        stem, _, ext = name.rpartition(".")
        if ext not in ("csv", "xlsx") or not stem.startswith("sme-report-"):
            raise NotFound("没有这个报表", code="report_not_found")
        y = _year(stem.removeprefix("sme-report-"))
        f = await _filter(call, y, region)
        async with call.db.read() as s:
            rows = await sme_stats.shares(s, f, "buyer")
        title = f"{y}年度中小企业采购情况"
        body = sme_stats.report_csv(rows) if ext == "csv" else sme_stats.report_xlsx(rows, title)
        filename = f"sme-report-{y}.{ext}"
        return Response(
            body,
            media_type="text/csv; charset=utf-8" if ext == "csv" else XLSX,
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )


class SmePages(Controller):
    path = "/sme"
    include_in_schema = False

    @get("/", opt=allow("supplier", "center", "regulator"))
    async def sme_page(self, call: UserCall, page: FromQuery[str] = "1") -> Template:
        p = page_no(page)
        async with call.db.read() as s:
            total, rows = await service.listed(s, call.me, page=p, per_page=PER_PAGE)
            current = (
                (await declarations_on(s, [call.me.org_id], clock.local_date(clock.now()))).get(
                    call.me.org_id
                )
                if call.me.role == "supplier" and call.me.org_id
                else None
            )
        return call.render(
            "sme.html",
            rows=[DeclarationOut.of(d, n) for d, n in rows],
            current=DeclarationOut.of(current, call.me.org_name or "") if current else None,
            industries=[(t.industry, t.label) for t in rules.thresholds().values()],
            form=pop_form(call.request),
            **paging(total, p, PER_PAGE),
        )

    @post("/declarations", opt=allow("supplier"))
    async def declare_form(self, call: UserCall, data: Form) -> Any:
        async def go() -> SmeDeclaration:
            d = forms.decode(DeclarationIn, data)
            return await service.declare(call.db, call.me, d.industry, d.employees, d.revenue, d.assets)

        return await call.act(
            go,
            lambda d: f"已出具中小企业声明函：{rules.SIZES[d.size]}，有效至 {d.valid_until.isoformat()}",
            "/sme",
            keep=data,
        )

    @get("/statistics", opt=OVERSEERS)
    async def sme_statistics_page(
        self, call: UserCall, year: FromQuery[str] = "", region: FromQuery[str] = ""
    ) -> Template:
        y = _year(year) if year.isdigit() else clock.local_date(clock.now()).year
        f = await _filter(call, y, region if region.isdigit() else "")
        async with call.db.read() as s:
            by_buyer = await sme_stats.shares(s, f, "buyer")
            by_region = await sme_stats.shares(s, f, "region")
            by_year = await sme_stats.shares(
                s, Filter(Period(date(max(2000, y - 4), 1, 1), date(y, 12, 31)), f.scope), "year"
            )
        return call.render(
            "sme_statistics.html",
            year=y,
            years=[(str(x), f"{x}年") for x in range(clock.local_date(clock.now()).year, 2019, -1)],
            by_buyer=by_buyer,
            by_region=by_region,
            by_year=by_year,
            total=sme_stats._total(by_buyer),
        )


ROUTES = [SmeApi]
PAGES = [SmePages]
