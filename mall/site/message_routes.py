"""The message centre (消息中心): the API under /api/messages and the page /messages, for every
logged-in role; and the unread and to-do counts in every page's header. A user only ever sees and
marks their own notifications: another's id is not found."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall.core.auth import Principal
from mall.core.errors import InvalidInput
from mall.core.guards import allow
from mall.notify import inbox
from mall.notify.models import KIND_LABELS, Notification
from mall.site import workbench
from mall.web.deps import UserCall
from mall.web.helpers import PageNo, PerPage, page_no, paging

log = logging.getLogger("mall.notify")
TAGS = ["消息"]
ANYONE = allow("user")
ORDER_LABELS = {"unread": "未读在前", "newest": "最新在前"}


class MessageOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    kind_label: str
    title: str
    text: str
    link: str  # the page where the user acts
    created_at: datetime
    read_at: datetime | None


class MessagePage(msgspec.Struct):
    total: int
    unread: int
    page: int
    per_page: int
    items: list[MessageOut]


class UnreadOut(msgspec.Struct):
    unread: int


class MarkedOut(msgspec.Struct):
    marked: int


def message_out(n: Notification) -> MessageOut:
    return MessageOut(
        n.id, n.kind, KIND_LABELS.get(n.kind, n.kind), n.title, n.body, n.link, n.created_at, n.read_at
    )


def _order(raw: str) -> str:
    if raw not in inbox.ORDERS:
        raise InvalidInput(
            "排序方式应为 unread（未读在前）或 newest（最新在前）", code="invalid_order", field="order"
        )
    return raw


class MessageApi(Controller):
    path = "/api/messages"
    tags = TAGS
    opt = ANYONE

    @get("/", summary="本人的消息（分页；order=unread 未读在前，newest 最新在前）")
    async def list_messages(
        self, call: UserCall, page: PageNo = 1, per_page: PerPage = 20, order: FromQuery[str] = "unread"
    ) -> MessagePage:
        async with call.db.read() as s:
            total, rows = await inbox.page_of(s, call.me.user_id, page, per_page, _order(order))
            unread = await inbox.unread_count(s, call.me.user_id)
        return MessagePage(total, unread, page, per_page, [message_out(n) for n in rows])

    @get("/unread-count", summary="本人的未读消息数")
    async def unread_count(self, call: UserCall) -> UnreadOut:
        async with call.db.read() as s:
            return UnreadOut(await inbox.unread_count(s, call.me.user_id))

    @post("/{notification_id:uuid}/read", status_code=200, summary="将本人的一条消息标为已读")
    async def mark_read(self, call: UserCall, notification_id: FromPath[uuid.UUID]) -> MessageOut:
        return message_out(await inbox.mark_read(call.db, call.me.user_id, notification_id))

    @post("/read-all", status_code=200, summary="将本人的全部消息标为已读")
    async def mark_all_read(self, call: UserCall) -> MarkedOut:
        return MarkedOut(await inbox.mark_all_read(call.db, call.me.user_id))


class MessagePages(Controller):
    path = "/messages"
    include_in_schema = False
    opt = ANYONE

    @get("/")
    async def messages_page(
        self, call: UserCall, page: FromQuery[str] = "1", order: FromQuery[str] = "unread"
    ) -> Template:
        p = page_no(page)
        order = order if order in inbox.ORDERS else "unread"
        async with call.db.read() as s:
            total, rows = await inbox.page_of(s, call.me.user_id, p, inbox.PER_PAGE, order)
            unread = await inbox.unread_count(s, call.me.user_id)
        return call.render(
            "messages.html",
            items=rows,
            unread=unread,
            order=order,
            order_labels=ORDER_LABELS,
            kind_labels=KIND_LABELS,
            query=f"order={order}",
            **paging(total, p, inbox.PER_PAGE),
        )

    @post("/{notification_id:uuid}/read")
    async def mark_read(self, call: UserCall, notification_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: inbox.mark_read(call.db, call.me.user_id, notification_id), "已标为已读", "/messages"
        )

    @post("/{notification_id:uuid}/open")
    async def open_message(self, call: UserCall, notification_id: FromPath[uuid.UUID]) -> Redirect:
        """Marks it read and goes to the page where the user acts."""
        return await call.act(
            lambda: inbox.mark_read(call.db, call.me.user_id, notification_id),
            "已标为已读",
            "/messages",
            to=lambda n: n.link if n.link.startswith("/") and not n.link.startswith("//") else "/messages",
        )

    @post("/read-all")
    async def mark_all_read(self, call: UserCall) -> Redirect:
        return await call.act(
            lambda: inbox.mark_all_read(call.db, call.me.user_id),
            lambda n: f"已将 {n} 条消息标为已读" if n else "没有未读消息",
            "/messages",
        )


# The roles whose 工作台 lists what waits for them (the header's to-do count).
WORKBENCH_ROLES = ("buyer", "supplier", "center")


async def header_counts(response: Response[Any]) -> Response[Any]:
    """After a page handler: a page for a logged-in user shows, in its header, the user's unread
    messages and (for the roles with a 工作台) how many things wait for them. Counted here, for every
    page at once; a failure to count leaves the header without the numbers, never fails the page."""
    if not isinstance(response, Template):
        return response
    context = response.context
    me = context.get("me")
    request = context.get("request")
    if not isinstance(me, Principal) or request is None or "header_counts" in context:
        return response
    try:
        db, settings = request.app.state.db, request.app.state.settings
        async with db.read() as s:
            counts = {"unread": await inbox.unread_count(s, me.user_id)}
            if me.role in WORKBENCH_ROLES and me.org_id is not None:
                board = context.get("board")
                if not isinstance(board, workbench.Board):
                    board = await workbench.board_of(s, me, settings)
                counts["todo"] = len(board.yours)
    except Exception:
        log.exception("header counts not shown")
        return response
    context["header_counts"] = counts
    return response


ROUTES = [MessageApi]
PAGES = [MessagePages]
