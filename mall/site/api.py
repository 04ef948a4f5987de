"""The JSON API (/api). Bearer tokens only; every handler declares who may call it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy import select, text

from mall import accounts, budgets, cart, orders, oversight
from mall.core import auth, clock, login_throttle
from mall.core.auth import PUBLIC, Principal, allow
from mall.core.clock import rfc3339
from mall.core.errors import InvalidInput
from mall.core.models import LedgerHead, OrderStatus, Organization
from mall.core.money import money_str, quantity_str
from mall.ledger import disclosure
from mall.structs import (
    AcceptIn,
    AnswerIn,
    BudgetLineCreate,
    BudgetLineOut,
    CartAdd,
    CartLineOut,
    CartPriceIn,
    CartQuantity,
    CheckoutIn,
    CheckoutOut,
    ConfirmIn,
    EventOut,
    LoginThrottleOut,
    Me,
    OrderOut,
    OrderPage,
    OrganizationCreate,
    OrganizationOut,
    OrganizationPage,
    PasswordChange,
    PayIn,
    ReasonIn,
    ShipIn,
    TokenInfo,
    TokenOut,
    TokenRequest,
    UserCreate,
    UserOut,
    WatchedOrderOut,
    WatchedOrderPage,
)
from mall.web.deps import DB, Config
from mall.web.helpers import PageNo, PerPage, me_of
from workers import outbox, queues


@post(
    "/api/auth/token",
    opt=PUBLIC,
    status_code=201,
    tags=["账户"],
    summary="用户名密码换取 API 令牌",
    description=(
        "令牌有效期 token_ttl_days 天（默认 7 天）；每个用户至多 max_live_tokens 个有效令牌（默认 20 个），"
        "超出时自动吊销最早签发的令牌。登录失败过多时返回 429 与 Retry-After。"
    ),
    middleware=[login_throttle.LOGIN_REQUEST_LIMIT.middleware],
)
async def create_token(
    request: Request[Any, Any, Any], data: JSONBody[TokenRequest], db: DB, settings: Config
) -> TokenOut:
    ip = login_throttle.client_of(request)
    who = await auth.authenticate(
        db, data.username, data.password, ip, exempt=login_throttle.is_exempt(request)
    )
    token, row = await auth.issue_token(
        db,
        who,
        data.name or "api",
        ttl=timedelta(days=settings.token_ttl_days),
        max_live=settings.max_live_tokens,
    )
    return TokenOut(
        token=token,
        token_type="Bearer",  # noqa: S106
        expires_at=rfc3339(row.expires_at),
        role=who.role,
    )


@get("/api/auth/tokens", opt=allow("user"), tags=["账户"], summary="本人的有效 API 令牌（不含令牌本身）")
async def list_tokens(request: Request[Any, Any, Any], db: DB) -> list[TokenInfo]:
    who = me_of(request)
    return [
        TokenInfo(
            id=t.id,
            name=t.name,
            created_at=rfc3339(t.created_at),
            expires_at=rfc3339(t.expires_at),
            last_used_at=rfc3339(t.last_used_at) if t.last_used_at else None,
            current=t.id == who.token_id,
        )
        for t in await auth.tokens_of(db, who.user_id)
    ]


@delete(
    "/api/auth/tokens/{token_id:uuid}",
    opt=allow("user"),
    status_code=204,
    tags=["账户"],
    summary="吊销本人的令牌",
)
async def revoke_token(request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID], db: DB) -> None:
    await auth.revoke_token(db, me_of(request), token_id)


@post(
    "/api/auth/password",
    opt=allow("user"),
    status_code=204,
    tags=["账户"],
    summary="修改本人密码",
    description="校验当前密码后设置新密码；本人所有页面登录随即失效，所有 API 令牌（包括本次请求所用的）均被吊销，需重新获取令牌。",
)
async def change_password(request: Request[Any, Any, Any], data: JSONBody[PasswordChange], db: DB) -> None:
    await auth.change_password(
        db,
        me_of(request),
        data.current_password,
        data.new_password,
        login_throttle.client_of(request),
        exempt=login_throttle.is_exempt(request),
    )


@post(
    "/api/auth/logout-all",
    opt=allow("user"),
    status_code=204,
    tags=["账户"],
    summary="在所有设备上退出：结束本人所有页面登录并吊销所有 API 令牌（包括本次请求所用的）",
)
async def logout_all(request: Request[Any, Any, Any], db: DB) -> None:
    await auth.end_everywhere(db, me_of(request).user_id, login_throttle.client_of(request))


@get("/api/me", opt=allow("user"), tags=["账户"])
async def me(request: Request[Any, Any, Any]) -> Me:
    who = me_of(request)
    return Me(who.username, who.display_name, who.role, who.org_name, who.org_credit_code)


@get("/api/budgets", opt=allow("buyer"), tags=["预算"], summary="本单位的预算指标")
async def list_budgets(request: Request[Any, Any, Any], db: DB) -> list[BudgetLineOut]:
    who = me_of(request)
    assert who.org_id
    async with db.read() as s:
        return [BudgetLineOut.of(b) for b in await budgets.lines_of(s, who.org_id)]


@get(
    "/api/cart",
    opt=allow("buyer"),
    tags=["网上超市"],
    summary="购物车：unit_price 为现价，agreed_unit_price 为加入（或确认）时的价格",
    description="price_risen=true 表示现价高于加入购物车时的价格：须先确认新价格（POST /api/cart/items/{id}/price），否则下单返回 409 price_changed。",
)
async def get_cart(request: Request[Any, Any, Any], db: DB) -> list[CartLineOut]:
    who = me_of(request)
    async with db.read() as s:
        return [
            CartLineOut(
                c.listing.id,
                c.listing.name,
                c.listing.supplier.name,
                quantity_str(c.item.quantity),
                money_str(c.listing.price),
                money_str(c.amount),
                money_str(c.item.unit_price),
                c.price_risen,
            )
            for c in await cart.cart_of(s, who.user_id)
        ]


@post(
    "/api/cart/items",
    opt=allow("buyer"),
    status_code=204,
    tags=["网上超市"],
    summary="加入购物车（按现价；unit_price 为页面显示的价格，现价更高时 409 price_changed）",
)
async def cart_add(request: Request[Any, Any, Any], data: JSONBody[CartAdd], db: DB) -> None:
    await cart.add_to_cart(db, me_of(request), data.listing_id, str(data.quantity), data.unit_price)


@put("/api/cart/items/{listing_id:uuid}", opt=allow("buyer"), status_code=204, tags=["网上超市"])
async def cart_set(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], data: JSONBody[CartQuantity], db: DB
) -> None:
    await cart.set_cart_quantity(db, me_of(request), listing_id, str(data.quantity))


@post(
    "/api/cart/items/{listing_id:uuid}/price",
    opt=allow("buyer"),
    status_code=204,
    tags=["网上超市"],
    summary="确认购物车中商品的新价格（须等于现价，否则 409 price_changed）",
)
async def cart_accept_price(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], data: JSONBody[CartPriceIn], db: DB
) -> None:
    await cart.accept_cart_price(db, me_of(request), listing_id, data.unit_price)


@delete("/api/cart/items/{listing_id:uuid}", opt=allow("buyer"), status_code=204, tags=["网上超市"])
async def cart_remove(request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB) -> None:
    await cart.set_cart_quantity(db, me_of(request), listing_id, "0")


@post(
    "/api/checkout",
    opt=allow("buyer"),
    tags=["网上超市"],
    summary="下单：每个供应商一张订单；需 Idempotency-Key 请求头",
    description=(
        "items 为空时结算购物车。items[].unit_price 为客户端确认的单价：现价更高时整单拒绝（409 price_changed，"
        "changes 列出每种商品的 old_price 与 new_price），现价更低时按现价成交；未给出时以购物车中保存的价格为准。"
        "同一商品（品目、品牌、型号相同）不论来自几家供应商，合计须低于分散采购限额（422 purchase_above_threshold，"
        "含 total 与 limit）。以同一 Idempotency-Key 重试时返回首次下单的订单（200，replayed=true）。"
    ),
)
async def checkout(
    request: Request[Any, Any, Any],
    data: JSONBody[CheckoutIn],
    db: DB,
    settings: Config,
    idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)],
) -> Response[CheckoutOut]:
    req = orders.CheckoutRequest(
        budget_line_id=data.budget_line_id,
        idempotency_key=idempotency_key,
        items=tuple((i.listing_id, str(i.quantity)) for i in data.items),
        delivery_address=data.delivery_address,
        note=data.note,
        agreed_prices=tuple((i.listing_id, i.unit_price) for i in data.items if i.unit_price is not None),
    )
    placed, replayed = await orders.checkout(db, settings, me_of(request), req)
    async with db.read() as s:
        fresh = [await orders.get_order(s, me_of(request), o.id) for o in placed]
        warnings = await oversight.split_purchase_warnings(s, settings, fresh)
        body = CheckoutOut(replayed=replayed, orders=[OrderOut.of(o) for o in fresh], warnings=warnings)
    return Response(body, status_code=200 if replayed else 201)


@get("/api/orders", opt=allow("user"), tags=["订单"], summary="订单列表（采购人、供应商只见本单位订单）")
async def list_orders(
    request: Request[Any, Any, Any],
    db: DB,
    page: PageNo = 1,
    per_page: PerPage = 20,
    status: FromQuery[str | None] = None,
) -> OrderPage:
    if status is not None and status not in {s.value for s in OrderStatus}:
        raise InvalidInput("参数 status 不是有效的订单状态", code="invalid_parameter")
    async with db.read() as s:
        total, rows = await orders.list_orders(s, me_of(request), status, page, per_page)
        return OrderPage(total, page, per_page, [OrderOut.of(o) for o in rows])


@get("/api/orders/{order_id:uuid}", opt=allow("user"), tags=["订单"])
async def get_order(request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db: DB) -> OrderOut:
    async with db.read() as s:
        return OrderOut.of(await orders.get_order(s, me_of(request), order_id))


@get("/api/orders/{order_id:uuid}/events", opt=allow("user"), tags=["订单"], summary="订单操作记录")
async def order_events(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db: DB
) -> list[EventOut]:
    async with db.read() as s:
        await orders.get_order(s, me_of(request), order_id)
        return [EventOut.of(e) for e in await orders.events_of(s, order_id)]


async def _out(db: DB, who: Principal, order_id: FromPath[uuid.UUID]) -> OrderOut:
    async with db.read() as s:
        return OrderOut.of(await orders.get_order(s, who, order_id))


@post(
    "/api/orders/{order_id:uuid}/confirm",
    opt=allow("supplier"),
    status_code=200,
    tags=["订单"],
    summary="供应商确认订单（可降价，不可涨价）",
)
async def confirm_order(
    request: Request[Any, Any, Any],
    order_id: FromPath[uuid.UUID],
    db: DB,
    data: JSONBody[ConfirmIn | None] = None,
) -> OrderOut:
    await orders.confirm(db, me_of(request), order_id, dict(data.prices) if data else None)
    return await _out(db, me_of(request), order_id)


@post("/api/orders/{order_id:uuid}/decline", opt=allow("supplier"), status_code=200, tags=["订单"])
async def decline_order(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn], db: DB
) -> OrderOut:
    await orders.decline(db, me_of(request), order_id, data.reason)
    return await _out(db, me_of(request), order_id)


@post(
    "/api/orders/{order_id:uuid}/cancel",
    opt=allow("buyer"),
    status_code=200,
    tags=["订单"],
    summary="采购人取消未确认的订单",
)
async def cancel_order(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn], db: DB
) -> OrderOut:
    await orders.cancel(db, me_of(request), order_id, data.reason)
    return await _out(db, me_of(request), order_id)


@post(
    "/api/orders/{order_id:uuid}/cancel-request",
    opt=allow("buyer", "supplier"),
    status_code=200,
    tags=["订单"],
)
async def request_cancel(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn], db: DB
) -> OrderOut:
    await orders.request_cancel(db, me_of(request), order_id, data.reason)
    return await _out(db, me_of(request), order_id)


@post(
    "/api/orders/{order_id:uuid}/cancel-answer",
    opt=allow("buyer", "supplier"),
    status_code=200,
    tags=["订单"],
)
async def answer_cancel(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: JSONBody[AnswerIn], db: DB
) -> OrderOut:
    await orders.answer_cancel(db, me_of(request), order_id, data.agree)
    return await _out(db, me_of(request), order_id)


@post(
    "/api/orders/{order_id:uuid}/contract",
    opt=allow("buyer"),
    status_code=200,
    tags=["订单"],
    summary="采购人签订并备案电子合同",
)
async def file_contract(request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db: DB) -> OrderOut:
    await orders.file_contract(db, me_of(request), order_id)
    return await _out(db, me_of(request), order_id)


@post("/api/orders/{order_id:uuid}/ship", opt=allow("supplier"), status_code=200, tags=["订单"])
async def ship_order(
    request: Request[Any, Any, Any],
    order_id: FromPath[uuid.UUID],
    db: DB,
    data: JSONBody[ShipIn | None] = None,
) -> OrderOut:
    await orders.ship(db, me_of(request), order_id, data.note if data else "")
    return await _out(db, me_of(request), order_id)


@post("/api/orders/{order_id:uuid}/receive", opt=allow("buyer"), status_code=200, tags=["订单"])
async def receive_order(request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db: DB) -> OrderOut:
    await orders.receive(db, me_of(request), order_id)
    return await _out(db, me_of(request), order_id)


@post(
    "/api/orders/{order_id:uuid}/accept",
    opt=allow("buyer"),
    status_code=200,
    tags=["订单"],
    summary="验收并评价供应商",
)
async def accept_order(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: JSONBody[AcceptIn], db: DB
) -> OrderOut:
    await orders.accept(db, me_of(request), order_id, data.score, data.comment)
    return await _out(db, me_of(request), order_id)


@post(
    "/api/orders/{order_id:uuid}/pay", opt=allow("buyer"), status_code=200, tags=["订单"], summary="登记付款"
)
async def pay_order(
    request: Request[Any, Any, Any],
    order_id: FromPath[uuid.UUID],
    data: JSONBody[PayIn],
    db: DB,
    settings: Config,
) -> OrderOut:
    await orders.pay(db, settings, me_of(request), order_id, data.payment_ref)
    return await _out(db, me_of(request), order_id)


@post(
    "/api/orders/{order_id:uuid}/void",
    opt=allow("regulator"),
    status_code=200,
    tags=["订单"],
    summary="监管部门作废已备案合同",
)
async def void_order(
    request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn], db: DB
) -> OrderOut:
    await orders.void(db, me_of(request), order_id, data.reason)
    return await _out(db, me_of(request), order_id)


def _org_out(o: Organization) -> OrganizationOut:
    return OrganizationOut(o.id, o.kind, o.name, o.credit_code, o.region_code, o.address, o.status)


@get("/api/admin/organizations", opt=allow("admin"), tags=["平台管理"], summary="已登记的单位")
async def list_organizations(
    db: DB, page: PageNo = 1, per_page: PerPage = 20, kind: FromQuery[str | None] = None
) -> OrganizationPage:
    async with db.read() as s:
        total, rows = await accounts.list_orgs(s, kind, page, per_page)
    return OrganizationPage(total, page, per_page, [_org_out(o) for o in rows])


@post(
    "/api/admin/organizations",
    opt=allow("admin"),
    status_code=201,
    tags=["平台管理"],
    summary="登记单位（校验统一社会信用代码）",
)
async def register_organization(
    request: Request[Any, Any, Any], data: JSONBody[OrganizationCreate], db: DB
) -> OrganizationOut:
    org = await accounts.register_org(db, me_of(request), accounts.OrgDraft(**msgspec.structs.asdict(data)))
    return _org_out(org)


@post(
    "/api/admin/organizations/{org_id:uuid}/users",
    opt=allow("admin"),
    status_code=201,
    tags=["平台管理"],
    summary="为单位开设用户",
)
async def create_user(
    request: Request[Any, Any, Any], org_id: FromPath[uuid.UUID], data: JSONBody[UserCreate], db: DB
) -> UserOut:
    user = await accounts.create_user(
        db, me_of(request), org_id, data.username, data.display_name, data.password
    )
    return UserOut(user.id, user.username, user.display_name, user.org_id)


@get(
    "/api/admin/login-throttles",
    opt=allow("admin"),
    tags=["平台管理"],
    summary="生效中的登录限制（账号+地址、地址）",
)
async def list_login_throttles(db: DB) -> list[LoginThrottleOut]:
    now = clock.now()
    async with db.read() as s:
        rows = await login_throttle.in_force(s, now)
    return [
        LoginThrottleOut(
            id=r.id,
            kind=r.kind,
            username=r.username,
            ip=r.ip,
            failures=r.failures,
            last_failure_at=rfc3339(r.last_failure_at),
            blocked_until=rfc3339(r.blocked_until) if r.blocked_until else None,
            retry_after=login_throttle.retry_after(r, now),
        )
        for r in rows
    ]


@delete(
    "/api/admin/login-throttles/{throttle_id:uuid}",
    opt=allow("admin"),
    status_code=204,
    tags=["平台管理"],
    summary="解除一条登录限制（记入审计日志）",
)
async def clear_login_throttle(
    request: Request[Any, Any, Any], throttle_id: FromPath[uuid.UUID], db: DB
) -> None:
    await login_throttle.clear(db, me_of(request).user_id, throttle_id, login_throttle.client_of(request))


@post(
    "/api/admin/organizations/{org_id:uuid}/budget-lines",
    opt=allow("admin"),
    status_code=201,
    tags=["平台管理"],
    summary="为预算单位录入预算指标",
)
async def add_budget_line(
    request: Request[Any, Any, Any], org_id: FromPath[uuid.UUID], data: JSONBody[BudgetLineCreate], db: DB
) -> BudgetLineOut:
    line = await accounts.add_budget_line(
        db, me_of(request), org_id, data.fiscal_year, data.project_code, data.project_name, data.amount
    )
    return BudgetLineOut.of(line)


@get("/api/disclosures", opt=PUBLIC, tags=["信息公开"], summary="成交记录公开数据（按 seq 增量拉取）")
async def feed(
    request: Request[Any, Any, Any],
    db: DB,
    # Declared for the API documentation; parse_feed_query validates them with Chinese messages.
    after: Annotated[str | None, QueryParameter(description="上次返回的 next_after；从 0 开始")] = None,
    limit: Annotated[str | None, QueryParameter(description="每页条数，1–500，默认 100")] = None,
    mode: Annotated[
        str | None, QueryParameter(description="supermarket | agreement | designated | inquiry | auction")
    ] = None,
    kind: Annotated[
        str | None, QueryParameter(description="deal | correction | cancellation | failure")
    ] = None,
    buyer_credit_code: Annotated[str | None, QueryParameter(description="采购人统一社会信用代码")] = None,
    supplier_credit_code: Annotated[str | None, QueryParameter(description="供应商统一社会信用代码")] = None,
    date_from: Annotated[
        str | None, QueryParameter(name="from", description="成交日期起，YYYY-MM-DD")
    ] = None,
    date_to: Annotated[str | None, QueryParameter(name="to", description="成交日期止，YYYY-MM-DD")] = None,
) -> Response[bytes]:
    q = disclosure.parse_feed_query(dict(request.query_params))
    async with db.read() as s:
        bodies, next_after = await disclosure.feed_page(s, q)
    payload = '{"items":[' + ",".join(bodies) + '],"next_after":' + str(next_after) + "}"
    return Response(payload.encode("utf-8"), media_type="application/json")


@get("/api/disclosures/{seq:int}", opt=PUBLIC, tags=["信息公开"])
async def feed_record(seq: FromPath[int], db: DB) -> Response[bytes]:
    async with db.read() as s:
        row = await disclosure.get_record(s, seq)
    return Response(row.body.encode("utf-8"), media_type="application/json")


@get("/healthz", opt=PUBLIC, tags=["运维"], summary="数据库、Redis、任务进程与搜索的状态")
async def healthz(request: Request[Any, Any, Any], db: DB, settings: Config) -> Response[dict[str, Any]]:
    import asyncio

    status: dict[str, Any] = {}
    try:
        async with db.read() as s:
            await s.execute(text("SELECT 1"))

            head = (await s.execute(select(LedgerHead.last_seq))).scalar_one()
        status["database"] = {
            "ok": True,
            "backend": "sqlite" if db.is_sqlite else "postgresql",
            "ledger_seq": head,
            "outbox_pending": await outbox.pending_count(db),
        }
    except Exception as exc:
        status["database"] = {"ok": False, "error": type(exc).__name__}

    def redis_status() -> dict[str, Any]:
        from rq import Worker

        conn = queues.redis_conn(settings)
        conn.ping()
        workers = Worker.all(connection=conn)
        return {"ok": True, "workers": len(workers), "queued": queues.queue(settings).count}

    try:
        info = await asyncio.to_thread(redis_status)
        status["redis"] = {"ok": True, "embedded": settings.uses_embedded_redis}
        status["worker"] = {"ok": info["workers"] > 0, "count": info["workers"], "queued": info["queued"]}
    except Exception as exc:
        status["redis"] = {"ok": False, "error": type(exc).__name__}
        status["worker"] = {"ok": False, "error": "redis unavailable"}
    try:
        search = request.app.state.search
        docs = await asyncio.wait_for(asyncio.to_thread(search.count), 2.0)
        status["search"] = {"ok": True, "backend": search.name, "documents": docs}
    except Exception as exc:
        status["search"] = {
            "ok": False,
            "backend": (settings.meili_url and "meilisearch") or "embedded",
            "error": type(exc).__name__,
        }
    ok = all(v.get("ok") for v in status.values())
    return Response({"ok": ok, **status}, status_code=200 if ok else 503)


# ---------------------------------------------------------------- oversight (the regulator's watch lists)

WATCHERS = allow("regulator", "admin")


@get(
    "/api/oversight/unpaid-orders",
    opt=WATCHERS,
    tags=["监管"],
    summary="验收后超期未付款的中小企业订单（等待最久的在前）",
)
async def oversight_unpaid(
    db: DB, settings: Config, page: PageNo = 1, per_page: PerPage = 20
) -> WatchedOrderPage:
    now = clock.now()
    async with db.read() as s:
        total = await oversight.unpaid_count(s, settings, now)
        rows = await oversight.unpaid_orders(s, settings, now, limit=per_page, offset=(page - 1) * per_page)
        return WatchedOrderPage(total, page, per_page, [WatchedOrderOut.of(r.order, r.days) for r in rows])


@get("/api/oversight/late-payments", opt=WATCHERS, tags=["监管"], summary="逾期付款记录（最近付款的在前）")
async def oversight_late_payments(db: DB, page: PageNo = 1, per_page: PerPage = 20) -> WatchedOrderPage:
    async with db.read() as s:
        total = await oversight.late_payment_count(s)
        rows = await oversight.late_payments(s, limit=per_page, offset=(page - 1) * per_page)
        return WatchedOrderPage(total, page, per_page, [WatchedOrderOut.of(o) for o in rows])


@get(
    "/api/oversight/unfiled-contracts",
    opt=WATCHERS,
    tags=["监管"],
    summary="确认后超期未备案合同的订单（最早确认的在前）",
)
async def oversight_unfiled(db: DB, page: PageNo = 1, per_page: PerPage = 20) -> WatchedOrderPage:
    now = clock.now()
    async with db.read() as s:
        total = await oversight.unfiled_count(s, now)
        rows = await oversight.unfiled_contracts(s, now, limit=per_page, offset=(page - 1) * per_page)
        return WatchedOrderPage(total, page, per_page, [WatchedOrderOut.of(r.order, r.days) for r in rows])


ROUTES = [
    create_token,
    list_tokens,
    revoke_token,
    change_password,
    logout_all,
    me,
    list_budgets,
    get_cart,
    cart_add,
    cart_set,
    cart_accept_price,
    cart_remove,
    checkout,
    list_orders,
    get_order,
    order_events,
    confirm_order,
    decline_order,
    cancel_order,
    request_cancel,
    answer_cancel,
    file_contract,
    ship_order,
    receive_order,
    accept_order,
    pay_order,
    void_order,
    list_organizations,
    register_organization,
    create_user,
    list_login_throttles,
    clear_login_throttle,
    add_budget_line,
    feed,
    feed_record,
    healthz,
    oversight_unpaid,
    oversight_late_payments,
    oversight_unfiled,
]
