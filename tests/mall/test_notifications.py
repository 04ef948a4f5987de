"""Notifications (消息中心): staged through the outbox in the transaction of the business change,
turned into one row per recipient by the worker (none lost, none twice), read and marked in the
message centre (API and page) by their owner only, counted in every page's header, and mailed
through a real SMTP server (aiosmtpd) at least once with a stable Message-ID."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mall import orders
from mall.core import clock
from mall.core.models import Outbox, OutboxStatus
from mall.notify import deliver, mail, prefs, scans
from mall.notify import orders as order_notices
from mall.notify.models import Kind, MailState, Notification
from mall.notify.stage import TOPIC, for_org, stage
from mall.orders.models import Order, OrderStatus
from tests.factories import PASSWORD, World, frozen_at
from tests.security.login_helpers import assert_problem, client_from, flashes, login_form, post_form

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def _place(client: Any, world: World, listing: str = "laptop") -> str:
    body = {
        "budget_line_id": str(world.lines["a1"].id),
        "items": [{"listing_id": str(world.listings[listing].id), "quantity": "1"}],
    }
    r = await client.post(
        "/api/checkout", json=body, headers={**world.h("buyer_a"), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["orders"][0]["id"])


async def _checkout(world: World, listing: str = "laptop") -> str:
    """An order of buyer_a through the service (for tests that drive the pages, not the API client)."""
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings[listing].id, "1"),)),
    )
    return str(placed[0].id)


async def _inbox(world: World, who: str) -> list[Notification]:
    async with world.db.read() as s:
        rows = await s.execute(
            select(Notification)
            .where(Notification.user_id == world.who[who].user_id)
            .order_by(Notification.created_at, Notification.id)
        )
        return list(rows.scalars())


async def _pending_rows(world: World) -> int:
    async with world.db.read() as s:
        return (
            await s.scalar(
                select(func.count()).where(Outbox.topic == TOPIC, Outbox.status == OutboxStatus.PENDING)
            )
            or 0
        )


async def _drain(world: World, pushing: bool = False) -> int:
    total = 0
    while n := await deliver.deliver_pending(world.db, pushing=pushing):
        total += n
    return total


# ---------------------------------------------------------------- outbox → message centre


async def test_an_order_step_reaches_the_party_that_acts_next_once(client: Any, world: World) -> None:
    await _drain(world)  # whatever building the world staged
    oid = await _place(client, world)
    # Staged in the order's own transaction; nothing is in the message centre before the worker runs.
    assert await _pending_rows(world) == 1
    assert await _inbox(world, "supplier_x") == []
    assert await _drain(world) == 1
    [n] = await _inbox(world, "supplier_x")
    assert n.kind == Kind.ORDER_TO_CONFIRM and n.link == f"/orders/{oid}" and n.read_at is None
    async with world.db.read() as s:
        order = await s.get(Order, uuid.UUID(oid))
        assert order is not None
    assert clock.local_display(order.confirm_due_at) in n.body  # the auto-cancel date
    assert "自动取消" in n.body
    assert await _inbox(world, "buyer_a") == [] and await _inbox(world, "supplier_y") == []

    # The job runs again, and even the same outbox row twice (a worker died before it recorded
    # the row as done): nothing is added.
    assert await _drain(world) == 0
    async with world.db.write() as tx:
        await tx.session.execute(
            update(Outbox).where(Outbox.topic == TOPIC).values(status=OutboxStatus.PENDING)
        )
    assert await deliver.deliver_pending(world.db) >= 1
    assert [x.id for x in await _inbox(world, "supplier_x")] == [n.id]

    # Two jobs at once deliver it once too.
    oid2 = await _place(client, world, "printer")
    results = await asyncio.gather(*(deliver.deliver_pending(world.db) for _ in range(3)))
    assert sum(results) >= 1
    second = [x for x in await _inbox(world, "supplier_x") if x.link == f"/orders/{oid2}"]
    assert len(second) == 1

    # Confirming tells both parties to sign the contract.
    r = await client.post(f"/api/orders/{oid}/confirm", headers=world.h("supplier_x"))
    assert r.status_code == 200, r.text
    await _drain(world)
    for who in ("buyer_a", "supplier_x"):
        kinds = [(x.kind, x.link) for x in await _inbox(world, who)]
        assert (Kind.CONTRACT_TO_SIGN, f"/orders/{oid}") in kinds, (who, kinds)


async def test_a_rolled_back_change_stages_nothing(world: World) -> None:
    await _drain(world)
    item = for_org(world.who["supplier_x"].org_id, Kind.ORDER_TO_CONFIRM, "标题", "正文", "/orders")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        async with world.db.write() as tx:
            stage(tx.session, [item])
            raise RuntimeError("the business change failed")
    assert await _pending_rows(world) == 0
    assert await _drain(world) == 0 and await _inbox(world, "supplier_x") == []


async def test_recipients_are_the_active_users_of_the_party(world: World) -> None:
    await _drain(world)
    async with world.db.write() as tx:
        stage(tx.session, [for_org(world.who["supplier_x"].org_id, Kind.TO_SHIP, "甲", "", "/orders")])  # type: ignore[arg-type]
    from mall.core.models import User

    async with world.db.write() as tx:
        await tx.session.execute(
            update(User).where(User.id == world.who["supplier_x"].user_id).values(is_active=False)
        )
    await _drain(world)
    assert await _inbox(world, "supplier_x") == []  # a disabled user is told nothing


def _order(world: World, status: str = OrderStatus.CONFIRMED, requested_by: str | None = None) -> Order:
    return Order(
        id=uuid.uuid4(),
        order_no="ZC2026000001",
        status=status,
        buyer_org_id=world.who["buyer_a"].org_id,
        supplier_org_id=world.who["supplier_x"].org_id,
        total_amount=1000,
        confirm_due_at=clock.now(),
        cancel_requested_by=requested_by,
    )


def _to(world: World, items: list[Any]) -> list[tuple[str, str]]:
    names = {str(world.who[n].org_id): n for n in ("buyer_a", "supplier_x")}
    return [(names[i.org_id], i.kind) for i in items]


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        ("placed", OrderStatus.PLACED, [("supplier_x", Kind.ORDER_TO_CONFIRM)]),
        (
            "confirmed",
            OrderStatus.CONFIRMED,
            [("buyer_a", Kind.CONTRACT_TO_SIGN), ("supplier_x", Kind.CONTRACT_TO_SIGN)],
        ),
        ("supplier_signed", OrderStatus.CONFIRMED, [("buyer_a", Kind.CONTRACT_TO_SIGN)]),
        ("buyer_signed", OrderStatus.CONFIRMED, [("supplier_x", Kind.CONTRACT_TO_SIGN)]),
        ("supplier_signed", OrderStatus.SIGNED, [("buyer_a", Kind.CONTRACT_TO_FILE)]),
        ("buyer_signed", OrderStatus.SIGNED, [("buyer_a", Kind.CONTRACT_TO_FILE)]),
        ("contract_filed", OrderStatus.CONTRACTED, [("supplier_x", Kind.TO_SHIP)]),
        ("shipped", OrderStatus.SHIPPED, [("buyer_a", Kind.DELIVERY_TO_ACCEPT)]),
        ("received", OrderStatus.RECEIVED, []),
        ("acceptance_refused", OrderStatus.RECEIVED, [("supplier_x", Kind.REDELIVER)]),
        ("accepted", OrderStatus.ACCEPTED, [("supplier_x", Kind.ACCEPTED)]),
        ("invoice_recorded", OrderStatus.ACCEPTED, [("buyer_a", Kind.INVOICE_TO_CONFIRM)]),
        ("invoice_confirmed", OrderStatus.ACCEPTED, [("supplier_x", Kind.INVOICE_ANSWERED)]),
        ("invoice_rejected", OrderStatus.ACCEPTED, [("supplier_x", Kind.INVOICE_ANSWERED)]),
        ("paid", OrderStatus.PAID, [("supplier_x", Kind.PAYMENT)]),
        ("claim_opened", OrderStatus.ACCEPTED, [("supplier_x", Kind.CLAIM)]),
        ("claim_answered", OrderStatus.ACCEPTED, [("buyer_a", Kind.CLAIM)]),
        ("corrected", OrderStatus.CONTRACTED, []),
        ("no_such_action", OrderStatus.CONFIRMED, []),
    ],
)
async def test_who_is_told_of_each_order_action(
    world: World, action: str, status: str, expected: list[Any]
) -> None:
    items = order_notices.items_for(_order(world, status), world.who["buyer_a"], action)
    assert _to(world, items) == expected
    order_no = "ZC2026000001"
    assert all(order_no in i.title and i.link.startswith("/orders/") for i in items)


async def test_cancellation_notices_go_to_the_other_party(world: World) -> None:
    asked_by_supplier = _order(world, OrderStatus.CONFIRMED, requested_by="supplier")
    items = order_notices.items_for(asked_by_supplier, world.who["supplier_x"], "cancel_requested")
    assert _to(world, items) == [("buyer_a", Kind.CANCEL_REQUESTED)]
    items = order_notices.items_for(_order(world), world.who["buyer_a"], "cancelled")
    assert _to(world, items) == [("supplier_x", Kind.CANCELLED)]
    by_the_mall = order_notices.items_for(_order(world), None, "cancelled")  # auto-cancel: both
    assert _to(world, by_the_mall) == [("buyer_a", Kind.CANCELLED), ("supplier_x", Kind.CANCELLED)]


# ---------------------------------------------------------------- the API and the page


async def test_the_api_lists_counts_and_marks_only_ones_own(client: Any, world: World) -> None:
    await _drain(world)
    oids = [await _place(client, world), await _place(client, world, "printer")]
    await _drain(world)
    h = world.h("supplier_x")
    r = await client.get("/api/messages/unread-count", headers=h)
    assert r.status_code == 200 and r.json() == {"unread": 2}
    page = (await client.get("/api/messages", headers=h)).json()
    assert page["total"] == 2 and page["unread"] == 2
    assert {m["link"] for m in page["items"]} == {f"/orders/{o}" for o in oids}
    assert all(m["kind_label"] == "待确认订单" for m in page["items"])
    first = page["items"][1]["id"]

    # Somebody else's notification does not exist for them: not marked, not listed.
    assert_problem(
        await client.post(f"/api/messages/{first}/read", headers=world.h("supplier_y")),
        404,
        "notification_not_found",
    )
    assert_problem(
        await client.post(f"/api/messages/{uuid.uuid4()}/read", headers=h), 404, "notification_not_found"
    )
    assert (await client.get("/api/messages", headers=world.h("supplier_y"))).json()["total"] == 0
    assert (await client.get("/api/messages/unread-count", headers=h)).json() == {"unread": 2}

    r = await client.post(f"/api/messages/{first}/read", headers=h)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    assert (await client.get("/api/messages/unread-count", headers=h)).json() == {"unread": 1}
    # unread first: the read one goes last; newest first: by time alone
    unread_first = (await client.get("/api/messages?order=unread", headers=h)).json()["items"]
    assert unread_first[-1]["id"] == first and unread_first[0]["read_at"] is None
    paged = (await client.get("/api/messages?per_page=1&page=2&order=newest", headers=h)).json()
    assert paged["total"] == 2 and len(paged["items"]) == 1
    assert_problem(await client.get("/api/messages?order=oldest", headers=h), 400, "invalid_order")

    r = await client.post("/api/messages/read-all", headers=h)
    assert r.status_code == 200 and r.json() == {"marked": 1}
    assert (await client.get("/api/messages/unread-count", headers=h)).json() == {"unread": 0}
    # anonymous callers get nothing
    assert_problem(await client.get("/api/messages"), 401, "unauthenticated")


async def test_the_message_centre_page_and_the_header_counts(app: Any, world: World) -> None:
    await _drain(world)
    oid = await _checkout(world)
    await _drain(world)
    async with client_from(app, "198.51.100.41") as c:
        assert (await login_form(c, "supplier_x", PASSWORD)).status_code == 303
        html = (await c.get("/messages", headers=HTML)).text
        assert "消息中心" in html and "新订单待确认" in html and f'href="/orders/{oid}"' in html
        # the header: one unread message, and the order to confirm waits on the 工作台
        assert re.search(r'id="header-messages"[^>]*>消息 <span[^>]*>1</span>', html), html
        assert re.search(r'id="header-todo"[^>]*>待办 <span[^>]*>1</span>', html)
        bench = (await c.get("/workbench", headers=HTML)).text
        assert 'id="unread-messages"' in bench and f'href="/orders/{oid}"' in bench
        [n] = await _inbox(world, "supplier_x")
        # "前往办理" marks it read and goes to the order's page
        r = await post_form(c, f"/messages/{n.id}/open", {})
        assert r.status_code == 303 and r.headers["location"] == f"/orders/{oid}"
        html = (await c.get("/messages", headers=HTML)).text
        assert not re.search(r'id="header-messages"[^>]*>消息 <span', html)
        assert 'id="unread-messages"' not in (await c.get("/workbench", headers=HTML)).text
    async with client_from(app, "198.51.100.42") as c:
        assert (await login_form(c, "supplier_y", PASSWORD)).status_code == 303
        r = await post_form(c, f"/messages/{n.id}/read", {})  # someone else's
        assert r.status_code == 303
        assert "没有这条消息" in " ".join(flashes((await c.get("/messages", headers=HTML)).text))
        html = (await c.get("/messages", headers=HTML)).text
        assert "暂无消息" in html  # the empty state, in Chinese
    async with world.db.read() as s:
        row = await s.get(Notification, n.id)
        assert row is not None and row.read_at is not None
    async with client_from(app, "198.51.100.43") as c:  # the administrators have a message centre too
        assert (await login_form(c, "auditor", PASSWORD)).status_code == 303
        html = (await c.get("/audit", headers=HTML)).text
        assert 'id="header-messages"' in html and 'id="header-todo"' not in html


# ---------------------------------------------------------------- periodic notices


async def test_a_payment_falling_due_is_told_once_per_order(client: Any, world: World) -> None:
    await _drain(world)
    due_days = world.settings.payment_due_days
    oids = [await _place(client, world), await _place(client, world, "printer")]
    now = clock.now()
    async with world.db.write() as tx:
        # one accepted 26 days ago (due in 4 days), one accepted yesterday (not due for long)
        for oid, ago in zip(oids, (due_days - 4, 1), strict=True):
            await tx.session.execute(
                update(Order)
                .where(Order.id == uuid.UUID(oid))
                .values(status=OrderStatus.ACCEPTED, accepted_at=now - timedelta(days=ago))
            )
    assert await scans.stage_payment_due(world.db, due_days) == 1
    await _drain(world)
    [n] = [x for x in await _inbox(world, "buyer_a") if x.kind == Kind.PAYMENT_DUE]
    assert n.link == f"/orders/{oids[0]}" and "付款期限" in n.body
    assert await scans.stage_payment_due(world.db, due_days) == 0  # never repeated
    await _drain(world)
    assert len([x for x in await _inbox(world, "buyer_a") if x.kind == Kind.PAYMENT_DUE]) == 1


async def test_old_notifications_are_pruned(world: World) -> None:
    await _drain(world)
    with frozen_at(clock.now() - timedelta(days=200)):
        async with world.db.write() as tx:
            stage(tx.session, [for_org(world.who["buyer_a"].org_id, Kind.PAYMENT, "旧", "", "/orders")])  # type: ignore[arg-type]
    async with world.db.write() as tx:
        stage(tx.session, [for_org(world.who["buyer_a"].org_id, Kind.PAYMENT, "新", "", "/orders")])  # type: ignore[arg-type]
    await _drain(world)
    assert await deliver.prune(world.db, 180) == 1
    assert [n.title for n in await _inbox(world, "buyer_a")] == ["新"]


# ---------------------------------------------------------------- e-mail


class Inbox:
    """What the SMTP server the test started received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("bad"):  # a mailbox the relay does not know
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 OK"


@pytest.fixture
def smtp_server() -> Any:
    from aiosmtpd.controller import Controller

    handler = Inbox()
    with socket.socket() as probe:  # a free port (the controller checks its server by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def _with_smtp(world: World, controller: Any) -> Any:
    return replace(
        world.settings,
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        smtp_from="阳光卖场 <noreply@mall.example.gov.cn>",
    )


async def test_email_is_sent_through_smtp_at_least_once_with_a_stable_message_id(
    client: Any, world: World, smtp_server: Any
) -> None:
    controller, received = smtp_server
    settings = _with_smtp(world, controller)
    await _drain(world)
    sx = world.who["supplier_x"].user_id
    await prefs.save(world.db, sx, prefs.PrefsForm(email="sales@supplier.example.cn", email_on="on"))
    oid = await _place(client, world)
    await _drain(world, pushing=mail.pushing(settings))
    [n] = await _inbox(world, "supplier_x")
    assert n.mail_state == MailState.WAITING
    assert [x.mail_state for x in await _inbox(world, "buyer_a")] == []  # the buyer wants no mail
    assert await mail.send_waiting(world.db, settings) == 1
    [(to, msg)] = received.messages
    assert to == ["sales@supplier.example.cn"]
    assert msg["Message-ID"] == f"<n.{n.id.hex}@mall.example.gov.cn>" == mail.message_id(settings, n.id)
    assert msg["Subject"] == "【阳光卖场】新订单待确认：订单 " + n.title.split("订单 ")[1]
    body = msg.get_content()
    assert f"/orders/{oid}" in body and "新订单待确认" in body
    assert await mail.send_waiting(world.db, settings) == 0  # sent: not again
    # A worker that died after sending and before recording it sends it again, with the same id.
    async with world.db.write() as tx:
        await tx.session.execute(update(Notification).values(mail_state=MailState.WAITING))
    assert await mail.send_waiting(world.db, settings) == 1
    assert [m["Message-ID"] for _, m in received.messages] == [msg["Message-ID"]] * 2
    assert (await _inbox(world, "supplier_x"))[0].mailed_at is not None


async def test_a_server_that_is_down_leaves_the_mail_waiting(
    client: Any, world: World, smtp_server: Any
) -> None:
    controller, received = smtp_server
    settings = replace(_with_smtp(world, controller), smtp_port=1)  # nothing listens there
    await _drain(world)
    await prefs.save(
        world.db, world.who["supplier_x"].user_id, prefs.PrefsForm(email="a@b.cn", email_on="on")
    )
    await _place(client, world)
    await _drain(world, pushing=True)
    with pytest.raises(OSError):
        await mail.send_waiting(world.db, settings)
    assert [n.mail_state for n in await _inbox(world, "supplier_x")] == [MailState.WAITING]
    assert received.messages == []
    assert await mail.send_waiting(world.db, _with_smtp(world, controller)) == 1  # the next run sends it
    assert len(received.messages) == 1


async def test_an_address_the_server_refuses_fails_alone_and_holds_up_nothing(
    client: Any, world: World, smtp_server: Any
) -> None:
    controller, received = smtp_server
    settings = _with_smtp(world, controller)
    await _drain(world)
    x, y = world.who["supplier_x"].user_id, world.who["supplier_y"].user_id
    await prefs.save(world.db, x, prefs.PrefsForm(email="bad@supplier.example.cn", email_on="on"))
    await prefs.save(world.db, y, prefs.PrefsForm(email="good@supplier.example.cn", email_on="on"))
    await _place(client, world)  # supplier_x's notice first (the oldest goes first)
    await _place(client, world, "desk")
    await _drain(world, pushing=True)
    assert await mail.send_waiting(world.db, settings) == 1
    assert [to for to, _ in received.messages] == [["good@supplier.example.cn"]]
    assert [n.mail_state for n in await _inbox(world, "supplier_x")] == [MailState.REFUSED]
    assert [n.mail_state for n in await _inbox(world, "supplier_y")] == [MailState.SENT]
    assert await mail.send_waiting(world.db, settings) == 0  # the refused one is not tried again


async def test_the_daily_digest_sends_one_mail_for_the_day(
    client: Any, world: World, smtp_server: Any
) -> None:
    controller, received = smtp_server
    settings = _with_smtp(world, controller)
    await _drain(world)
    await prefs.save(
        world.db, world.who["supplier_x"].user_id, prefs.PrefsForm(email="d@s.cn", email_on="on", digest="on")
    )
    # 6 o'clock in China today: before the digest hour (8)
    base = clock.now().astimezone(clock.SHANGHAI).replace(hour=6, minute=0, second=0, microsecond=0)
    with frozen_at(base):
        await _place(client, world)
        await _place(client, world, "printer")
        await _drain(world, pushing=True)
        assert {n.mail_state for n in await _inbox(world, "supplier_x")} == {MailState.DIGEST}
        assert await mail.send_waiting(world.db, settings) == 0  # not one by one
        assert await mail.send_digests(world.db, settings) == 0  # before 8 o'clock: not yet
    with frozen_at(base + timedelta(hours=3)):
        assert await mail.send_digests(world.db, settings) == 1
        assert await mail.send_digests(world.db, settings) == 0
    [(to, msg)] = received.messages
    ids = [n.id for n in await _inbox(world, "supplier_x")]
    assert to == ["d@s.cn"] and msg["Message-ID"] == mail.message_id(settings, *ids)
    assert msg.get_content().count("新订单待确认") == 2


async def test_preferences_on_the_account_page(app: Any, world: World) -> None:
    async with client_from(app, "198.51.100.44") as c:
        assert (await login_form(c, "buyer_a", PASSWORD)).status_code == 303
        html = (await c.get("/account", headers=HTML)).text
        assert 'id="notifications"' in html and "消息提醒" in html
        r = await post_form(c, "/account/notifications", {"email": "not-an-address", "email_on": "on"})
        assert r.status_code == 303
        assert "电子邮箱格式不正确" in " ".join(flashes((await c.get("/account", headers=HTML)).text))
        r = await post_form(c, "/account/notifications", {"email": "", "email_on": "on"})
        assert "开启邮件提醒须填写电子邮箱" in " ".join(flashes((await c.get("/account", headers=HTML)).text))
        r = await post_form(c, "/account/notifications", {"email": "x\u202e@y.cn"})
        assert "不允许的字符" in " ".join(flashes((await c.get("/account", headers=HTML)).text))
        r = await post_form(
            c, "/account/notifications", {"email": "buyer@unit.gov.cn", "email_on": "on", "digest": "on"}
        )
        assert "消息提醒设置已保存" in " ".join(flashes((await c.get("/account", headers=HTML)).text))
    saved = await prefs.of(world.db, world.who["buyer_a"].user_id)
    assert (saved.email, saved.email_on, saved.digest, saved.sms_on) == (
        "buyer@unit.gov.cn",
        True,
        True,
        False,
    )
    assert (await prefs.of(world.db, world.who["buyer_b"].user_id)).email_on is False


# ---------------------------------------------------------------- the catalogue, inquiries and auctions


async def test_a_listing_returned_from_review_is_told_to_its_supplier(world: World) -> None:
    from catalog import service as catalog

    await _drain(world)
    submitted = await catalog.create_listing(
        world.db,
        world.who["supplier_x"],
        catalog.ListingDraft("待审打印机", "待审牌", "S-1", "A02021003", "台", "950.00", "950.00", "5"),
        margin=world.settings.price_margin,
    )
    await catalog.review_listing(
        world.db,
        world.who["center"],
        submitted.id,
        approve=False,
        reason="参考价来源不可信",
        margin=world.settings.price_margin,
    )
    await _drain(world)
    [n] = await _inbox(world, "supplier_x")
    assert n.kind == Kind.LISTING_RETURNED and n.link == f"/supplier/listings/{submitted.id}/edit"
    assert "待审打印机" in n.title and "参考价来源不可信" in n.body
    assert await _inbox(world, "supplier_y") == []


async def test_invited_suppliers_are_asked_to_quote_and_learn_nothing_of_each_other(world: World) -> None:
    from mall.core.models import OrgKind

    await _drain(world)
    xs = [await world.org(f"invitee{i}", OrgKind.SUPPLIER, f"受邀供应商{i}有限公司") for i in range(3)]
    p = await world.procedure("inquiry", "办公桌椅询价项目", invited=xs)
    await _drain(world)
    for i in range(3):
        [n] = await _inbox(world, f"invitee{i}")
        assert n.kind == Kind.INVITED and n.link == f"/procedures/{p.id}" and "办公桌椅询价项目" in n.title
        assert "受邀供应商" not in n.title + n.body  # nobody learns who else was invited
        assert clock.local_display(p.ends_at) in n.body
    assert await _inbox(world, "supplier_y") == []


async def test_being_outbid_is_told_without_who_or_how_much_and_never_piles_up(world: World) -> None:
    from bidding import offers
    from mall.core.models import OrgKind
    from tests.factories import movable_clock

    await _drain(world)
    xs = [await world.org(f"bidder{i}", OrgKind.SUPPLIER, f"竞价供应商{i}有限公司") for i in range(3)]
    with movable_clock() as advance:
        p = await world.procedure("auction", "服务器竞价项目", invited=xs, decrement="100")
        await _drain(world)  # the invitations

        async def bid(i: int, amount: str) -> None:
            advance(timedelta(seconds=1))
            assert (await offers.bid(world.db, xs[i], p.id, amount)).accepted

        async def outbid(i: int) -> list[Notification]:
            await _drain(world)
            return [n for n in await _inbox(world, f"bidder{i}") if n.kind == Kind.OUTBID]

        await bid(0, "59000.00")
        assert await outbid(0) == []
        await bid(1, "58000.00")
        [n] = await outbid(0)
        assert await outbid(1) == []
        assert n.link == f"/procedures/{p.id}" and "服务器竞价项目" in n.title
        assert not re.search(r"\d{3}", n.title + n.body) and "竞价供应商" not in n.title + n.body
        await bid(2, "57000.00")
        assert len(await outbid(1)) == 1 and len(await outbid(0)) == 1
        await bid(0, "56000.00")
        await bid(1, "55000.00")  # bidder0 is outbid again while its first notice is unread
        assert len(await outbid(0)) == 1 and len(await outbid(2)) == 1
        await inbox_read_all(world, "bidder0")
        await bid(2, "54000.00")  # bidder1 led; bidder0 not
        await bid(0, "53000.00")
        await bid(1, "52000.00")  # bidder0 read its notice: a new one now
        assert len(await outbid(0)) == 2


async def inbox_read_all(world: World, who: str) -> None:
    from mall.notify import inbox

    await inbox.mark_all_read(world.db, world.who[who].user_id)


def test_the_kinds_of_later_features_are_listed() -> None:
    """Supervision cases and credit sanctions come with later work: their kinds exist, nothing makes them."""
    assert Kind.CASE_OPENED.label == "监管立案" and Kind.SANCTION_DECIDED.label == "处理决定"


async def test_the_delivery_is_kicked_after_the_commit_and_not_after_a_rollback(world: World) -> None:
    from mall.core import outbox
    from mall.notify.stage import drain_kicks

    kicked: list[int] = []

    def kick() -> bool:
        kicked.append(1)
        return True

    previous = outbox._enqueuers.get(outbox.NOTIFY)
    outbox.register({outbox.NOTIFY: kick})
    try:
        item = for_org(world.who["buyer_a"].org_id, Kind.PAYMENT, "甲", "", "/orders")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            async with world.db.write() as tx:
                stage(tx.session, [item])
                raise RuntimeError("rolled back")
        await drain_kicks()
        assert kicked == []
        async with world.db.write() as tx:
            stage(tx.session, [item])
            stage(tx.session, [item])  # one kick per transaction
            assert kicked == []  # not before the commit
        await drain_kicks()
        assert kicked == [1]
    finally:
        if previous is None:
            outbox._enqueuers.pop(outbox.NOTIFY, None)
        else:
            outbox.register({outbox.NOTIFY: previous})


# ---------------------------------------------------------------- decisions and watch lists


async def test_a_frozen_listing_tells_its_supplier_the_decision_and_why(client: Any, world: World) -> None:
    from catalog import service as catalog_service

    await _drain(world)
    laptop = world.listings["laptop"]
    await catalog_service.moderate(
        world.db,
        world.who["regulator"],
        laptop.id,
        "freeze",
        "价格明显高于市场价",
        margin=world.settings.price_margin,
    )
    await _drain(world)
    [n] = await _inbox(world, "supplier_x")
    assert n.kind == Kind.SANCTION_DECIDED and "已冻结" in n.title and "财政监管部门" in n.body
    assert "价格明显高于市场价" in n.body and n.link == f"/supplier/listings/{laptop.id}/edit"
    assert await _inbox(world, "supplier_y") == []  # another supplier hears nothing of it


async def test_an_order_entering_the_watch_list_tells_its_buyer_once(world: World) -> None:
    """The notice comes from the case the risk rules open (one per case), linking to it."""
    from mall.supervision import engine

    await _drain(world)
    oid = await _checkout(world)
    await orders.confirm(world.db, world.who["supplier_x"], uuid.UUID(oid))
    await _drain(world)
    before = len(await _inbox(world, "buyer_a"))
    now = clock.now()
    assert (await engine.run_full(world.db, world.settings, now)).opened == 0  # not late yet
    later = now + timedelta(days=15)  # past 7 working days without both signatures and filing
    assert (await engine.run_full(world.db, world.settings, later)).opened == 1
    await _drain(world)
    assert (await engine.run_full(world.db, world.settings, later)).opened == 0  # once
    await _drain(world)
    cases = [n for n in await _inbox(world, "buyer_a") if n.kind == Kind.CASE_OPENED]
    assert len(cases) == 1 and len(await _inbox(world, "buyer_a")) == before + 1
    assert "合同逾期未备案" in cases[0].title and cases[0].link.startswith("/cases/")
    assert [n for n in await _inbox(world, "supplier_x") if n.kind == Kind.CASE_OPENED] == []
