"""A sealed inquiry leaks nothing on any channel, to anyone: a crawl of the whole application.

The crawl is generated, not listed: every GET route and every WebSocket route of the app's route
table (pages included), with the query parameters the OpenAPI document (API) or the handler's
signature (pages) declares, every refused write on the procedure's own routes, as every role. Path
parameters are filled from a world made through the real API; an unknown uuid parameter is tried
with every id of that world, so a route added later is crawled too. Every GET route is either
visited or on the commented skip list below, and the crawl visits at least `MIN_GET_ROUTES`.

It is differential: the crawl runs once while only supplier A has quoted and again after B and C
have quoted (45,817.37 and 45,823.91), with the clock frozen. For every role except B and C
themselves, every answer must be byte for byte the same after masking what legitimately varies
(listed in `mask`): identical output proves that neither the count, nor the order, nor the ranks,
nor any version of the quotes leaks. And no answer to anyone but the quote's own supplier contains
another supplier's amount, in any notation.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import re
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from bidding import offers
from mall.core import clock
from mall.core.models import OrgKind
from mall.core.settings import Settings
from mall.ledger import disclosure
from tests.bidding.live import Caller, caller, serve, socket_answer
from tests.factories import World, frozen_at

# The app has about 70 GET routes today; other parts add more. The crawl must reach at least these.
MIN_GET_ROUTES = 60
MIN_WEBSOCKET_ROUTES = 1

ROLES = [
    "anonymous",
    "buyer_a",  # the inquiry's own buyer
    "buyer_b",  # another buyer
    "qa",  # the three quoting suppliers
    "qb",
    "qc",
    "supplier_x",  # a supplier that is not invited (it has orders, listings, an import, a designation)
    "center",
    "regulator",
    "sysadmin",
    "secadmin",
    "auditor",
]
AMOUNTS = {"qa": "45791.23", "qb": "45817.37", "qc": "45823.91"}
LATE = ("qb", "qc")  # they quote between the two crawls; their own answers may change

# GET routes the crawl does not visit, and why. Everything else must be visited.
SKIP: dict[str, str] = {
    # Counters of requests and queues that change with every request of the crawl itself; it holds
    # no amounts, quotes or names: counts, ages, route templates and push subscription ids.
    "/metrics": "operational counters, different between any two crawls",
    # The audit log records every login and read of the crawl itself, so it differs between any two
    # crawls. Quotes and bids are not audit actions: tests/mall/test_audit.py checks that the log
    # (page and API) holds no amount of a sealed quote.
    "/audit": "the audit log, which records the crawl's own logins and reads",
    "/api/audit": "the audit log, which records the crawl's own logins and reads",
    "/api/audit/verify": "counts the audit log's entries, which the crawl itself adds to",
}

# Path parameters that are not ids of the world: one concrete value per (route, parameter).
FIXED = {
    ("/static/{file_path:path}", "file_path"): "room.js",
    ("/static/swagger/{file_path:path}", "file_path"): "swagger-ui.css",
    ("/schema/{path:str}", "path"): "openapi.yaml",
    ("/api/catalog/import-template/{fmt:str}", "fmt"): "csv",
    ("/images/{image_id:uuid}/{size:str}", "size"): "thumb.jpg",
    # the savings of inquiries and auctions: the chart nearest to the quotes (the JSON of every chart
    # is crawled at /api/statistics and /api/oversight/statistics)
    ("/api/statistics/{chart:str}", "chart"): "savings.csv",
    ("/api/oversight/statistics/{chart:str}", "chart"): "savings.csv",
    # a violation report's first evidence file (the report is an unknown id: report_id below)
    ("/api/sanctions/reports/{report_id:uuid}/evidence/{n:int}", "n"): "1",
    ("/sanctions/reports/{report_id:uuid}/evidence/{n:int}", "n"): "1",
    # the SME annual report's figures (the deals' totals per buyer; nothing of any quote)
    ("/api/sme/report/{name:str}", "name"): "sme-report-2026.csv",
}
# Query parameters by name; any other gets the inquiry's id (the value most likely to matter).
QUERY_VALUES = {
    "kind": "inquiry",
    "mode": "inquiry",
    "page": "1",
    "per_page": "50",
    "limit": "100",
    "after": "0",
    "q": "台式计算机",
    "status": "open",
    "sort": "newest",
    "category": "A02010105",
    "format": "csv",
}
RESERVED = {"request", "socket", "data", "scope", "state", "headers", "cookies", "query", "body"}
PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def mask(text: str) -> str:
    """What legitimately differs between two identical crawls, replaced by a placeholder:
    - CSRF tokens (a fresh masked token per rendered form);
    - nonces (a fresh one per response for the content security policy);
    - the `published_at` wall-clock stamp of room events (not sent for inquiries at all)."""
    text = re.sub(r'(name="_csrf_token"\s+value=")[^"]*', r"\1<csrf>", text)
    text = re.sub(r'(name="csrf-token"\s+content=")[^"]*', r"\1<csrf>", text)
    text = re.sub(r'(nonce=")[^"]*', r"\1<nonce>", text)
    text = re.sub(r"('nonce-)[^']*", r"\1<nonce>", text)
    return re.sub(r'("published_at":\s*")[^"]*', r"\1<now>", text)


def amount_variants(amount: str) -> list[str]:
    """Every way an amount can be written: 45817.37, 45,817.37, 4581737 (分), 45817.4, 45817, 45,817."""
    yuan, fen = amount.split(".")
    grouped = f"{int(yuan):,}"
    return [amount, f"{grouped}.{fen}", f"{yuan}{fen}", f"{yuan}.{fen[0]}", yuan, grouped]


def scrub_ids(text: str) -> str:
    """Ids and hashes are long hexadecimal runs that may contain any digits: out of the amount search."""
    text = re.sub(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>", text
    )
    return re.sub(r"[0-9a-fA-F]{16,}", "<hex>", text)


def body_text(content: bytes) -> str:
    if content[:2] == b"PK":  # a spreadsheet: compare what is inside, not the zip's own timestamps
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            return "\n".join(f"== {n}\n" + z.read(n).decode("utf-8", "replace") for n in sorted(z.namelist()))
    return content.decode("utf-8", "replace")


def routes_of(app: Any) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(GET routes, WebSocket routes) of the app's route table, as (path, handler)."""
    gets, sockets = [], []
    for route in app.routes:
        handlers = getattr(route, "route_handlers", None) or [route.route_handler]
        for h in handlers:
            methods = getattr(h, "http_methods", None)
            if methods is None:
                sockets.append((route.path, h))
            elif "GET" in methods:
                gets.append((route.path, h))
    return gets, sockets


def writes_of(app: Any) -> list[tuple[str, str]]:
    """Every write route on one procedure: (method, path)."""
    out = []
    for route in app.routes:
        for h in getattr(route, "route_handlers", None) or []:
            if "{procedure_id" not in route.path:
                continue
            for m in sorted(getattr(h, "http_methods", set()) - {"GET", "HEAD", "OPTIONS"}):
                out.append((m, route.path))
    return out


def page_query_params(path: str, handler: Any) -> list[str]:
    """The query parameters a page handler takes: its signature, less path parameters, dependencies
    and what Litestar injects."""
    names = set(inspect.signature(handler.fn).parameters)
    deps = set(handler.resolve_dependencies())
    path_params = {m.group(1) for m in PARAM.finditer(path)}
    return sorted(names - deps - path_params - RESERVED)


def openapi_query_params(schema: dict[str, Any], path: str) -> list[str] | None:
    """The query parameters the OpenAPI document names for GET `path`, or None if it is not there."""
    bare = PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
    op = schema.get("paths", {}).get(bare, {}).get("get")
    if op is None:
        return None
    return sorted(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")


class Crawl:
    def __init__(
        self, base: str, app: Any, world: World, ids: dict[str, str], schema: dict[str, Any]
    ) -> None:
        self.base, self.app, self.world, self.ids, self.schema = base, app, world, ids, schema
        self.visited: set[str] = set()
        self.unfilled: dict[str, str] = {}

    def concrete(self, path: str) -> list[str]:
        """Every concrete path for a route: known parameters from the world, an unknown uuid one
        with every id of the world; an unknown parameter of another type is reported."""
        paths = [path]
        for m in PARAM.finditer(path):
            name, kind = m.group(1), m.group(2) or "str"
            if (path, name) in FIXED:
                values = [FIXED[(path, name)]]
            elif name in self.ids:
                values = [self.ids[name]]
            elif kind == "uuid":
                values = sorted(set(self.ids["__all_ids__"].split(",")))
            else:
                self.unfilled[path] = f"no value for {{{name}:{kind}}}: add one to FIXED"
                return []
            paths = [p.replace(m.group(0), v) for p in paths for v in values]
        return paths

    def variants(self, path: str, handler: Any) -> list[str]:
        params = openapi_query_params(self.schema, path)
        if params is None:
            params = page_query_params(path, handler)
        out = []
        for concrete in self.concrete(path):
            out.append(concrete)
            for name in params:
                out.append(f"{concrete}?{name}={QUERY_VALUES.get(name, self.ids['procedure_id'])}")
        return out

    async def run(self, who: Caller) -> dict[str, str]:
        """Everything `who` gets: GET answers, WebSocket answers, answers to refused writes."""
        got: dict[str, str] = {}
        gets, sockets = routes_of(self.app)
        for path, handler in gets:
            if path in SKIP:
                continue
            for url in self.variants(path, handler):
                r = await who.get(url)
                # 503 is an honest answer (/healthz without a worker); a 500 never is
                assert r.status_code < 500 or r.status_code == 503, (
                    who.name,
                    url,
                    r.status_code,
                    r.text[:500],
                )
                got[f"GET {url}"] = (
                    f"{r.status_code} {r.headers.get('content-type', '')}\n{body_text(r.content)}"
                )
                self.visited.add(path)
        for path, _handler in sockets:
            for url in self.concrete(path):
                for origin in (self.world.settings.public_base_url, None):
                    a = await socket_answer(self.base, url, cookie=who.cookie_header, origin=origin)
                    got[f"WS {url} origin={origin}"] = repr(a)
                self.visited.add(path)
        for method, path in writes_of(self.app):
            if method == "DELETE" and who.name in AMOUNTS:
                continue  # it would withdraw the supplier's own quote: a change of state, not a refusal
            for url in self.concrete(path):
                if url.startswith("/api"):
                    r = await who.request(method, url, json={"amount": "60000.01", "unit_prices": {}})
                else:  # a page form: refused, it redirects back; the page then says why
                    form = {"amount": "60000.01", "action": "", "label_no": "1", "reason": ""}
                    r = await who.form(url, form)
                    if r.status_code == 303:
                        back = r.headers["location"].removeprefix(self.base)
                        follow = await who.get(back)
                        got[f"{method} {url} -> GET {back}"] = f"{follow.status_code}\n{follow.text}"
                assert r.status_code < 500, (who.name, method, url, r.text[:500])
                got[f"{method} {url}"] = f"{r.status_code}\n{r.text}"
        return got


async def build(base: str, world: World) -> dict[str, str]:
    """A world for the crawl, made through the API: a published deal, an open order, an import, an
    export job, a push subscription, an agreement, a designation application. A step another part of
    the mall no longer accepts leaves its parameter to a fresh id (the route still answers 404)."""
    ids: dict[str, str] = {}
    api = await caller(base, world, "buyer_a")
    sx = await caller(base, world, "supplier_x")
    center = await caller(base, world, "center")
    try:

        async def place(listing: str) -> str:
            r = await api.request(
                "POST",
                "/api/checkout",
                json={
                    "budget_line_id": str(world.lines["a1"].id),
                    "items": [{"listing_id": str(world.listings[listing].id), "quantity": "1"}],
                },
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert r.status_code == 201, r.text
            return str(r.json()["orders"][0]["id"])

        deal = await place("laptop")
        r = await sx.request("POST", f"/api/orders/{deal}/confirm", json={})
        assert r.status_code in (200, 201), r.text
        assert await disclosure.publish_pending(world.db) == 1
        ids["order_id"] = await place("printer")
        ids["seq"] = "1"
        ids["listing_id"] = str(world.listings["laptop"].id)
        steps = {
            "import_id": (
                sx,
                "/api/supplier/imports",
                {
                    "files": {
                        "file": (
                            "a.csv",
                            "商品名称,品牌,规格型号,品目编码,计量单位,售价,参考市场价,库存\n台式机,联想,M1,A02010105,台,10,10,1\n".encode(),
                            "text/csv",
                        )
                    }
                },
            ),
            "export_id": (center, "/api/exports", {"json": {"format": "csv", "filters": {}}}),
            "subscription_id": (
                center,
                "/api/subscriptions",
                {"json": {"name": "接收", "url": "https://receiver.example.com/hook"}},
            ),
            "agreement_id": (
                center,
                "/api/agreements",
                {
                    "json": {
                        "title": "打印机协议供货",
                        "kind": "goods",
                        "category_code": "A02021003",
                        "starts_on": clock.local_date(clock.now()).isoformat(),
                        "ends_on": clock.local_date(clock.now()).isoformat(),
                    }
                },
            ),
            "designation_id": (
                sx,
                "/api/designated/applications",
                {
                    "json": {
                        "category_code": "C23090100",
                        "region_code": "410100",
                        "prices": [{"name": "印刷", "unit": "页", "price": "0.20"}],
                    }
                },
            ),
        }
        for name, (who, path, kw) in steps.items():
            r = await who.request("POST", path, **kw)
            if r.status_code in (200, 201, 202) and "id" in r.json():
                ids[name] = str(r.json()["id"])
            else:
                print(f"crawl world: {path} answered {r.status_code}; {name} is a fresh id")
                ids[name] = str(uuid.uuid4())
    finally:
        for c in (api, sx, center):
            await c.aclose()
    ids["org_id"] = str(world.who["supplier_x"].org_id)
    # Ids of an order's own records (an acceptance report, an after-sales claim) and of a user's own
    # notices: one unknown id each. Their routes answer about that one record of its owner (the
    # lists that could carry a quote, /messages and /api/messages, are crawled as they are); trying
    # them with every id of the world only multiplies refusals. The same for a price alert and an
    # oversight case: the rules read procedures only once their offers are open, and the lists
    # (/api/oversight/cases, /cases, /api/oversight/price-alerts...) are crawled as they are.
    # So too a buyer's own comparison sheet (listings and their public prices, never a quote) and a
    # listing's image (pixels).
    for name in (
        "report_id",
        "claim_id",
        "notification_id",
        "alert_id",
        "case_id",
        "sheet_id",
        "image_id",
        "sanction_id",
    ):
        ids[name] = str(uuid.uuid4())
    # The buyer's budget line: its adjustments are the buyer's own; an inquiry's reservation on it
    # is at the ceiling the buyer set, never at a quote (the differential below holds it to that).
    ids["line_id"] = str(world.lines["a1"].id)
    return ids


@pytest.fixture
def frozen() -> Iterator[datetime]:
    with frozen_at(datetime.now(clock.SHANGHAI).replace(microsecond=0)) as start:
        yield start


@pytest.mark.slow
async def test_a_sealed_inquiry_leaks_nothing_on_any_channel(
    app: Any, world: World, settings: Settings, frozen: datetime
) -> None:
    quoting = {n: await world.org(n, OrgKind.SUPPLIER, f"密封供应商{n.upper()}有限公司") for n in AMOUNTS}
    p = await world.procedure("inquiry", "教学楼台式计算机询价", invited=quoting.values(), hours=2)
    await offers.quote(world.db, quoting["qa"], p.id, AMOUNTS["qa"])
    async with serve(app) as base:
        ids = await build(base, world)
        ids["procedure_id"] = str(p.id)
        pool = {
            *ids.values(),
            *(str(w.org_id) for w in world.who.values()),
            *(str(w.user_id) for w in world.who.values()),
        }
        ids["__all_ids__"] = ",".join(v for v in pool if re.fullmatch(r"[0-9a-f-]{36}", v))
        anonymous = await caller(base, None, "anonymous")
        schema = (await anonymous.get("/schema/openapi.json")).json()
        await anonymous.aclose()
        crawl = Crawl(base, app, world, ids, schema)

        async def everyone() -> dict[str, dict[str, str]]:
            callers = [await caller(base, world, name) for name in ROLES]
            try:
                results = await asyncio.gather(*(crawl.run(c) for c in callers))
            finally:
                for c in callers:
                    await c.aclose()
            return dict(zip(ROLES, results, strict=True))

        before = await everyone()
        for name in LATE:
            await offers.quote(world.db, quoting[name], p.id, AMOUNTS[name])
        after = await everyone()

    gets, sockets = routes_of(app)
    get_paths = {path for path, _ in gets}
    assert not crawl.unfilled, crawl.unfilled
    assert set(SKIP) <= get_paths, set(SKIP) - get_paths  # the skip list names only real routes
    assert get_paths - set(SKIP) <= crawl.visited, get_paths - set(SKIP) - crawl.visited
    visited_gets = len(crawl.visited & get_paths)
    visited_sockets = len(crawl.visited & {path for path, _ in sockets})
    requests = sum(len(v) for v in after.values())
    print(
        f"\ncrawled {visited_gets} GET routes, {visited_sockets} WebSocket routes, {requests} answers per crawl"
    )
    assert visited_gets >= MIN_GET_ROUTES and visited_sockets >= MIN_WEBSOCKET_ROUTES

    # differential: the same answers before and after B and C quoted, for everyone but B and C
    changed = []
    for role in ROLES:
        if role in LATE:
            continue
        assert before[role].keys() == after[role].keys(), role
        for key, answer in before[role].items():
            if mask(answer) != mask(after[role][key]):
                changed.append(
                    f"{role}: {key}\n  before: {mask(answer)[:400]}\n  after:  {mask(after[role][key])[:400]}"
                )
    assert not changed, "answers changed when others quoted:\n" + "\n".join(changed[:20])

    # and no one but the quote's own supplier reads its amount, in any notation
    found = []
    for role, answers in after.items():
        for owner, amount in AMOUNTS.items():
            if owner == role:
                continue
            for key, answer in answers.items():
                text = scrub_ids(mask(answer))
                hits = [v for v in amount_variants(amount) if v in text]
                if hits:
                    found.append(f"{role} reads {owner}'s {amount} as {hits} in {key}")
    assert not found, "\n".join(found[:20])
