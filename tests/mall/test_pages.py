"""The server-rendered pages: the login form with its CSRF token, every page of every role, and the
buying flow through the forms (refusals come back as a Chinese message and change nothing)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest

from mall import orders
from mall.budgets.models import BudgetLine
from mall.ledger import disclosure
from tests.factories import PASSWORD, World

HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
TEMPLATE_ERROR_MARKERS = (
    "Traceback",
    "jinja2",
    "UndefinedError",
    "TemplateSyntaxError",
    "TemplateNotFound",
    "Internal Server Error",
    "服务器出现内部错误",
    "internal_error",
    "<function ",  # a name in the page's context that shadows a global of the layout (region_name)
    "&lt;function ",
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def has_chinese(text: str, at_least: int = 10) -> bool:
    return len(CJK.findall(text)) >= at_least


def assert_page(r: Any, status: int = 200) -> str:
    assert r.status_code == status, (r.url, r.status_code, r.text[-2000:])
    assert r.headers["content-type"].startswith("text/html"), (r.url, r.headers["content-type"])
    text = str(r.text)
    assert text.lstrip().lower().startswith("<!doctype html"), (r.url, text[:300])
    assert has_chinese(text), (r.url, text[:500])
    for marker in TEMPLATE_ERROR_MARKERS:
        assert marker not in text, (r.url, marker)
    return text


def csrf(client: Any) -> str:
    token = client.cookies.get("mall_csrf")
    assert token, "no CSRF cookie (GET a page first)"
    return str(token)


async def post_form(client: Any, path: str, data: dict[str, str], referer: str | None = None) -> Any:
    headers = {**HTML, **({"Referer": f"http://testserver.local{referer}"} if referer else {})}
    return await client.post(
        path, data={**data, "_csrf_token": csrf(client)}, headers=headers, follow_redirects=False
    )


async def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    client.cookies.clear()
    r = await client.get("/login", headers=HTML)
    assert_page(r)
    return await client.post(
        "/login",
        data={"username": username, "password": password, "_csrf_token": csrf(client)},
        headers=HTML,
        follow_redirects=False,
    )


async def login_ok(client: Any, username: str) -> str:
    r = await login(client, username)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


async def place_order(client: Any, world: World, listing: str = "laptop", quantity: str = "1") -> uuid.UUID:
    body = {
        "budget_line_id": str(world.lines["a1"].id),
        "items": [{"listing_id": str(world.listings[listing].id), "quantity": quantity}],
    }
    r = await client.post(
        "/api/checkout", json=body, headers={**world.h("buyer_a"), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["orders"][0]["id"])


async def budget_a1(world: World) -> BudgetLine:
    async with world.db.read() as s:
        line = await s.get(BudgetLine, world.lines["a1"].id)
        assert line is not None
        return line


async def order_status(client: Any, world: World, oid: uuid.UUID | str) -> str:
    r = await client.get(f"/api/orders/{oid}", headers=world.h("buyer_a"))
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


# ---------------------------------------------------------------- login


async def test_login_form_with_csrf(client: Any, world: World) -> None:
    r = await client.get("/login", headers=HTML)
    text = assert_page(r)
    assert "登录" in text
    token = csrf(client)
    # The form carries the token in the field the CSRF middleware checks.
    assert re.search(r'name="_csrf_token" value="' + re.escape(token) + '"', text)

    # Without the token: refused with 403, an HTML page, not a crash; nobody is logged in.
    r = await client.post(
        "/login", data={"username": "buyer_a", "password": PASSWORD}, headers=HTML, follow_redirects=False
    )
    assert_page(r, 403)
    assert "mall_session" not in client.cookies
    # A token that does not match the cookie is refused the same way.
    r = await client.post(
        "/login",
        data={"username": "buyer_a", "password": PASSWORD, "_csrf_token": "0" * 128},
        headers=HTML,
        follow_redirects=False,
    )
    assert_page(r, 403)

    # A wrong password: 401, the form again, with the Chinese message and the username kept.
    r = await client.post(
        "/login",
        data={"username": "buyer_a", "password": "wrong", "_csrf_token": token},
        headers=HTML,
        follow_redirects=False,
    )
    text = assert_page(r, 401)
    assert "用户名或密码错误" in text
    assert 'value="buyer_a"' in text
    assert "mall_session" not in client.cookies

    # The right one: 303 to the role's start page, and the session cookie works.
    r = await client.post(
        "/login",
        data={"username": "buyer_a", "password": PASSWORD, "_csrf_token": token},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/workbench"
    text = assert_page(await client.get("/workbench", headers=HTML))
    assert "欢迎，buyer_a（甲单位）" in text  # the flash message
    assert "甲单位" in text and "退出" in text

    # The token also travels in the x-csrftoken header (used by scripts on the pages).
    r = await client.post("/logout", headers={**HTML, "x-csrftoken": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert_page(await client.get("/cart", headers=HTML, follow_redirects=False), 401)


async def test_csrf_failure_says_the_form_expired(client: Any, world: World) -> None:
    await client.get("/login", headers=HTML)
    r = await client.post(
        "/login", data={"username": "buyer_a", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403
    assert r.json()["code"] == "csrf_failed"


@pytest.mark.parametrize(
    ("username", "start"),
    [
        ("buyer_a", "/workbench"),
        ("supplier_x", "/workbench"),
        ("center", "/workbench"),
        ("regulator", "/workbench"),
        ("sysadmin", "/admin"),
        ("secadmin", "/security"),
        ("auditor", "/audit"),
    ],
)
async def test_login_lands_on_the_roles_start_page(
    client: Any, world: World, username: str, start: str
) -> None:
    assert await login_ok(client, username) == start
    assert_page(await client.get(start, headers=HTML))


async def test_login_next_must_be_local(client: Any, world: World) -> None:
    await client.get("/login", headers=HTML)
    for nxt, expected in [
        ("/budgets", "/budgets"),
        ("//evil.example/x", "/workbench"),
        ("https://evil.example/", "/workbench"),
    ]:
        r = await client.post(
            "/login",
            data={"username": "buyer_a", "password": PASSWORD, "next": nxt, "_csrf_token": csrf(client)},
            headers=HTML,
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == expected, (nxt, r.headers.get("location"))


# ---------------------------------------------------------------- every page of every role


@pytest.fixture
async def deal(client: Any, world: World) -> tuple[uuid.UUID, int]:
    """A confirmed order of buyer_a with supplier_x, published: (order id, disclosure seq)."""
    oid = await place_order(client, world, "laptop", "2")
    await orders.confirm(world.db, world.who["supplier_x"], oid)
    assert await disclosure.publish_pending(world.db) == 1
    seq = (await client.get("/api/disclosures")).json()["items"][0]["seq"]
    return oid, int(seq)


async def test_anonymous_pages(client: Any, world: World, deal: tuple[uuid.UUID, int]) -> None:
    oid, seq = deal
    laptop = world.listings["laptop"]
    text = assert_page(await client.get("/", headers=HTML))
    assert "阳光卖场" in text and "登录" in text
    await world.index()
    text = assert_page(await client.get("/goods", headers=HTML))
    assert laptop.name in text and "商品desk" in text
    assert "商品<em>desk</em>" in assert_page(await client.get("/goods?q=desk", headers=HTML))  # highlighted
    assert_page(
        await client.get("/goods?price_min=abc&sort=bogus&page=x", headers=HTML)
    )  # bad filters don't crash
    # A page past the results says where the last one is, and shows the first page of the same search;
    # past the reachable window too (999 × 24 results), it is told the same way.
    for page in ("5", "999"):
        text = assert_page(await client.get(f"/goods?q=desk&page={page}", headers=HTML))
        assert f"第 {page} 页超出范围：共 1 条结果，1 页" in text and "商品<em>desk</em>" in text
        assert "只能翻到" not in text
    text = assert_page(await client.get(f"/goods/{laptop.id}", headers=HTML))
    assert laptop.name in text and "甲供应商有限公司" in text
    text = assert_page(await client.get("/disclosures", headers=HTML))
    assert "甲单位" in text or "甲供应商有限公司" in text
    assert_page(await client.get("/disclosures?mode=nonsense&date_from=abc", headers=HTML))
    text = assert_page(await client.get(f"/disclosures/{seq}", headers=HTML))
    assert "甲供应商有限公司" in text
    assert re.search(r"<dt>行政区划</dt><dd>河南省[^<]* <span", text), (
        "the division by name, its code beside it"
    )
    assert_page(await client.get("/disclosures/999999", headers=HTML), 404)
    assert_page(await client.get(f"/goods/{uuid.uuid4()}", headers=HTML), 404)

    # Pages that need a login: the app answers 401 with an HTML page (it does not redirect), never 500.
    for path in [
        "/cart",
        "/orders",
        f"/orders/{oid}",
        f"/orders/{oid}/contract",
        "/budgets",
        "/oversight",
        "/supplier/listings",
    ]:
        r = await client.get(path, headers=HTML, follow_redirects=False)
        assert r.status_code == 401, (path, r.status_code)
        text = assert_page(r, 401)
        assert "请先登录" in text and 'href="/login' in text
    # The same for a form post by an anonymous caller (with a valid CSRF token).
    r = await post_form(client, "/cart/add", {"listing_id": str(laptop.id), "quantity": "1"})
    assert_page(r, 401)


async def test_unknown_path_is_404(client: Any, world: World) -> None:
    r = await client.get("/no/such/page", headers=HTML)
    assert r.status_code == 404
    assert "请求的资源不存在" in r.text
    r = await client.get("/no/such/page")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await client.get("/orders/not-a-uuid", headers=HTML)
    assert r.status_code == 404


async def test_unknown_path_gets_the_html_error_page(client: Any, world: World) -> None:
    r = await client.get("/no/such/page", headers=HTML)
    assert_page(r, 404)


async def test_buyer_pages(client: Any, world: World, deal: tuple[uuid.UUID, int]) -> None:
    oid, seq = deal
    await login_ok(client, "buyer_a")
    laptop = world.listings["laptop"]
    for path in [
        "/",
        "/goods",
        f"/goods/{laptop.id}",
        "/cart",
        "/orders",
        f"/orders/{oid}",
        f"/orders/{oid}/contract",
        "/budgets",
        "/disclosures",
        f"/disclosures/{seq}",
    ]:
        text = assert_page(await client.get(path, headers=HTML))
        assert "甲单位" in text, path  # the header shows who is logged in
    text = assert_page(await client.get("/orders", headers=HTML))
    assert "甲供应商有限公司" in text
    text = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "已确认" in text and "10,000.00" in text
    text = assert_page(await client.get("/budgets", headers=HTML))
    assert "P-a1" in text and "P-b1" not in text
    # Another role's pages are refused with 403; another unit's order does not exist.
    for path in ["/oversight", "/supplier/listings"]:
        assert_page(await client.get(path, headers=HTML, follow_redirects=False), 403)
    await login_ok(client, "buyer_b")
    assert_page(await client.get(f"/orders/{oid}", headers=HTML), 404)
    assert_page(await client.get(f"/orders/{oid}/contract", headers=HTML), 404)
    text = assert_page(await client.get("/orders", headers=HTML))
    assert "甲供应商有限公司" not in text


async def test_supplier_pages(client: Any, world: World, deal: tuple[uuid.UUID, int]) -> None:
    oid, _ = deal
    await login_ok(client, "supplier_x")
    for path in ["/orders", f"/orders/{oid}", f"/orders/{oid}/contract", "/supplier/listings", "/goods", "/"]:
        text = assert_page(await client.get(path, headers=HTML))
        assert "甲供应商有限公司" in text, path
    text = assert_page(await client.get("/supplier/listings", headers=HTML))
    assert "商品laptop" in text and "商品printer" in text and "商品desk" not in text
    for path in ["/cart", "/budgets", "/oversight"]:
        assert_page(await client.get(path, headers=HTML, follow_redirects=False), 403)
    await login_ok(client, "supplier_y")
    assert_page(await client.get(f"/orders/{oid}", headers=HTML), 404)
    text = assert_page(await client.get("/supplier/listings", headers=HTML))
    assert "商品desk" in text and "商品laptop" not in text


@pytest.mark.parametrize("who", ["regulator", "center"])
async def test_oversight_pages(client: Any, world: World, deal: tuple[uuid.UUID, int], who: str) -> None:
    oid, _ = deal
    await login_ok(client, who)
    for path in ["/oversight", "/orders", f"/orders/{oid}", f"/orders/{oid}/contract", "/disclosures", "/"]:
        assert_page(await client.get(path, headers=HTML))
    text = assert_page(await client.get("/orders", headers=HTML))
    assert "甲单位" in text and "甲供应商有限公司" in text  # all orders
    for path in ["/cart", "/budgets", "/supplier/listings"]:
        assert_page(await client.get(path, headers=HTML, follow_redirects=False), 403)


# ---------------------------------------------------------------- the flow through the forms


def _scrape(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    assert m, pattern
    return m.group(1)


async def test_buy_and_confirm_through_the_forms(client: Any, world: World) -> None:
    laptop = world.listings["laptop"]
    goods = f"/goods/{laptop.id}"
    await login_ok(client, "buyer_a")
    assert_page(await client.get(goods, headers=HTML))

    # A wrong quantity: back to the goods page with the message; the cart stays empty.
    r = await post_form(client, "/cart/add", {"listing_id": str(laptop.id), "quantity": "abc"}, referer=goods)
    assert r.status_code == 303 and r.headers["location"] == goods
    text = assert_page(await client.get(goods, headers=HTML))
    assert "数量应为正整数" in text
    assert (await client.get("/api/cart", headers=world.h("buyer_a"))).json() == []
    # A form post without the CSRF token is refused and changes nothing.
    r = await client.post(
        "/cart/add",
        data={"listing_id": str(laptop.id), "quantity": "2"},
        headers=HTML,
        follow_redirects=False,
    )
    assert_page(r, 403)
    assert (await client.get("/api/cart", headers=world.h("buyer_a"))).json() == []

    r = await post_form(client, "/cart/add", {"listing_id": str(laptop.id), "quantity": "2"}, referer=goods)
    assert r.status_code == 303 and r.headers["location"] == goods
    assert "已加入购物车" in assert_page(await client.get(goods, headers=HTML))

    cart = assert_page(await client.get("/cart", headers=HTML))
    assert laptop.name in cart and "10,000.00" in cart
    key = _scrape(r'name="checkout_key" value="([^"]+)"', cart)
    line_a1 = str(world.lines["a1"].id)
    assert f'value="{line_a1}"' in cart and str(world.lines["b1"].id) not in cart
    # No line is chosen for the buyer, and each option starts with the amount it has left.
    lines = cart.split('id="budget_line_id"', 1)[1].split("</select>", 1)[0]
    assert '<option value="">请选择本次采购使用的预算指标</option>' in lines and "selected" not in lines
    assert re.search(rf'value="{line_a1}">可用 ¥[0-9,]+\.[0-9]{{2}}', lines), lines

    # Checkout without choosing a budget line: back to the cart with a message, nothing placed.
    r = await post_form(client, "/checkout", {"budget_line_id": "", "checkout_key": key}, referer="/cart")
    assert r.status_code == 303 and r.headers["location"] == "/cart"
    assert "请选择预算指标" in assert_page(await client.get("/cart", headers=HTML))
    # Another unit's budget line: refused the same way.
    r = await post_form(
        client, "/checkout", {"budget_line_id": str(world.lines["b1"].id), "checkout_key": key}
    )
    assert r.status_code == 303 and r.headers["location"] == "/cart"
    assert "预算指标不存在" in assert_page(await client.get("/cart", headers=HTML))
    assert (await client.get("/api/orders", headers=world.h("buyer_a"))).json()["total"] == 0

    r = await post_form(
        client,
        "/checkout",
        {"budget_line_id": line_a1, "checkout_key": key, "delivery_address": "郑州市金水路1号", "note": ""},
        referer="/cart",
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    m = re.fullmatch(r"/orders/([0-9a-f-]{36})", location)
    assert m, location
    oid = m.group(1)
    text = assert_page(await client.get(location, headers=HTML))
    assert "下单成功" in text and "待供应商确认" in text
    assert (await budget_a1(world)).reserved == Decimal("10000.00")
    # The same form submitted twice (same checkout_key) makes no second order.
    r = await post_form(
        client, "/checkout", {"budget_line_id": line_a1, "checkout_key": key}, referer="/cart"
    )
    assert r.status_code == 303
    assert (await client.get("/api/orders", headers=world.h("buyer_a"))).json()["total"] == 1
    assert (await budget_a1(world)).reserved == Decimal("10000.00")

    # The supplier confirms through the order page's form.
    await login_ok(client, "supplier_x")
    page = f"/orders/{oid}"
    text = assert_page(await client.get(page, headers=HTML))
    line_id = _scrape(r'name="price_([0-9a-f-]{36})"', text)
    assert f'action="/orders/{oid}/confirm"' in text

    # At a higher price: back to the order page with the message; nothing changed.
    r = await post_form(client, f"/orders/{oid}/confirm", {f"price_{line_id}": "5000.01"}, referer=page)
    assert r.status_code == 303 and r.headers["location"] == page
    text = assert_page(await client.get(page, headers=HTML))
    assert "确认时只能降价" in text
    assert await order_status(client, world, oid) == "placed"
    assert (await budget_a1(world)).reserved == Decimal("10000.00")
    # A price that is not a number: the same.
    r = await post_form(client, f"/orders/{oid}/confirm", {f"price_{line_id}": "便宜点"}, referer=page)
    assert r.status_code == 303
    assert "单价格式不正确" in assert_page(await client.get(page, headers=HTML))
    # A negative one is told what is wrong with it, not that it is not a number.
    r = await post_form(client, f"/orders/{oid}/confirm", {f"price_{line_id}": "-5"}, referer=page)
    assert r.status_code == 303
    assert "单价须大于 0" in assert_page(await client.get(page, headers=HTML))
    assert await order_status(client, world, oid) == "placed"
    # An action that does not exist.
    r = await post_form(client, f"/orders/{oid}/explode", {}, referer=page)
    assert r.status_code == 400
    assert await order_status(client, world, oid) == "placed"

    # Confirmed at a lower price: the difference is released at once.
    r = await post_form(client, f"/orders/{oid}/confirm", {f"price_{line_id}": "4900.00"}, referer=page)
    assert r.status_code == 303 and r.headers["location"] == page
    text = assert_page(await client.get(page, headers=HTML))
    assert "订单已确认" in text and "已确认" in text
    assert await order_status(client, world, oid) == "confirmed"
    assert (await budget_a1(world)).reserved == Decimal("9800.00")

    # The buyer sees it confirmed.
    await login_ok(client, "buyer_a")
    text = assert_page(await client.get(page, headers=HTML))
    assert "已确认" in text and "9,800.00" in text


async def test_wrong_party_forms_change_nothing(client: Any, world: World) -> None:
    oid = await place_order(client, world, "laptop")
    page = f"/orders/{oid}"
    # The other supplier: the order does not exist for it.
    await login_ok(client, "supplier_y")
    r = await post_form(client, f"/orders/{oid}/confirm", {}, referer="/orders")
    assert r.status_code == 303
    assert "订单不存在" in assert_page(await client.get("/orders", headers=HTML))
    # The buyer cannot confirm its own order; the center cannot post order actions at all.
    await login_ok(client, "buyer_a")
    r = await post_form(client, f"/orders/{oid}/confirm", {}, referer=page)
    assert r.status_code == 303
    assert "只有本订单的供应商可以执行此操作" in assert_page(await client.get(page, headers=HTML))
    await login_ok(client, "center")
    assert_page(await post_form(client, f"/orders/{oid}/confirm", {}, referer=page), 403)
    # Another buyer cannot cancel it.
    await login_ok(client, "buyer_b")
    r = await post_form(client, f"/orders/{oid}/cancel", {"reason": "不需要了"}, referer="/orders")
    assert r.status_code == 303
    assert "订单不存在" in assert_page(await client.get("/orders", headers=HTML))
    assert await order_status(client, world, oid) == "placed"
    assert (await budget_a1(world)).reserved == Decimal("5000.00")


async def test_supplier_cannot_delist_another_suppliers_listing_through_the_form(
    client: Any, world: World
) -> None:
    laptop = world.listings["laptop"]
    await login_ok(client, "supplier_y")
    assert_page(await client.get("/supplier/listings", headers=HTML))
    r = await post_form(
        client, f"/supplier/listings/{laptop.id}/status", {"status": "delisted"}, referer="/supplier/listings"
    )
    assert r.status_code == 303 and r.headers["location"] == "/supplier/listings"
    assert "商品不存在" in assert_page(await client.get("/supplier/listings", headers=HTML))
    assert (await client.get(f"/api/listings/{laptop.id}")).json()["status"] == "live"
    # Its owner can.
    await login_ok(client, "supplier_x")
    r = await post_form(
        client, f"/supplier/listings/{laptop.id}/status", {"status": "delisted"}, referer="/supplier/listings"
    )
    assert r.status_code == 303
    assert "商品已下架" in assert_page(await client.get("/supplier/listings", headers=HTML))
    assert (await client.get(f"/api/listings/{laptop.id}")).status_code == 404


async def test_acceptance_has_no_preselected_score_and_refuses_none(client: Any, world: World) -> None:
    from tests.mall.test_supermarket_flow import checkout

    oid = (await checkout(client, world, [("laptop", "1")])).json()["orders"][0]["id"]
    buy, sup = world.h("buyer_a"), world.h("supplier_x")
    for path, headers, payload in [
        ("confirm", sup, None),
        ("sign", sup, None),
        ("sign", buy, None),
        ("contract", buy, None),
        ("ship", sup, {"note": "顺丰 SF1"}),
        ("receive", buy, None),
    ]:
        r = await client.post(f"/api/orders/{oid}/{path}", json=payload, headers=headers)
        assert r.status_code == 200, (path, r.text)
    await login_ok(client, "buyer_a")
    page = f"/orders/{oid}"
    text = assert_page(await client.get(page, headers=HTML))
    score = text.split('id="score"', 1)[1].split("</select>", 1)[0]
    assert '<option value="">请选择评分</option>' in score and "selected" not in score
    r = await post_form(
        client, f"/orders/{oid}/accept", {"inspectors": "王建国", "score": "", "comment": ""}, referer=page
    )
    assert r.status_code == 303
    assert "验收合格时请评价供应商" in assert_page(await client.get(page, headers=HTML))
    assert await order_status(client, world, oid) == "received"
    r = await post_form(client, f"/orders/{oid}/accept", {"score": "4", "comment": ""}, referer=page)
    assert r.status_code == 303
    assert "请填写验收人员姓名" in assert_page(await client.get(page, headers=HTML))
    r = await post_form(
        client,
        f"/orders/{oid}/accept",
        {"inspectors": "王建国\n李华", "score": "4", "comment": ""},
        referer=page,
    )
    assert r.status_code == 303
    assert await order_status(client, world, oid) == "accepted"
