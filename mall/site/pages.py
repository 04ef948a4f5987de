"""Server-rendered pages (Chinese). Forms post here with a CSRF token; refusals come back as a message."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from litestar import Litestar, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import BigInteger, case, func, select, type_coerce

from catalog.categories import name_of
from catalog.models import Listing, ListingStatus
from mall import accounts, budgets, cart, orders, oversight
from mall.core import auth, clock, fields, login_throttle
from mall.core.auth import PUBLIC, ROLE_LABELS, Principal, allow
from mall.core.errors import DomainError, InvalidInput
from mall.core.models import ORDER_STATUS_LABELS, ORG_KIND_LABELS, DisclosureRecord, Order, OrderStatus, User
from mall.core.money import quantity_str, yuan_display, yuan_uppercase
from mall.devtools import seed
from mall.ledger import disclosure
from mall.web.deps import DB, Config
from mall.web.helpers import (
    act,
    came_from,
    current_user,
    flash,
    keep_form,
    page_no,
    pages_of,
    pop_form,
    render,
)

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
ACTION_LABELS = {
    "placed": "下单",
    "confirmed": "确认订单",
    "cancelled": "取消",
    "cancel_requested": "申请取消",
    "cancel_refused": "拒绝取消",
    "contract_filed": "合同备案",
    "shipped": "发货",
    "received": "收货",
    "accepted": "验收",
    "paid": "付款",
}


def configure_templates(app: Litestar, settings: Config) -> None:
    env = app.template_engine.engine  # type: ignore[union-attr]
    env.globals.update(
        yuan=yuan_display,
        yuan_upper=yuan_uppercase,
        qty=quantity_str,
        local=clock.local_display,
        status_label=lambda s: ORDER_STATUS_LABELS.get(OrderStatus(s), s),
        mode_label=lambda m: disclosure.MODE_LABELS.get(m, m),
        kind_label=lambda k: disclosure.KIND_LABELS.get(k, k),
        action_label=lambda a: ACTION_LABELS.get(a, a),
        category_name=name_of,
        role_labels=ROLE_LABELS,
        limits=fields,  # the fields' maximum lengths, for the forms' maxlength
        site_name="阳光卖场",
        region_name=settings.region_name,
    )
    env.autoescape = True


# ---------------------------------------------------------------- home, login


@get("/", opt=PUBLIC, include_in_schema=False)
async def home(request: Request[Any, Any, Any], db: DB) -> Template:
    async with db.read() as s:
        recent = list(
            (
                await s.execute(select(DisclosureRecord).order_by(DisclosureRecord.seq.desc()).limit(8))
            ).scalars()
        )
        published = await s.scalar(select(func.count()).where(DisclosureRecord.kind == "deal")) or 0
        cancelled = await s.scalar(select(func.count()).where(DisclosureRecord.kind == "cancellation")) or 0
        deals = published - cancelled  # the same deals the amount below counts
        # Money columns hold 分; cancelled deals are taken off again.
        signed = case((DisclosureRecord.kind == "cancellation", -1), else_=1)
        cents = await s.scalar(
            select(func.sum(type_coerce(DisclosureRecord.total_amount, BigInteger) * signed)).where(
                DisclosureRecord.kind.in_(("deal", "cancellation"))
            )
        )
        live = await s.scalar(select(func.count()).where(Listing.status == ListingStatus.LIVE)) or 0
    total = Decimal(cents or 0) / 100
    return render(request, "home.html", recent=recent, deals=deals, amount=total, live=live)


async def _login_page(
    request: Request[Any, Any, Any], db: DB, status_code: int = 200, **ctx: Any
) -> Template:
    async with db.read() as s:
        demo = await seed.demo_loaded(s)
    return render(
        request,
        "login.html",
        status_code=status_code,
        demo_accounts=seed.demo_accounts() if demo else [],
        demo_password=seed.DEMO_PASSWORD if demo else "",
        **ctx,
    )


def _local(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@get("/login", opt=PUBLIC, include_in_schema=False)
async def login_page(request: Request[Any, Any, Any], db: DB, next: FromQuery[str] = "/") -> Template:
    return await _login_page(request, db, next=_local(next))


@post(
    "/login",
    opt=PUBLIC,
    include_in_schema=False,
    middleware=[login_throttle.LOGIN_REQUEST_LIMIT.middleware],
)
async def login(
    request: Request[Any, Any, Any], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Response[Any]:
    username, password = data.get("username", "").strip(), data.get("password", "")
    target = _local(data.get("next", "/"))
    try:
        username = fields.text(username, "用户名", fields.USERNAME_MAX, field="username")
        who = await auth.authenticate(
            db,
            username,
            password[: fields.PASSWORD_MAX + 1],
            login_throttle.client_of(request),
            exempt=login_throttle.is_exempt(request),
        )
    except DomainError as exc:
        page = await _login_page(
            request, db, status_code=exc.status, error=exc.detail, next=target, username=username
        )
        page.headers.update(getattr(exc, "headers", None) or {})
        return page

    async with db.read() as s:
        user = await s.get(User, who.user_id)
        assert user is not None
        epoch = user.session_epoch
    request.clear_session()
    request.set_session({"uid": str(who.user_id), "epoch": epoch})
    flash(request, f"欢迎，{who.display_name}（{who.org_name}）")
    if target == "/":
        target = {
            "buyer": "/goods",
            "supplier": "/orders",
            "regulator": "/oversight",
            "center": "/oversight",
        }.get(who.role, "/")
    return Redirect(target, status_code=303)


@post("/logout", opt=allow("user"), include_in_schema=False)
async def logout(request: Request[Any, Any, Any], db: DB) -> Redirect:
    """Ends every session of the user: the cookie is client-side, so its epoch is what can be revoked."""
    who = current_user(request)
    if who is not None:
        await auth.end_sessions(db, who.user_id)
    request.set_session({"flash": [["ok", "已退出登录"]]})  # a fresh session holding only the message
    return Redirect("/", status_code=303)


# ---------------------------------------------------------------- my account


@get("/account", opt=allow("user"), include_in_schema=False)
async def account_page(request: Request[Any, Any, Any], db: DB, settings: Config) -> Template:
    who = current_user(request)
    assert who
    return render(
        request,
        "account.html",
        tokens=await auth.tokens_of(db, who.user_id),
        password_min=auth.PASSWORD_MIN,
        settings=settings,
    )


@post("/account/password", opt=allow("user"), include_in_schema=False)
async def account_password(
    request: Request[Any, Any, Any], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    """Every other session ends and every token is revoked; this browser stays logged in (its user
    just proved the password) with the new epoch."""
    who = current_user(request)
    assert who
    new = data.get("new_password", "")
    try:
        if new != data.get("new_password2", ""):
            raise InvalidInput("两次输入的新密码不一致", code="password_mismatch")
        epoch = await auth.change_password(
            db,
            who,
            data.get("current_password", "")[: fields.PASSWORD_MAX + 1],
            new,
            login_throttle.client_of(request),
            exempt=login_throttle.is_exempt(request),
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        return Redirect("/account", status_code=303)
    request.clear_session()
    request.set_session({"uid": str(who.user_id), "epoch": epoch})
    flash(request, "密码已修改：其他设备上的登录已退出，所有 API 令牌已吊销")
    return Redirect("/account", status_code=303)


@post("/account/logout-all", opt=allow("user"), include_in_schema=False)
async def account_logout_all(request: Request[Any, Any, Any], db: DB) -> Redirect:
    who = current_user(request)
    assert who
    await auth.end_everywhere(db, who.user_id, login_throttle.client_of(request))
    request.set_session({"flash": [["ok", "已在所有设备上退出登录，所有 API 令牌已吊销"]]})
    return Redirect("/login", status_code=303)


@post("/account/tokens/{token_id:uuid}/revoke", opt=allow("user"), include_in_schema=False)
async def account_revoke_token(
    request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID], db: DB
) -> Redirect:
    who = current_user(request)
    assert who
    return await act(request, lambda: auth.revoke_token(db, who, token_id), "令牌已吊销", "/account")


# ---------------------------------------------------------------- cart and checkout


@get("/cart", opt=allow("buyer"), include_in_schema=False)
async def cart_page(request: Request[Any, Any, Any], db: DB, settings: Config) -> Template:
    who = current_user(request)
    assert who and who.org_id
    async with db.read() as s:
        lines = await cart.cart_of(s, who.user_id)
        lines_budget = [
            b
            for b in await budgets.lines_of(s, who.org_id)
            if b.fiscal_year == clock.local_date(clock.now()).year
        ]
    groups: dict[uuid.UUID, list[cart.CartLine]] = {}
    for line in lines:
        groups.setdefault(line.listing.supplier_org_id, []).append(line)
    totals = {sid: sum((x.amount for x in g), Decimal(0)) for sid, g in groups.items()}
    grand = sum(totals.values(), Decimal(0))
    return render(
        request,
        "cart.html",
        groups=groups,
        totals=totals,
        grand=grand,
        risen=[x for x in lines if x.price_risen],
        budget_lines=lines_budget,
        checkout_key=secrets.token_urlsafe(16),
        form=pop_form(request),
        threshold=settings.decentralized_threshold,
    )


@post("/cart/add", opt=allow("buyer"), include_in_schema=False)
async def cart_add(request: Request[Any, Any, Any], db: DB, data: URLEncodedBody[dict[str, str]]) -> Redirect:
    who = current_user(request)
    assert who
    try:
        listing_id = uuid.UUID(data.get("listing_id", ""))
    except ValueError:
        raise InvalidInput("商品编号无效", code="invalid_listing") from None
    return await act(
        request,
        lambda: cart.add_to_cart(db, who, listing_id, data.get("quantity", "1"), data.get("unit_price")),
        "已加入购物车",
        came_from(request, "/cart"),
    )


@post("/cart/accept-price", opt=allow("buyer"), include_in_schema=False)
async def cart_accept_price(
    request: Request[Any, Any, Any], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    """The buyer accepts the new price of an item whose price rose since it went into the cart."""
    who = current_user(request)
    assert who
    try:
        listing_id = uuid.UUID(data.get("listing_id", ""))
    except ValueError:
        raise InvalidInput("商品编号无效", code="invalid_listing") from None
    return await act(
        request,
        lambda: cart.accept_cart_price(db, who, listing_id, data.get("unit_price", "")),
        "已确认新价格",
        "/cart",
    )


@post("/cart/update", opt=allow("buyer"), include_in_schema=False)
async def cart_update(
    request: Request[Any, Any, Any], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    assert who
    try:
        listing_id = uuid.UUID(data.get("listing_id", ""))
    except ValueError:
        raise InvalidInput("商品编号无效", code="invalid_listing") from None
    return await act(
        request,
        lambda: cart.set_cart_quantity(db, who, listing_id, data.get("quantity", "0")),
        "购物车已更新",
        "/cart",
    )


@post("/checkout", opt=allow("buyer"), include_in_schema=False)
async def checkout(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    assert who
    try:
        line_id = uuid.UUID(data.get("budget_line_id", ""))
    except ValueError:
        flash(request, "请选择预算指标", "error")
        return Redirect("/cart", status_code=303)
    req = orders.CheckoutRequest(
        budget_line_id=line_id,
        idempotency_key=data.get("checkout_key", ""),
        delivery_address=data.get("delivery_address", ""),
        note=data.get("note", ""),
    )
    try:
        placed, _ = await orders.checkout(db, settings, who, req)
    except DomainError as exc:
        if exc.code == "idempotency_key_reused":
            flash(request, "这张购物车已经提交过，请刷新购物车页面确认后再下单", "error")
        else:
            flash(request, exc.detail, "error")
        keep_form(request, {k: data.get(k, "") for k in ("budget_line_id", "delivery_address", "note")})
        return Redirect("/cart", status_code=303)
    async with db.read() as s:
        fresh = [await orders.get_order(s, who, o.id) for o in placed]
        for warning in await oversight.split_purchase_warnings(s, settings, fresh):
            flash(request, warning, "warn")
    flash(
        request,
        f"下单成功：共 {len(placed)} 张订单，等待供应商确认（{settings.auto_cancel_days} 天内未确认将自动取消）",
    )
    if len(placed) == 1:
        return Redirect(f"/orders/{placed[0].id}", status_code=303)
    return Redirect("/orders", status_code=303)


# ---------------------------------------------------------------- orders


@get("/orders", opt=allow("user"), include_in_schema=False)
async def orders_page(
    request: Request[Any, Any, Any], db: DB, status: FromQuery[str] = "", page: FromQuery[str] = "1"
) -> Template:
    who = current_user(request)
    assert who
    st = status if status in {x.value for x in OrderStatus} else None
    p = page_no(page)
    async with db.read() as s:
        total, rows = await orders.list_orders(s, who, st, p, 20)
    return render(
        request,
        "orders.html",
        rows=rows,
        total=total,
        page=p,
        pages=pages_of(total, 20),
        status_filter=st or "",
        statuses=ORDER_STATUS_LABELS,
    )


@get("/orders/{order_id:uuid}", opt=allow("user"), include_in_schema=False)
async def order_page(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> Template:
    who = current_user(request)
    assert who
    async with db.read() as s:
        order = await orders.get_order(s, who, order_id)
        events = await orders.events_of(s, order_id)
        records = await disclosure.records_of_order(s, order.order_no)
    return render(
        request,
        "order.html",
        order=order,
        events=events,
        records=records,
        party=_party(who, order),
        pay_state=orders.payment_state(order, settings),
        settings=settings,
        form=pop_form(request),
    )


@get("/orders/{order_id:uuid}/contract", opt=allow("user"), include_in_schema=False)
async def contract_page(request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db: DB) -> Template:
    who = current_user(request)
    assert who
    async with db.read() as s:
        order = await orders.get_order(s, who, order_id)
    if not order.contract_no:
        raise InvalidInput("订单尚未确认，还没有电子合同", code="no_contract")
    return render(request, "contract.html", order=order)


def _party(who: Principal, order: Order) -> str:
    if who.role == "buyer" and who.org_id == order.buyer_org_id:
        return "buyer"
    if who.role == "supplier" and who.org_id == order.supplier_org_id:
        return "supplier"
    return who.role


@post(
    "/orders/{order_id:uuid}/{action:str}",
    opt=allow("buyer", "supplier", "regulator"),
    include_in_schema=False,
)
async def order_action(
    request: Request[Any, Any, Any],
    order_id: FromPath[uuid.UUID],
    action: FromPath[str],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    back = f"/orders/{order_id}"

    def prices() -> dict[uuid.UUID, str]:
        out = {}
        for k, v in data.items():
            if k.startswith("price_") and v.strip():
                try:
                    out[uuid.UUID(k[6:])] = v.strip()
                except ValueError:
                    raise InvalidInput("价格字段无效", code="invalid_price") from None
        return out

    def score() -> int:
        try:
            return int(data.get("score", "0"))
        except ValueError:
            return 0

    reason = data.get("reason", "")
    actions: dict[str, tuple[Callable[[], Awaitable[Any]], str]] = {
        "confirm": (
            lambda: orders.confirm(db, who, order_id, prices()),
            "订单已确认，电子合同已生成，成交记录将自动公开",
        ),
        "decline": (lambda: orders.decline(db, who, order_id, reason), "已拒绝接单，预算已释放"),
        "cancel": (lambda: orders.cancel(db, who, order_id, reason), "订单已取消，预算已释放"),
        "cancel-request": (
            lambda: orders.request_cancel(db, who, order_id, reason),
            "取消申请已提交，等待对方处理",
        ),
        "cancel-agree": (lambda: orders.answer_cancel(db, who, order_id, True), "已同意取消，订单已取消"),
        "cancel-refuse": (lambda: orders.answer_cancel(db, who, order_id, False), "已拒绝取消申请"),
        "file-contract": (lambda: orders.file_contract(db, who, order_id), "电子合同已签订备案"),
        "ship": (lambda: orders.ship(db, who, order_id, data.get("note", "")), "已发货"),
        "receive": (lambda: orders.receive(db, who, order_id), "已确认收货"),
        "accept": (lambda: orders.accept(db, who, order_id, score(), data.get("comment", "")), "验收完成"),
        "pay": (lambda: orders.pay(db, settings, who, order_id, data.get("payment_ref", "")), "付款已登记"),
        "void": (lambda: orders.void(db, who, order_id, reason), "合同已作废，将公开取消公告"),
    }
    if action not in actions:
        raise InvalidInput("不支持的操作", code="unknown_action")
    fn, ok = actions[action]
    return await act(request, fn, ok, back, keep={**data, "action": action})


# ---------------------------------------------------------------- budgets


@get("/budgets", opt=allow("buyer"), include_in_schema=False)
async def budgets_page(request: Request[Any, Any, Any], db: DB) -> Template:
    who = current_user(request)
    assert who and who.org_id
    async with db.read() as s:
        rows = await budgets.lines_of(s, who.org_id)
    return render(request, "budgets.html", rows=rows)


# ---------------------------------------------------------------- disclosure (public)


@get("/disclosures", opt=PUBLIC, include_in_schema=False)
async def disclosures_page(request: Request[Any, Any, Any], db: DB) -> Template:
    params = {k: v for k, v in request.query_params.items() if v}
    page = page_no(params.pop("page", "1"))
    try:
        q = disclosure.parse_feed_query(params)
        error = ""
    except DomainError as exc:
        q, error = disclosure.FeedQuery(), exc.detail
    async with db.read() as s:
        total, rows = await disclosure.page_desc(s, q, page, 20)
    import json

    parsed = [(r, json.loads(r.body)) for r in rows]
    qs = urlencode({k: v for k, v in params.items() if k not in ("page",)})
    return render(
        request,
        "disclosures.html",
        rows=parsed,
        total=total,
        page=page,
        pages=pages_of(total, 20),
        params=params,
        error=error,
        qs=qs,
        modes=disclosure.MODE_LABELS,
    )


@get("/disclosures/{seq:int}", opt=PUBLIC, include_in_schema=False)
async def disclosure_page(request: Request[Any, Any, Any], seq: FromPath[int], db: DB) -> Template:
    import json

    async with db.read() as s:
        row = await disclosure.get_record(s, seq)
        amended_by = list(
            (await s.execute(select(DisclosureRecord).where(DisclosureRecord.amends == row.id))).scalars()
        )
        amends = None
        if row.amends:
            amends = (
                await s.execute(select(DisclosureRecord).where(DisclosureRecord.id == row.amends))
            ).scalar_one_or_none()
    record = json.loads(row.body)
    return render(
        request,
        "disclosure.html",
        row=row,
        record=record,
        amended_by=amended_by,
        amends=amends,
        pretty=json.dumps(record, ensure_ascii=False, indent=2),
    )


# ---------------------------------------------------------------- oversight


@get("/oversight", opt=allow("regulator", "center", "admin"), include_in_schema=False)
async def oversight_page(request: Request[Any, Any, Any], db: DB, settings: Config) -> Template:
    now = clock.now()
    async with db.read() as s:
        view = await oversight.overview(s, settings, now)
    return render(
        request,
        "oversight.html",
        unpaid=[(late.order, late.days) for late in view.unpaid],
        late_paid=view.late_paid,
        counts=view.counts,
        pending=view.pending,
        split_cases=view.split_cases,
        watch=view.watch,
        overdue_reviews=view.overdue_reviews,
        unfiled=[(late.order, late.days) for late in view.unfiled],
        filing_days=oversight.CONTRACT_FILING_DAYS,
        settings=settings,
        statuses=ORDER_STATUS_LABELS,
    )


# ---------------------------------------------------------------- platform admin


@get("/admin", opt=allow("admin"), include_in_schema=False)
async def admin_page(
    request: Request[Any, Any, Any], db: DB, kind: FromQuery[str] = "", page: FromQuery[str] = "1"
) -> Template:
    p = page_no(page)
    kind = kind if kind in ORG_KIND_LABELS else ""  # a bad filter is dropped
    async with db.read() as s:
        total, orgs = await accounts.list_orgs(s, kind or None, p, 30)
        users = await accounts.users_of(s, [o.id for o in orgs])
        lines = {o.id: await budgets.lines_of(s, o.id) for o in orgs if o.kind == "budget_unit"}
        now = clock.now()
        throttles = [(t, login_throttle.retry_after(t, now)) for t in await login_throttle.in_force(s, now)]
    form = pop_form(request)
    return render(
        request,
        "admin.html",
        throttles=throttles,
        orgs=orgs,
        users=users,
        total=total,
        page=p,
        pages=pages_of(total, 30),
        kind=kind,
        kinds=ORG_KIND_LABELS,
        budget_lines=lines,
        year=clock.local_date(clock.now()).year,
        form=form,
    )


@post("/admin/organizations", opt=allow("admin"), include_in_schema=False)
async def admin_register(
    request: Request[Any, Any, Any], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    names = ("kind", "name", "credit_code", "region_code", "address", "contact_phone")
    draft = accounts.OrgDraft(**{f: (data.get(f) or "").strip() for f in names})
    try:
        org = await accounts.register_org(db, who, draft)
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, {f: getattr(draft, f) for f in names})
        return Redirect("/admin", status_code=303)
    flash(request, f"已登记：{org.name}（{org.credit_code}）")
    return Redirect("/admin", status_code=303)


@post("/admin/organizations/{org_id:uuid}/users", opt=allow("admin"), include_in_schema=False)
async def admin_create_user(
    request: Request[Any, Any, Any], org_id: FromPath[uuid.UUID], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    return await act(
        request,
        lambda: accounts.create_user(
            db, who, org_id, data.get("username", ""), data.get("display_name", ""), data.get("password", "")
        ),
        "用户已开设",
        "/admin",
        keep={**data, "org": str(org_id), "target": "users"},
    )


@post("/admin/login-throttles/{throttle_id:uuid}/clear", opt=allow("admin"), include_in_schema=False)
async def admin_clear_throttle(
    request: Request[Any, Any, Any], throttle_id: FromPath[uuid.UUID], db: DB
) -> Redirect:
    who = current_user(request)
    assert who
    return await act(
        request,
        lambda: login_throttle.clear(db, who.user_id, throttle_id, login_throttle.client_of(request)),
        "登录限制已解除",
        "/admin",
    )


@post("/admin/organizations/{org_id:uuid}/budget-lines", opt=allow("admin"), include_in_schema=False)
async def admin_add_budget_line(
    request: Request[Any, Any, Any], org_id: FromPath[uuid.UUID], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    try:
        year = int(data.get("fiscal_year", "0"))
    except ValueError:
        year = 0
    return await act(
        request,
        lambda: accounts.add_budget_line(
            db,
            who,
            org_id,
            year,
            data.get("project_code", ""),
            data.get("project_name", ""),
            data.get("amount", ""),
        ),
        "预算指标已录入",
        "/admin",
        keep={**data, "org": str(org_id), "target": "budget"},
    )


ROUTES = [
    home,
    login_page,
    login,
    logout,
    account_page,
    account_password,
    account_logout_all,
    account_revoke_token,
    cart_page,
    cart_add,
    cart_accept_price,
    cart_update,
    checkout,
    orders_page,
    order_page,
    contract_page,
    order_action,
    budgets_page,
    disclosures_page,
    disclosure_page,
    oversight_page,
    admin_page,
    admin_register,
    admin_create_user,
    admin_clear_throttle,
    admin_add_budget_line,
]
