"""Statistics (mall.stats): the figures of a known set of deals, procedures, cases and price alerts;
the API's refusals (periods, regions out of the caller's scope); the CSV downloads; and each chart's
table on the pages equals the figures of the statistics API."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from bidding.models import Procedure, ProcedureStatus
from mall.core import clock
from mall.orders.models import Checkout, Order, OrderLine, OrderStatus
from mall.pricewatch.models import PriceAlert
from mall.stats import charts
from mall.stats.period import Period, default_period, parse_period
from mall.stats.queries import quantile
from mall.supervision.models import OversightCase
from tests.factories import World
from tests.mall.test_pages import login_ok
from tests.security.login_helpers import assert_problem

HTML = {"Accept": "text/html,application/xhtml+xml"}
PERIOD = {"from": "2025-01-01", "to": "2025-12-31"}


def local(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=clock.SHANGHAI)


async def deal(
    world: World,
    supplier: str,
    amount: str,
    confirmed_at: datetime | None,
    *,
    mode: str = "supermarket",
    status: str = OrderStatus.CONFIRMED,
    region: str = "410105",
    category: str = "A02010105",
    placed_at: datetime | None = None,
    accepted_at: datetime | None = None,
    paid_at: datetime | None = None,
) -> uuid.UUID:
    """An order of buyer_a from `supplier` of one line, in the given state and at the given times."""
    buyer, seller = world.who["buyer_a"], world.who[supplier]
    assert buyer.org_id is not None and seller.org_id is not None
    placed = placed_at or (confirmed_at or local(2025, 1, 1)) - timedelta(hours=5)
    money = Decimal(amount)
    async with world.db.write() as tx:
        ck = Checkout(
            id=uuid.uuid4(),
            user_id=buyer.user_id,
            idempotency_key=uuid.uuid4().hex,
            request_digest="-",
            created_at=placed,
        )
        order = Order(
            id=uuid.uuid4(),
            order_no=f"WS{uuid.uuid4().hex[:20]}",
            mode=mode,
            status=status,
            buyer_org_id=buyer.org_id,
            buyer_user_id=buyer.user_id,
            supplier_org_id=seller.org_id,
            budget_line_id=world.lines["a1"].id,
            checkout_id=ck.id,
            region_code=region,
            total_amount=money,
            reserved_amount=Decimal(0),
            placed_at=placed,
            confirm_due_at=placed + timedelta(days=15),
            confirmed_at=confirmed_at,
            accepted_at=accepted_at,
            paid_at=paid_at,
            # supplier_x small (its declaration when the deal was made), supplier_y large
            supplier_scale="large" if supplier == "supplier_y" else "small",
        )
        line = OrderLine(
            id=uuid.uuid4(),
            order_id=order.id,
            line_no=1,
            item_name="商品",
            brand="品牌",
            spec_model="型号",
            category_code=category,
            category_version="2022",
            unit="台",
            quantity=Decimal(1),
            listed_unit_price=money,
            unit_price=money,
            amount=money,
            # what the listing declared (catalog.policy): the 信息化设备 certified, the rest not
            green="energy" if category.startswith("A0201") else "",
            origin="domestic",
        )
        tx.session.add_all([ck, order, line])
    return order.id


async def confirmed_auction(
    world: World, order_id: uuid.UUID, ceiling: str, awarded: str, at: datetime
) -> None:
    buyer = world.who["buyer_a"]
    assert buyer.org_id is not None
    async with world.db.write() as tx:
        tx.session.add(
            Procedure(
                id=uuid.uuid4(),
                number=f"JJ{uuid.uuid4().hex[:12]}",
                kind="auction",
                status=ProcedureStatus.CONFIRMED,
                title="竞价项目",
                buyer_org_id=buyer.org_id,
                buyer_user_id=buyer.user_id,
                budget_line_id=world.lines["a1"].id,
                region_code="410100",
                ceiling=Decimal(ceiling),
                starts_at=at - timedelta(days=2),
                scheduled_end=at - timedelta(days=1),
                ends_at=at - timedelta(days=1),
                awarded_supplier_id=world.who["supplier_x"].org_id,
                awarded_amount=Decimal(awarded),
                awarded_at=at - timedelta(hours=20),
                order_id=order_id,
                created_at=at - timedelta(days=3),
            )
        )


async def case(world: World, rule: str, status: str, region: str, opened: datetime) -> None:
    party = world.who["buyer_a"].org_id
    assert party is not None
    async with world.db.write() as tx:
        tx.session.add(
            OversightCase(
                id=uuid.uuid4(),
                case_no=f"AJ{uuid.uuid4().hex[:12]}",
                rule=rule,
                subject_key=uuid.uuid4().hex,
                status=status,
                region_code=region,
                party_org_id=party,
                summary="摘要",
                opened_at=opened,
                last_hit_at=opened,
                explain_due_at=opened + timedelta(days=10),
            )
        )


async def alert(
    world: World, kind: str, region: str, opened: datetime, status: str = "open", listing_key: str = "laptop"
) -> None:
    listing = world.listings[listing_key]
    async with world.db.write() as tx:
        tx.session.add(
            PriceAlert(
                id=uuid.uuid4(),
                listing_id=listing.id,
                supplier_org_id=listing.supplier_org_id,
                category_code=listing.category_code,
                region_code=region,
                kind=kind,
                status=status,
                price=Decimal("5000.00"),
                opened_at=opened,
                last_seen_at=opened,
            )
        )


async def known_world(world: World) -> None:
    """supplier_x small (the default), supplier_y large. In 2025: a paid supermarket deal in 金水区,
    an agreement deal in 开封市, an auction deal in 郑州市; and what must not count."""
    await deal(
        world,
        "supplier_x",
        "1000.00",
        local(2025, 3, 10),
        status=OrderStatus.PAID,
        placed_at=local(2025, 3, 9),
        accepted_at=local(2025, 4, 1),
        paid_at=local(2025, 4, 11),
    )
    await deal(
        world,
        "supplier_y",
        "3000.00",
        local(2025, 5, 2),
        mode="agreement",
        region="410202",
        category="A05010201",
        placed_at=local(2025, 5, 1, 22),
    )
    auction = await deal(
        world,
        "supplier_x",
        "8000.00",
        local(2025, 5, 20),
        mode="auction",
        region="410100",
        placed_at=local(2025, 5, 20),
    )
    await confirmed_auction(world, auction, "10000.00", "8000.00", local(2025, 5, 20))
    # Not deals of the period: cancelled (a voided contract too), never confirmed, another year.
    await deal(world, "supplier_x", "500.00", local(2025, 6, 1), status=OrderStatus.CANCELLED)
    await deal(world, "supplier_x", "700.00", None, status=OrderStatus.PLACED)
    await deal(world, "supplier_x", "900.00", local(2024, 12, 31, 23), status=OrderStatus.PAID)
    # 2025-01-01 00:30 in Shanghai is still 2024 in UTC: it counts in January 2025.
    await deal(world, "supplier_y", "100.00", local(2025, 1, 1, 0), placed_at=local(2024, 12, 31, 20))
    await case(world, "split_purchase", "open", "410105", local(2025, 2, 1))
    await case(world, "split_purchase", "violation", "410105", local(2025, 2, 3))
    await case(world, "late_payment", "open", "410202", local(2025, 2, 3))
    await alert(world, "above_market", "410100", local(2025, 7, 1))
    await alert(world, "abnormally_low", "410100", local(2025, 7, 9), status="closed")
    await alert(world, "above_market", "410202", local(2025, 8, 1), listing_key="desk")


def by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in rows}


async def test_the_figures_of_known_deals(client: Any, world: World) -> None:
    await known_world(world)
    r = await client.get("/api/statistics", params=PERIOD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == {
        "amount": "12100.00",
        "deals": 4,
        "sme_share": "74.38",  # 9000 of 12100
        "saved": "2000.00",
        "saving_rate": "20.00",
    }
    c = body["charts"]
    assert set(c) == set(charts.PUBLIC_CHARTS)  # the public sees no cases, alerts or times
    modes = by(c["spend_by_mode"]["rows"], "mode")
    assert (modes["supermarket"]["amount"], modes["supermarket"]["deals"]) == ("1100.00", 2)
    assert (modes["agreement"]["amount"], modes["auction"]["amount"]) == ("3000.00", "8000.00")
    assert (modes["designated"]["amount"], modes["designated"]["deals"]) == ("0.00", 0)
    assert modes["agreement"]["name"] == "协议供货"
    months = by(c["spend_by_month"]["rows"], "month")
    assert len(months) == 12
    assert months["2025-01"]["amount"] == "100.00"
    assert months["2025-03"]["amount"] == "1000.00"
    assert (months["2025-05"]["amount"], months["2025-05"]["deals"]) == ("11000.00", 2)
    assert months["2025-06"]["amount"] == "0.00"
    top = by(c["spend_by_category"]["rows"], "code")
    assert top["A02"] == {"code": "A02", "name": "设备", "amount": "9100.00", "deals": 3}
    assert top["A05"]["name"] == "家具和用具"
    assert [r["code"] for r in c["spend_by_category"]["rows"]] == ["A02", "A05"]  # the largest first
    assert by(c["spend_by_subcategory"]["rows"], "code")["A0201"]["name"] == "信息化设备"
    regions = by(c["spend_by_region"]["rows"], "code")
    assert regions["410100"]["amount"] == "9100.00" and "郑州市" in regions["410100"]["name"]
    assert regions["410200"]["amount"] == "3000.00" and "开封市" in regions["410200"]["name"]
    sme = by(c["sme_share"]["rows"], "key")
    assert (sme["sme"]["amount"], sme["sme"]["share"], sme["large"]["share"]) == ("9000.00", "74.38", "25.62")
    savings = by(c["savings"]["rows"], "kind")
    assert savings["auction"] == {
        "kind": "auction",
        "name": "反向竞价",
        "procedures": 1,
        "ceiling": "10000.00",
        "awarded": "8000.00",
        "saved": "2000.00",
        "rate": "20.00",
    }
    assert (savings["inquiry"]["procedures"], savings["inquiry"]["rate"]) == (0, None)


async def test_the_regulator_sees_its_region_with_cases_alerts_and_times(client: Any, world: World) -> None:
    await known_world(world)
    r = await client.get("/api/oversight/statistics", params=PERIOD, headers=world.h("regulator"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["region"] == "410100"  # the regulator's own region (郑州市): 开封市 left out
    assert body["summary"]["amount"] == "9100.00"
    c = body["charts"]
    assert set(c) == set(charts.PRIVATE_CHARTS)
    regions = by(c["spend_by_region"]["rows"], "code")  # a prefecture's counties
    assert set(regions) == {"410105", "410100"}
    assert regions["410105"]["amount"] == "1100.00"
    rules = by(c["cases_by_rule"]["rows"], "rule")
    assert set(rules) == {"split_purchase"} and rules["split_purchase"]["count"] == 2
    states = by(c["cases_by_status"]["rows"], "status")
    assert (states["open"]["count"], states["violation"]["count"]) == (1, 1)
    assert states["violation"]["name"] == "已关闭：认定违规"
    alerts = by(c["alerts_by_month"]["rows"], "month")
    assert (alerts["2025-07"]["above_market"], alerts["2025-07"]["abnormally_low"]) == (1, 1)
    assert alerts["2025-07"]["total"] == 2 and alerts["2025-08"]["total"] == 0
    confirm = by(c["time_to_confirm"]["rows"], "month")
    # supermarket orders only (the auction is confirmed at its award): 24 h in March; 5 h and 4.5 h in January
    assert (confirm["2025-03"]["orders"], confirm["2025-03"]["median"], confirm["2025-03"]["p90"]) == (
        1,
        "24.0",
        "24.0",
    )
    assert confirm["2025-05"]["orders"] == 0 and confirm["2025-05"]["median"] is None
    pay = by(c["time_to_pay"]["rows"], "month")
    assert (pay["2025-04"]["orders"], pay["2025-04"]["median"]) == (1, "10.0")

    # The whole province for the public; a county the regulator oversees on request.
    r = await client.get(
        "/api/oversight/statistics", params={**PERIOD, "region": "410105"}, headers=world.h("center")
    )
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["amount"] == "1100.00"
    assert set(by(r.json()["charts"]["cases_by_rule"]["rows"], "rule")) == {"split_purchase"}


@pytest.mark.parametrize("who", ["regulator", "center"])
async def test_a_city_cannot_ask_for_another_city(client: Any, world: World, who: str) -> None:
    for path in ("/api/oversight/statistics", "/api/oversight/statistics/spend_by_mode.csv"):
        r = await client.get(path, params={**PERIOD, "region": "410200"}, headers=world.h(who))
        assert_problem(r, 403, "region_out_of_scope")
        r = await client.get(path, params={**PERIOD, "region": "410000"}, headers=world.h(who))
        assert_problem(r, 403, "region_out_of_scope")  # the province is wider than the city
    await login_ok(client, who)
    r = await client.get("/oversight/dashboard", params={"region": "410200"}, headers=HTML)
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2025-12-01", "to": "2025-01-01"}, "invalid_period"),
        ({"from": "2025-13-01"}, "invalid_date"),
        ({"from": "2025-1-1"}, "invalid_date"),
        ({"to": "yesterday"}, "invalid_date"),
        ({"from": "1999-12-31", "to": "2000-01-31"}, "invalid_date"),
        ({"from": "2019-01-01", "to": "2024-01-01"}, "period_too_long"),
        ({"region": "41010"}, "invalid_region"),
        ({"region": "999999"}, "invalid_region"),
    ],
)
async def test_bad_periods_and_regions_are_refused(
    client: Any, world: World, params: dict[str, str], code: str
) -> None:
    for path, headers in (("/api/statistics", {}), ("/api/oversight/statistics", world.h("regulator"))):
        r = await client.get(path, params=params, headers=headers)
        assert_problem(r, 400, code)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["detail"])


def test_periods() -> None:
    assert default_period(date(2026, 3, 15)) == Period(date(2025, 4, 1), date(2026, 3, 15))
    assert parse_period(None, None, date(2026, 12, 31)).start == date(2026, 1, 1)
    assert parse_period("2021-01-02", "2026-01-01", date(2026, 1, 1)).start == date(2021, 1, 2)
    assert Period(date(2025, 11, 3), date(2026, 2, 1)).months() == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert [quantile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], q) for q in (0.5, 0.9, 1.0)] == [
        5.0,
        9.0,
        10.0,
    ]
    assert quantile([3.0], 0.9) == 3.0


async def test_csv_downloads(client: Any, world: World) -> None:
    await known_world(world)
    api = (await client.get("/api/oversight/statistics", params=PERIOD, headers=world.h("regulator"))).json()
    for key in charts.PRIVATE_CHARTS:
        r = await client.get(
            f"/api/oversight/statistics/{key}.csv", params=PERIOD, headers=world.h("regulator")
        )
        assert r.status_code == 200, (key, r.text)
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        assert r.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        chart = api["charts"][key]
        assert rows[0] == [c["header"] for c in chart["columns"]]
        expected = [
            ["" if row[c["key"]] is None else str(row[c["key"]]) for c in chart["columns"]]
            for row in chart["rows"]
        ]
        assert rows[1:] == expected, key
    r = await client.get("/api/statistics/spend_by_mode.csv", params=PERIOD)
    assert r.status_code == 200 and "成交金额（元）" in r.content.decode("utf-8-sig")
    for path, headers in (
        ("/api/statistics/cases_by_rule.csv", {}),  # not public
        ("/api/statistics/nothing.csv", {}),
        ("/api/statistics/spend_by_mode", {}),
        ("/api/oversight/statistics/nothing.csv", world.h("regulator")),
    ):
        assert_problem(await client.get(path, headers=headers), 404, "chart_not_found")


class Tables(HTMLParser):
    """The statistics tables of a page: key → [header cells, *rows of cells]; and the empty states."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headers: dict[str, list[str]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-chart-key"):
            self._table = a["data-chart-key"]
            self.tables[self._table] = []
        elif self._table and tag == "thead":
            self._in_head = True
        elif self._table and tag == "th" and self._in_head:
            self.headers.setdefault(self._table, []).append(a.get("data-key") or "")
        elif self._table and tag == "tr" and not self._in_head:
            self._row = []
        elif self._table and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _as_shown(key: str, v: Any) -> str:
    """An API value as its table cell shows it, thousands separators left out."""
    if v is None:
        return "—"
    return f"{v}%" if key in ("share", "rate") else str(v)


def assert_tables_equal_api(html: str, api: dict[str, Any], keys: tuple[str, ...]) -> None:
    page = Tables()
    page.feed(html)
    for key in keys:
        chart = api["charts"][key]
        assert key in page.tables, f"{key}: no table on the page"
        shown = page.headers[key]
        assert shown and set(shown) <= {c["key"] for c in chart["columns"]}
        assert len(page.tables[key]) == len(chart["rows"]), key
        for cells, row in zip(page.tables[key], chart["rows"], strict=True):
            assert [c.replace(",", "") for c in cells] == [_as_shown(k, row[k]) for k in shown], key


async def test_each_table_equals_the_api(client: Any, world: World) -> None:
    await known_world(world)
    api = (await client.get("/api/statistics", params=PERIOD)).json()
    r = await client.get("/statistics", params=PERIOD, headers=HTML)
    assert r.status_code == 200, r.text
    assert_tables_equal_api(r.text, api, charts.PUBLIC_CHARTS)
    assert 'href="/api/statistics/savings.csv?from=2025-01-01&amp;to=2025-12-31"' in r.text

    await login_ok(client, "regulator")
    api = (await client.get("/api/oversight/statistics", params=PERIOD, headers=world.h("regulator"))).json()
    r = await client.get("/oversight/dashboard", params=PERIOD, headers=HTML)
    assert r.status_code == 200, r.text
    assert_tables_equal_api(r.text, api, charts.PRIVATE_CHARTS)
    # The select offers the regulator's own region and what lies under it, nothing else.
    assert 'value="410105"' in r.text and 'value="410200"' not in r.text


async def test_empty_states(client: Any, world: World) -> None:
    r = await client.get("/statistics", params=PERIOD, headers=HTML)
    assert r.status_code == 200
    assert r.text.count(charts.NO_DEALS) == 6  # every chart of deals says there were none
    assert "所选期间和地区内没有成交的询价或竞价项目" in r.text
    assert "data-chart-key" not in r.text
    body = (await client.get("/api/statistics", params=PERIOD)).json()
    assert body["summary"]["deals"] == 0 and body["summary"]["sme_share"] is None
