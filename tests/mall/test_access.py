"""Nobody reaches what is not theirs: declared access rules, the role matrix of the API, object-level
isolation between units, and how API tokens and page sessions authenticate (and where they do not)."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from bidding import routes as bidding_routes
from catalog import agreement_pages, agreement_routes, shopping_routes
from catalog import pages as catalog_pages
from catalog import routes as catalog_routes
from mall import orders
from mall.budgets.models import BudgetLine
from mall.core import auth, clock, tokens
from mall.core.models import ApiToken
from mall.ledger import disclosure, push
from mall.orders.models import Order
from mall.site import api, export_routes, message_routes, pages, push_pages, push_routes
from mall.web.helpers import route_handlers
from tests.factories import PASSWORD, World
from tests.security.login_helpers import assert_problem

HTML = {"Accept": "text/html,application/xhtml+xml"}

# Litestar's own handlers, listed explicitly: they are not the project's and do not declare opt["roles"]
# (the static router does, it is listed because it serves files, not a project handler).
SCHEMA_PATHS = {
    "/schema",
    "/schema/swagger",
    "/schema/openapi.json",
    "/schema/{path:str}",
}
STATIC_PATHS = {"/static/{file_path:path}"}
VALID_ROLES = {"public", "user", *auth.ALL_ROLES}

ADMINISTRATORS = ("sysadmin", "secadmin", "auditor")  # 三员分立: the world has one of each
CALLERS = [
    "anonymous",
    "buyer_a",
    "supplier_x",
    "center",
    "regulator",
    *ADMINISTRATORS,
    "bad_token",
    "expired_token",
    "revoked_token",
]
ROLE_OF = {
    "buyer_a": "buyer",
    "supplier_x": "supplier",
    "center": "center",
    "regulator": "regulator",
    **{a: a for a in ADMINISTRATORS},
}


def _module_of(handler: Any) -> str:
    return str(getattr(handler.fn, "__module__", ""))


def _classify(path: str, handler: Any) -> str:
    """'project', or why a handler is Litestar's own: 'schema', 'static', 'auto-options'."""
    module = _module_of(handler)
    if path in SCHEMA_PATHS and module.startswith("litestar."):
        return "schema"
    if path in STATIC_PATHS and module.startswith("litestar."):
        return "static"
    if getattr(handler, "http_methods", None) == {"OPTIONS"} and module == "litestar.routes.http":
        return "auto-options"
    return "project"


def _handlers(app: Any) -> list[tuple[str, Any]]:
    out = []
    for route in app.routes:
        handlers = getattr(route, "route_handlers", None) or [route.route_handler]  # a WebSocketRoute has one
        out += [(route.path, h) for h in handlers]
    return out


async def _problem_or_ok(r: Any) -> str | None:
    """None if the response is acceptable as an error shape; else what is wrong."""
    if r.status_code >= 400:
        ct = r.headers.get("content-type", "")
        if not ct.startswith("application/problem+json"):
            return f"error without problem+json ({ct})"
        if not r.json().get("code"):
            return "problem without code"
    return None


# ---------------------------------------------------------------- every handler declares who may call it


async def test_every_route_handler_declares_roles(app: Any) -> None:
    skipped: dict[str, list[str]] = {"schema": [], "static": [], "auto-options": []}
    checked: list[str] = []
    problems: list[str] = []
    for path, h in _handlers(app):
        kind = _classify(path, h)
        methods = getattr(h, "http_methods", None) or {"WEBSOCKET"}
        label = f"{'/'.join(sorted(methods))} {path} ({_module_of(h)}.{h.handler_name})"
        if kind != "project":
            skipped[kind].append(label)
            continue
        checked.append(label)
        roles = h.opt.get("roles")
        if not roles or not isinstance(roles, tuple):
            problems.append(f"{label}: no opt['roles']")
        elif set(roles) - VALID_ROLES:
            problems.append(f"{label}: unknown roles {set(roles) - VALID_ROLES}")
        elif "public" in roles and len(roles) > 1:
            problems.append(f"{label}: 'public' mixed with other roles {roles}")
    print(f"\nchecked {len(checked)} project handlers; skipped (Litestar's own):")
    for kind, labels in skipped.items():
        for label in sorted(labels):
            print(f"  [{kind}] {label}")
    assert not problems, "\n".join(problems)
    # What was skipped is exactly what was named above, nothing else.
    assert {p for p, h in _handlers(app) if _classify(p, h) == "schema"} == SCHEMA_PATHS
    assert {p for p, h in _handlers(app) if _classify(p, h) == "static"} == STATIC_PATHS
    assert all(label.startswith("OPTIONS ") for label in skipped["auto-options"])
    # The static router declares its rule too (public), even though it is skipped above.
    static = [h for p, h in _handlers(app) if p in STATIC_PATHS]
    assert static and all(h.opt.get("roles") == ("public",) for h in static)
    # Every handler the project modules export is mounted (so nothing escapes this check by not being listed).
    declared = {
        getattr(h.fn, "__func__", h.fn)
        for _, h in route_handlers(
            [
                *api.ROUTES,
                *catalog_routes.ROUTES,
                *pages.ROUTES,
                *catalog_pages.ROUTES,
                *agreement_routes.ROUTES,
                *agreement_pages.ROUTES,
                *push_routes.ROUTES,
                *push_pages.ROUTES,
                *export_routes.ROUTES,
                *shopping_routes.ROUTES,
                *shopping_routes.PAGES,
                *message_routes.ROUTES,
                *message_routes.PAGES,
            ]
        )
    }
    mounted = {getattr(h.fn, "__func__", h.fn) for p, h in _handlers(app) if _classify(p, h) == "project"}
    assert declared <= mounted, declared - mounted


async def test_litestar_handlers_without_roles_are_closed_by_the_guard(client: Any, world: World) -> None:
    """The global guard refuses a handler that declares nothing: Litestar's automatic OPTIONS handlers."""
    for path in ["/api/me", "/api/orders", "/cart", "/"]:
        r = await client.options(path, headers=world.h("buyer_a"))
        assert_problem(r, 403, "forbidden")


async def test_openapi_document_is_reachable(client: Any, world: World) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200


# ---------------------------------------------------------------- the role matrix of the API


async def _token_for(world: World, who: str, *, expired: bool = False, revoked: bool = False) -> str:
    token, row = await tokens.issue_token(world.db, world.who[who], "matrix")
    values: dict[str, Any] = {}
    if expired:
        values["expires_at"] = clock.now() - timedelta(seconds=1)
    if revoked:
        values["revoked_at"] = clock.now() - timedelta(seconds=1)
    async with world.db.write() as tx:
        await tx.session.execute(update(ApiToken).where(ApiToken.id == row.id).values(**values))
    return token


async def _place(client: Any, world: World, listing: str, who: str = "buyer_a", line: str = "a1") -> str:
    body = {
        "budget_line_id": str(world.lines[line].id),
        "items": [{"listing_id": str(world.listings[listing].id), "quantity": "1"}],
    }
    r = await client.post(
        "/api/checkout", json=body, headers={**world.h(who), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["orders"][0]["id"])


async def _world_ids(client: Any, world: World) -> dict[str, str]:
    """Real ids for every path parameter of the route table, from a world with one of everything."""
    # Real ids: an order of buyer_a with supplier_x, supplier_x's listing, a published disclosure record.
    deal = await _place(client, world, "laptop")
    await orders.confirm(world.db, world.who["supplier_x"], uuid.UUID(deal))
    assert await disclosure.publish_pending(world.db) == 1
    seq = (await client.get("/api/disclosures")).json()["items"][0]["seq"]
    order_id = await _place(client, world, "printer")
    from catalog import imports

    upload = (
        "商品名称,品牌,规格型号,品目编码,计量单位,售价,参考市场价,库存\n台式机,联想,M1,A02010105,台,10,10,1\n"
    )
    from mall.core import files

    store = files.store_for(world.settings, world.db)
    batch = await imports.start_import(world.db, store, world.who["supplier_x"], "a.csv", upload.encode())
    procedure = await world.procedure(
        "inquiry", "台式计算机询价项目", ceiling="50000.00", item=("A02010105", "台式计算机", "", "5", "台")
    )
    from mall.ledger import exports

    export = await exports.start_job(world.db, world.who["center"], "csv", exports.parse_export_query({}))
    subscription, _ = await push.create(
        world.db,
        replace(world.settings, push_allowed_hosts="127.0.0.1"),  # loopback receivers must be listed
        world.who["center"],
        name="接收",
        url="http://127.0.0.1:9/hook",
    )
    from catalog import designated as dd

    agreement = await world.agreement("打印机协议供货", "A02021003")
    designation = await dd.apply(
        world.db,
        world.settings,
        world.who["supplier_x"],
        "C23090100",
        "410100",
        [dd.PriceItemDraft("印刷", "页", "0.20")],
    )
    _, spare_token = await tokens.issue_token(world.db, world.who["center"], "spare")
    return {
        "token_id": str(spare_token.id),
        "throttle_id": str(uuid.uuid4()),
        "export_id": str(export.id),
        "subscription_id": str(subscription.id),
        "agreement_id": str(agreement.id),
        "designation_id": str(designation.id),
        "procedure_id": str(procedure.id),
        "import_id": str(batch.id),
        "fmt": "csv",
        "order_id": order_id,
        "listing_id": str(world.listings["laptop"].id),
        "request_id": str(uuid.uuid4()),  # a price request that does not exist: roles are checked first
        "seq": str(seq),
        "org_id": str(world.who["buyer_a"].org_id),
        "user_id": str(world.who["buyer_b"].user_id),  # not a platform user: a role change is refused
        "line_id": str(world.lines["b1"].id),
        "image_id": str(uuid.uuid4()),  # no such photo: the roles are checked first
        "sheet_id": str(uuid.uuid4()),
        "claim_id": str(uuid.uuid4()),  # no such claim: the roles are checked first
        "notification_id": str(
            uuid.uuid4()
        ),  # nobody's: every caller gets 404 (tests/mall/test_notifications.py)
        "report_id": str(uuid.uuid4()),  # no such acceptance report: the roles are checked first
        "size": "thumb.jpg",
        # /api/statistics/{chart}, /api/oversight/statistics/{chart}
        "chart": "spend_by_mode.csv",
        # no such alert or case: the roles are checked first
        "alert_id": str(uuid.uuid4()),
        "case_id": str(uuid.uuid4()),
        "sanction_id": str(uuid.uuid4()),
        "n": "1",  # the first evidence file of a violation report
        "name": f"sme-report-{clock.local_date(clock.now()).year}.csv",  # /api/sme/report/{name}
    }


@pytest.mark.slow
async def test_api_role_matrix(app: Any, client: Any, world: World) -> None:
    values = await _world_ids(client, world)

    headers: dict[str, dict[str, str]] = {
        "anonymous": {},
        "bad_token": {"Authorization": "Bearer mall_" + "x" * 43},
        "expired_token": {"Authorization": f"Bearer {await _token_for(world, 'buyer_a', expired=True)}"},
        "revoked_token": {"Authorization": f"Bearer {await _token_for(world, 'sysadmin', revoked=True)}"},
        **{name: world.h(name) for name in ROLE_OF},
    }

    endpoints: list[tuple[str, str, str, tuple[str, ...]]] = []
    for path, h in _handlers(app):
        if not path.startswith("/api/") or _classify(path, h) != "project":
            continue
        for method in sorted(h.http_methods):
            concrete = re.sub(
                r"\{(\w+)(?::[^}]*)?\}", lambda m: values[m.group(1)], path
            )  # KeyError: add an id
            endpoints.append((method, path, concrete, h.opt["roles"]))
    # Logging out everywhere revokes the caller's own token: last, so the other rows keep theirs.
    endpoints.sort(key=lambda e: e[1] == "/api/auth/logout-all")
    # Every /api handler of the project modules is in the matrix.
    api_handlers = [
        h
        for paths, h in route_handlers(
            [
                *api.ROUTES,
                *catalog_routes.ROUTES,
                *bidding_routes.ROUTES,
                *agreement_routes.ROUTES,
                *push_routes.ROUTES,
                *export_routes.ROUTES,
                *shopping_routes.ROUTES,
                *message_routes.ROUTES,
            ]
        )
        if any(p.startswith("/api/") for p in paths)
    ]
    assert len(endpoints) == sum(len(h.http_methods) for h in api_handlers)

    failures: list[str] = []
    table: list[str] = []
    for method, path, concrete, roles in endpoints:
        row = []
        for caller in CALLERS:
            kwargs: dict[str, Any] = {"headers": headers[caller]}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["json"] = {}
            r = await client.request(method, concrete, **kwargs)
            row.append(f"{caller}={r.status_code}")
            if caller in ("bad_token", "expired_token", "revoked_token"):
                expected: tuple[int, str] | None = (401, "unauthenticated")
            elif "public" in roles:
                expected = None
            elif caller == "anonymous":
                expected = (401, "unauthenticated")
            elif "user" in roles or ROLE_OF[caller] in roles:
                expected = None
            else:
                expected = (403, "forbidden")
            where = f"{method} {path} as {caller} (roles {roles})"
            if expected is None:
                if r.status_code in (401, 403) or r.status_code >= 500:
                    failures.append(f"{where}: allowed caller got {r.status_code} {r.text[:200]}")
                elif (shape := await _problem_or_ok(r)) is not None:
                    failures.append(f"{where}: {shape}")
            else:
                status, code = expected
                try:
                    assert_problem(r, status, code)
                except AssertionError as exc:
                    failures.append(
                        f"{where}: expected {status} {code}, got {r.status_code} {r.text[:200]} ({exc})"
                    )
        table.append(f"{method:6} {path:45} {' '.join(row)}")
    print("\n" + "\n".join(table))
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- the pages, as the three administrators

# Page routes that end the caller's session: each is tried last, on a login of its own.
SESSION_ENDERS = {("POST", "/logout"), ("POST", "/account/logout-all")}


def _page_endpoints(app: Any, values: dict[str, str]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(method, route, concrete path, roles) of every page route (not /api, not a WebSocket)."""
    out = []
    for path, h in _handlers(app):
        methods = getattr(h, "http_methods", None)
        if path.startswith("/api/") or methods is None or _classify(path, h) != "project":
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            concrete = re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values[m.group(1)], path)
            out.append((method, path, concrete, h.opt["roles"]))
    return out


@pytest.mark.slow
async def test_page_role_matrix_of_the_three_administrators(world: World) -> None:
    """Every page route, as each of the three administrators (三员分立), through a browser's session:
    what the route does not name them for is a 403 error page, and what it does is served (a public
    route may still refuse for reasons of its own: a login without a password, /metrics from afar)."""
    from tests.security.login_helpers import client_from, login_form, post_form, served

    async def call(c: Any, method: str, concrete: str) -> Any:
        if method == "GET":
            return await c.get(concrete, headers=HTML, follow_redirects=False)
        return await post_form(c, concrete, {})

    failures: list[str] = []
    table: list[str] = []
    async with served(world.settings) as app:
        async with client_from(app, "198.51.100.89") as c:
            values = {**await _world_ids(c, world), "action": "confirm"}
        endpoints = _page_endpoints(app, values)
        assert len(endpoints) > 50, len(endpoints)
        for n, role in enumerate(ADMINISTRATORS):
            async with client_from(app, f"198.51.100.{90 + n}") as c:
                assert (await login_form(c, role, PASSWORD)).status_code == 303
                for method, path, concrete, roles in endpoints:
                    if (method, path) in SESSION_ENDERS:
                        continue
                    r = await call(c, method, concrete)
                    table.append(f"{role:8} {method:5} {path:55} {r.status_code}")
                    where = f"{method} {path} as {role} (roles {roles})"
                    if r.status_code >= 500 and r.status_code != 503:  # 503: /healthz without a worker
                        failures.append(f"{where}: {r.status_code} {r.text[:200]}")
                    elif "public" in roles:
                        continue
                    elif role in roles or "user" in roles:
                        if r.status_code in (401, 403):
                            failures.append(f"{where}: allowed, got {r.status_code} {r.text[:200]}")
                    elif r.status_code != 403 or not r.headers["content-type"].startswith("text/html"):
                        failures.append(f"{where}: expected the 403 page, got {r.status_code}")
            for method, path in sorted(SESSION_ENDERS):
                async with client_from(app, f"198.51.100.{90 + n}") as c:
                    assert (await login_form(c, role, PASSWORD)).status_code == 303
                    r = await call(c, method, path)
                    if r.status_code != 303:
                        failures.append(f"{method} {path} as {role}: {r.status_code}")
    print("\n" + "\n".join(table))
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- object-level isolation


# What a buyer, and what a supplier, might do to an order: on another's order each is refused as 404.
BUYER_ACTIONS: list[tuple[str, Any]] = [
    ("cancel", {"reason": "不要了吧"}),
    ("cancel-request", {"reason": "不要了吧"}),
    ("cancel-answer", {"agree": True}),
    ("sign", None),
    ("contract", None),
    ("receive", None),
    ("accept", {"inspectors": ["王建国"], "score": 5}),
    ("pay", {"voucher_no": "ZF-1001", "amount": "1.00"}),
    ("invoices/confirm", {"invoice_id": str(uuid.UUID(int=1))}),
    ("invoices/reject", {"invoice_id": str(uuid.UUID(int=1)), "reason": "金额不符"}),
]
SUPPLIER_ACTIONS: list[tuple[str, Any]] = [
    ("confirm", None),
    ("confirm", {"prices": {}}),
    ("decline", {"reason": "无货可供"}),
    ("sign", None),
    ("ship", {"note": "SF"}),
    ("invoices", {"invoice_no": "26412000000012345678", "amount": "1.00", "issued_on": "2026-12-01"}),
    ("cancel-request", {"reason": "无货可供"}),
]


async def assert_order_hidden(
    client: Any, oid: str, h: dict[str, str], actions: list[tuple[str, Any]]
) -> None:
    """For the caller of headers `h` the order does not exist: not shown, not listed, no action on it."""
    assert_problem(await client.get(f"/api/orders/{oid}", headers=h), 404, "order_not_found")
    assert_problem(await client.get(f"/api/orders/{oid}/events", headers=h), 404, "order_not_found")
    r = await client.get("/api/orders", headers=h)
    assert r.status_code == 200 and r.json()["total"] == 0 and oid not in [o["id"] for o in r.json()["items"]]
    for action, body in actions:
        r = await client.post(f"/api/orders/{oid}/{action}", json=body, headers=h)
        assert_problem(r, 404, "order_not_found")


async def test_buyer_cannot_see_or_touch_another_units_order(client: Any, world: World) -> None:
    oid = await _place(client, world, "laptop")
    await assert_order_hidden(client, oid, world.h("buyer_b"), BUYER_ACTIONS)
    # The owner still sees it, untouched.
    r = await client.get(f"/api/orders/{oid}", headers=world.h("buyer_a"))
    assert r.status_code == 200 and r.json()["status"] == "placed"
    events = (await client.get(f"/api/orders/{oid}/events", headers=world.h("buyer_a"))).json()
    assert [e["action"] for e in events] == ["placed"]


async def test_supplier_cannot_see_or_confirm_another_suppliers_order(client: Any, world: World) -> None:
    oid = await _place(client, world, "laptop")
    await assert_order_hidden(client, oid, world.h("supplier_y"), SUPPLIER_ACTIONS)
    # supplier_x sees it in its list and can confirm it.
    r = await client.get("/api/orders", headers=world.h("supplier_x"))
    assert [o["id"] for o in r.json()["items"]] == [oid]
    r = await client.post(f"/api/orders/{oid}/confirm", headers=world.h("supplier_x"))
    assert r.status_code == 200 and r.json()["status"] == "confirmed"


async def test_supplier_cannot_delist_another_suppliers_listing(client: Any, world: World) -> None:
    laptop = str(world.listings["laptop"].id)
    y, x = world.h("supplier_y"), world.h("supplier_x")
    assert_problem(await client.post(f"/api/listings/{laptop}/delist", headers=y), 404, "listing_not_found")
    assert_problem(await client.post(f"/api/listings/{laptop}/relist", headers=y), 404, "listing_not_found")
    assert (await client.get(f"/api/listings/{laptop}")).json()["status"] == "live"
    mine = (await client.get("/api/supplier/listings", headers=y)).json()
    assert mine["total"] == 1
    assert [i["id"] for i in mine["items"]] == [str(world.listings["desk"].id)]
    x_ids = {str(world.listings["laptop"].id), str(world.listings["printer"].id)}
    assert not x_ids & {i["id"] for i in mine["items"]}
    theirs = (await client.get("/api/supplier/listings", headers=x)).json()
    assert {i["id"] for i in theirs["items"]} == x_ids
    # The owner can delist it, and then it is gone from the public catalogue.
    r = await client.post(f"/api/listings/{laptop}/delist", headers=x)
    assert r.status_code == 200 and r.json()["status"] == "delisted"
    assert_problem(await client.get(f"/api/listings/{laptop}"), 404, "listing_not_found")


async def test_buyer_cannot_use_another_units_budget_or_cart(client: Any, world: World) -> None:
    b = world.h("buyer_b")
    body = {
        "budget_line_id": str(world.lines["a1"].id),
        "items": [{"listing_id": str(world.listings["desk"].id), "quantity": "1"}],
    }
    r = await client.post("/api/checkout", json=body, headers={**b, "Idempotency-Key": uuid.uuid4().hex})
    assert_problem(r, 404, "budget_line_not_found")
    async with world.db.read() as s:
        a1 = await s.get(BudgetLine, world.lines["a1"].id)
        assert a1 is not None and a1.reserved == Decimal(0) and a1.consumed == Decimal(0)
        assert (await s.execute(Order.__table__.select())).first() is None
    budgets_b = (await client.get("/api/budgets", headers=b)).json()
    assert [x["id"] for x in budgets_b] == [str(world.lines["b1"].id)]
    # Carts are per user: buyer_a's cart is neither visible nor editable by buyer_b.
    a = world.h("buyer_a")
    desk = str(world.listings["desk"].id)
    r = await client.post("/api/cart/items", json={"listing_id": desk, "quantity": "2"}, headers=a)
    assert r.status_code == 204
    assert (await client.get("/api/cart", headers=b)).json() == []
    assert_problem(
        await client.put(f"/api/cart/items/{desk}", json={"quantity": "9"}, headers=b),
        404,
        "cart_item_not_found",
    )
    assert [x["quantity"] for x in (await client.get("/api/cart", headers=a)).json()] == ["2"]


async def test_center_and_regulator_read_everything_but_only_the_regulator_voids(
    client: Any, world: World
) -> None:
    oid = await _place(client, world, "laptop")
    other = await _place(client, world, "desk", who="buyer_b", line="b1")
    for who in ("center", "regulator"):
        h = world.h(who)
        assert (await client.get(f"/api/orders/{oid}", headers=h)).status_code == 200
        assert (await client.get(f"/api/orders/{oid}/events", headers=h)).status_code == 200
        listed = (await client.get("/api/orders", headers=h)).json()
        assert listed["total"] == 2 and {o["id"] for o in listed["items"]} == {oid, other}
    # The platform's administrators read no business records (their duties are the platform's).
    for who in ADMINISTRATORS:
        assert_problem(await client.get(f"/api/orders/{oid}", headers=world.h(who)), 404, "order_not_found")
        assert (await client.get("/api/orders", headers=world.h(who))).json()["total"] == 0
    for who in ("center", "regulator", *ADMINISTRATORS):
        assert_problem(
            await client.post(f"/api/orders/{oid}/confirm", headers=world.h(who)), 403, "forbidden"
        )
        r = await client.post(f"/api/orders/{oid}/cancel", json={"reason": "监管取消"}, headers=world.h(who))
        assert_problem(r, 403, "forbidden")
    r = await client.post(f"/api/orders/{oid}/confirm", headers=world.h("supplier_x"))
    assert r.status_code == 200
    for who in ("center", *ADMINISTRATORS, "buyer_a", "supplier_x", "buyer_b", "supplier_y"):
        r = await client.post(f"/api/orders/{oid}/void", json={"reason": "违规采购"}, headers=world.h(who))
        assert_problem(r, 403, "forbidden")
    assert (await client.get(f"/api/orders/{oid}", headers=world.h("buyer_a"))).json()[
        "status"
    ] == "confirmed"
    r = await client.post(
        f"/api/orders/{oid}/void", json={"reason": "违规采购"}, headers=world.h("regulator")
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


# ---------------------------------------------------------------- tokens and sessions


async def _login_form(client: Any, username: str, password: str = PASSWORD) -> Any:
    r = await client.get("/login", headers=HTML)
    assert r.status_code == 200
    csrf = client.cookies.get("mall_csrf")
    assert csrf
    return await client.post(
        "/login",
        data={"username": username, "password": password, "_csrf_token": csrf},
        headers=HTML,
        follow_redirects=False,
    )


async def test_token_endpoint(client: Any, world: World) -> None:
    r = await client.post("/api/auth/token", json={"username": "buyer_a", "password": "wrong-password"})
    assert_problem(r, 401, "bad_credentials")
    r = await client.post("/api/auth/token", json={"username": "nobody", "password": PASSWORD})
    assert_problem(r, 401, "bad_credentials")  # same answer: no user enumeration
    r = await client.post(
        "/api/auth/token", json={"username": "buyer_a", "password": PASSWORD, "name": "脚本"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["role"] == "buyer" and body["token"].startswith("mall_")
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["username"] == "buyer_a" and me.json()["role"] == "buyer"
    assert me.json()["org_name"] == "甲单位"
    # The scheme is case-insensitive; anything but a bearer token is anonymous.
    assert (
        await client.get("/api/me", headers={"Authorization": f"bearer {body['token']}"})
    ).status_code == 200
    assert_problem(
        await client.get("/api/me", headers={"Authorization": f"Basic {body['token']}"}),
        401,
        "unauthenticated",
    )
    # A token expires after 7 days (token_ttl_days).
    clock.clock.freeze(clock.now() + tokens.TOKEN_TTL + timedelta(seconds=1))
    try:
        r = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    finally:
        clock.clock.unfreeze()
    assert_problem(r, 401, "unauthenticated")


async def test_session_cookie_does_not_authenticate_the_api(client: Any, world: World) -> None:
    r = await _login_form(client, "buyer_a")
    assert r.status_code == 303, r.text
    assert client.cookies.get("mall_session")
    # The session works for pages ...
    assert (await client.get("/budgets", headers=HTML)).status_code == 200
    # ... and never for the API, which takes bearer tokens only (and so needs no CSRF protection).
    assert_problem(await client.get("/api/me"), 401, "unauthenticated")
    assert_problem(await client.get("/api/cart"), 401, "unauthenticated")
    r = await client.post(
        "/api/cart/items", json={"listing_id": str(world.listings["desk"].id), "quantity": "1"}
    )
    assert_problem(r, 401, "unauthenticated")
    assert (await client.get("/api/cart", headers=world.h("buyer_a"))).json() == []


async def test_logout_invalidates_a_copied_session_cookie(client: Any, world: World) -> None:
    assert (await _login_form(client, "buyer_a")).status_code == 303
    copied = client.cookies.get("mall_session")
    r = await client.post(
        "/logout", headers={**HTML, "x-csrftoken": client.cookies.get("mall_csrf")}, follow_redirects=False
    )
    assert r.status_code == 303
    assert (await client.get("/budgets", headers=HTML)).status_code == 401
    client.cookies.set("mall_session", copied)
    assert (await client.get("/budgets", headers=HTML)).status_code == 401


async def test_bearer_token_does_not_authenticate_pages(client: Any, world: World) -> None:
    r = await client.get("/budgets", headers={**HTML, **world.h("buyer_a")}, follow_redirects=False)
    assert r.status_code == 401
    r = await client.get("/budgets", headers=world.h("buyer_a"), follow_redirects=False)
    assert_problem(r, 401, "unauthenticated")
