"""Statistics and dashboards: spend, SME share, savings, cases and alerts, times; the API and the charts (mall.stats).

The regulator and the procurement center see every chart, for their own region or a region under it;
the public sees the aggregates of published deals (spend, deals, the SME share, savings) for any
region. Every chart is also a CSV download. The pages draw with ECharts when `./dev` has installed
it into the static files, and show each chart's table in any case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import NotFound
from mall.core.guards import PUBLIC, allow
from mall.core.regions import names, org_region, region_name, within
from mall.core.settings import Settings
from mall.stats import charts
from mall.stats.period import Filter, parse_period, parse_region
from mall.web.deps import DB, Config, Me
from mall.web.helpers import AnyRequest, render

TAGS = ["统计"]
OVERSEERS = allow("regulator", "center")
# Installed by `./dev` (ensure_echarts), not committed: the pages draw only when it is there.
ECHARTS = Path(__file__).resolve().parents[2] / "templates" / "static" / "echarts" / "echarts.min.js"
CSV = "text/csv; charset=utf-8"

DateFrom = Annotated[
    str | None, QueryParameter(name="from", description="统计期间起，YYYY-MM-DD（默认 12 个月前的月初）")
]
DateTo = Annotated[
    str | None, QueryParameter(name="to", description="统计期间止，YYYY-MM-DD（默认今天）；期间最长 5 年")
]
Region = Annotated[str | None, QueryParameter(description="6 位行政区划代码：统计该地区及其下级地区")]


async def _own_region(db: Database, me: Principal) -> str:
    async with db.read() as s:
        return await org_region(s, me.org_id)


def _filter(date_from: str | None, date_to: str | None, region: str | None, own: str | None) -> Filter:
    today = clock.local_date(clock.now())
    return Filter(parse_period(date_from, date_to, today), parse_region(region, own))


async def _collect(db: Database, f: Filter, keys: tuple[str, ...]) -> charts.Statistics:
    async with db.read() as s:
        return await charts.collect(s, f, keys)


async def _csv(db: Database, f: Filter, keys: tuple[str, ...], name: str) -> Response[bytes]:
    key = name.removesuffix(".csv")
    if not name.endswith(".csv") or key not in keys:
        raise NotFound("没有这个统计图表", code="chart_not_found")
    chart = (await _collect(db, f, (key,) if key in charts.PUBLIC_CHARTS else keys)).charts[key]
    return Response(
        charts.csv_bytes(chart),
        media_type=CSV,
        headers={"content-disposition": charts.content_disposition(chart, f)},
    )


class OversightStatisticsApi(Controller):
    path = "/api/oversight/statistics"
    opt = OVERSEERS
    tags = TAGS

    @get(
        "/",
        summary="统计分析：成交、中小企业占比、节约、监管案件、价格预警、确认与付款用时（本单位所辖地区）",
    )
    async def oversight_statistics(
        self, db: DB, me: Me, date_from: DateFrom = None, date_to: DateTo = None, region: Region = None
    ) -> dict[str, Any]:
        f = _filter(date_from, date_to, region, await _own_region(db, me))
        return (await _collect(db, f, charts.PRIVATE_CHARTS)).api()

    @get("/{chart:str}", summary="下载一个统计图表的数据（CSV，UTF-8 带 BOM），如 spend_by_mode.csv")
    async def oversight_statistics_csv(
        self,
        db: DB,
        me: Me,
        chart: FromPath[str],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        region: Region = None,
    ) -> Response[bytes]:
        f = _filter(date_from, date_to, region, await _own_region(db, me))
        return await _csv(db, f, charts.PRIVATE_CHARTS, chart)


class PublicStatisticsApi(Controller):
    path = "/api/statistics"
    opt = PUBLIC
    tags = TAGS

    @get("/", summary="交易统计（公开）：成交金额与笔数（按方式、品目、地区、月份）、中小企业占比、节约情况")
    async def public_statistics(
        self, db: DB, date_from: DateFrom = None, date_to: DateTo = None, region: Region = None
    ) -> dict[str, Any]:
        f = _filter(date_from, date_to, region, None)
        return (await _collect(db, f, charts.PUBLIC_CHARTS)).api()

    @get("/{chart:str}", summary="下载一个公开统计图表的数据（CSV，UTF-8 带 BOM），如 spend_by_mode.csv")
    async def public_statistics_csv(
        self,
        db: DB,
        chart: FromPath[str],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        region: Region = None,
    ) -> Response[bytes]:
        f = _filter(date_from, date_to, region, None)
        return await _csv(db, f, charts.PUBLIC_CHARTS, chart)


# ---------------------------------------------------------------- pages


def _regions_under(scope: str) -> list[tuple[str, str]]:
    """The listed regions a select offers: `scope` and every listed region under it."""
    return [
        (code, region_name(code) or name) for code, name in sorted(names().items()) if within(code, scope)
    ]


def _page(
    request: AnyRequest,
    template: str,
    stats: charts.Statistics,
    *,
    regions: list[tuple[str, str]],
    api: str,
    settings: Settings,
    own: str | None,
) -> Template:
    f = stats.filter
    params = {"from": f.period.start.isoformat(), "to": f.period.end.isoformat()}
    if f.scope and f.scope != own:
        params["region"] = f.scope
    qs = "&".join(f"{k}={v}" for k, v in params.items())
    return render(
        request,
        template,
        stats=stats,
        charts=list(stats.charts.values()),
        regions=regions,
        region=f.scope or "",
        scope_name=region_name(f.scope) if f.scope else "全部地区",
        api=api,
        qs=qs,
        filtered=bool(request.query_params),
        echarts=ECHARTS.is_file(),
        cell=charts.display,
        money=lambda v: charts.display(charts.Column("", "", "money"), v),
        settings=settings,
    )


class OversightDashboardPage(Controller):
    path = "/oversight/dashboard"
    include_in_schema = False

    @get("/", opt=OVERSEERS)
    async def oversight_dashboard(
        self,
        request: AnyRequest,
        db: DB,
        me: Me,
        settings: Config,
        date_from: DateFrom = None,
        date_to: DateTo = None,
        region: Region = None,
    ) -> Template:
        own = await _own_region(db, me)
        f = _filter(date_from, date_to, region, own)
        stats = await _collect(db, f, charts.PRIVATE_CHARTS)
        return _page(
            request,
            "stats_dashboard.html",
            stats,
            regions=_regions_under(own),
            api="/api/oversight/statistics",
            settings=settings,
            own=own,
        )


class PublicStatisticsPage(Controller):
    path = "/statistics"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def public_statistics_page(
        self,
        request: AnyRequest,
        db: DB,
        settings: Config,
        date_from: DateFrom = None,
        date_to: DateTo = None,
        region: Region = None,
    ) -> Template:
        f = _filter(date_from, date_to, region, None)
        stats = await _collect(db, f, charts.PUBLIC_CHARTS)
        return _page(
            request,
            "stats_public.html",
            stats,
            regions=_regions_under(settings.region_code),
            api="/api/statistics",
            settings=settings,
            own=None,
        )


ROUTES = [OversightStatisticsApi, PublicStatisticsApi]
PAGES = [OversightDashboardPage, PublicStatisticsPage]
