"""Pages of inquiries and auctions: the buyer publishes and follows; suppliers quote, or bid in the
live room (a WebSocket carries the room's events; the page works without it, by reloading)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from redis.exceptions import RedisError
from sqlalchemy import select

from bidding import award, offers, publish, room, steps, views
from bidding.award import ConfirmIn
from bidding.models import (
    KIND_LABELS,
    PROCEDURE_STATUS_LABELS,
    Participant,
    Procedure,
    ProcedureKind,
    ProcedureStatus,
)
from bidding.offers import AmountIn
from bidding.publish import ItemIn, ProcedureIn
from catalog import agreement_queries as agreements
from mall import budgets
from mall.core import clock, fields, metrics
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import InvalidInput, NotFound
from mall.core.guards import PUBLIC, allow
from mall.web import forms
from mall.web.deps import DB, UserCall, Viewer
from mall.web.helpers import AnyRequest, Form, page_no, paging, pop_form, render

PER_PAGE = 20
log = logging.getLogger("mall.rooms")
BUYERS = allow("buyer")
SUPPLIERS = allow("supplier")

# Close codes of the room's WebSocket, sent before anything else (room.js stops or waits on them).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403  # another site's page (Origin): the handshake itself is refused
CLOSE_NOT_FOUND = 4404  # no such room for this user: not visible, or an inquiry (sealed: no room)
CLOSE_TOO_MANY = 4429  # the user already holds `room_connections_per_user` connections to the room


class ProcedureForm(ProcedureIn, kw_only=True, forbid_unknown_fields=True):
    """The page's form for a new procedure: the API's fields, with one item's fields flat and the end
    as a `datetime-local` input sends it (China time, no zone, no seconds)."""

    items: list[ItemIn] = msgspec.field(default_factory=list)  # from the flat fields below
    # checked like any text here (a refused character, its length); the 品目 list checks the code
    category_code: fields.CategoryCodeText
    item_name: fields.Name
    spec: fields.Spec = ""
    quantity: fields.Quantity
    unit: fields.Unit

    def __post_init__(self) -> None:
        self.items = [ItemIn(self.category_code, self.item_name, self.quantity, self.unit, self.spec)]
        if self.ends_at.tzinfo is None:
            self.ends_at = self.ends_at.replace(tzinfo=clock.SHANGHAI)
        if self.kind != ProcedureKind.AUCTION:
            self.decrement = "0"  # the field is on the page for auctions only

    @classmethod
    def of(cls, data: Mapping[str, str]) -> ProcedureForm:
        typed = dict(data)
        raw = typed.get("min_participants", "").strip()
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 3):
            raise InvalidInput(
                "最少有效供应商数应为整数", code="min_participants_invalid", field="min_participants"
            )
        with contextlib.suppress(ValueError):  # what is not a time is refused by the decoding
            typed["ends_at"] = datetime.fromisoformat(typed.get("ends_at", "").strip()).isoformat()
        return forms.decode(cls, typed)


class OfferForm(AmountIn, forbid_unknown_fields=True):
    """A quote or bid form: the API's amount, and which button was pressed."""

    action: fields.Choice = ""


class AwardForm(ConfirmIn, forbid_unknown_fields=True):
    action: fields.Choice = ""  # confirm | decline


class RejectForm(msgspec.Struct, forbid_unknown_fields=True):
    label_no: Annotated[int, msgspec.Meta(ge=0, le=10000)]  # 供应商 #n
    reason: fields.Reason = ""


def _amount(data: Mapping[str, str]) -> str:
    return forms.decode(OfferForm, data).amount


class ProcedurePages(Controller):
    path = "/procedures"
    opt = allow("user")
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def procedures_page(
        self,
        request: AnyRequest,
        viewer: Viewer,
        db: DB,
        page: FromQuery[str] = "1",
        kind: FromQuery[str] = "",
    ) -> Template:
        """Public: a visitor lists the published notices (views.public_clause); a logged-in user
        what its role may see."""
        pg = page_no(page)
        kind = kind if kind in KIND_LABELS else ""  # a bad filter is dropped
        async with db.read() as s:
            total, rows = await views.list_visible(s, viewer, views.ListFilter(kind=kind), pg, PER_PAGE)
        now = clock.now()
        return render(
            request,
            "procedures.html",
            rows=rows,
            shown={p.id: views.shown_status(p, now) for p in rows},
            **paging(total, pg, PER_PAGE),
            kind=kind,
            kinds=KIND_LABELS,
            labels=PROCEDURE_STATUS_LABELS,
        )

    @get("/new", opt=BUYERS)
    async def new_procedure_page(
        self, call: UserCall, kind: FromQuery[str] = "inquiry", agreement: FromQuery[str] = ""
    ) -> Template:
        assert call.me.org_id is not None  # a buyer belongs to a unit
        under = None
        async with call.db.read() as s:
            lines = await budgets.lines_of(s, call.me.org_id)
            if agreement:
                try:
                    under = await agreements.get(s, uuid.UUID(agreement))
                except ValueError:
                    raise NotFound("框架协议不存在", code="agreement_not_found") from None
                if not agreements.visible_to(call.me, under):
                    raise NotFound("框架协议不存在", code="agreement_not_found")
        now = clock.now().astimezone(clock.SHANGHAI)
        defaults = {
            "kind": kind if kind in KIND_LABELS else "inquiry",
            "ends_at": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "min_participants": str(call.settings.min_participants),
            "decrement": "100",
            "quantity": "1",
            "unit": "台",
        }
        if under is not None:  # 二次竞价: the agreement's 品目, its suppliers only
            defaults |= {"agreement_id": str(under.id), "title": f"{under.title}二次竞价"}
        return call.render(
            "procedure_new.html",
            lines=lines,
            form={**defaults, **pop_form(call.request)},
            kinds=KIND_LABELS,
            agreement=under,
            min_participants=call.settings.min_participants,
            sme_deduction=call.settings.sme_price_deduction,
        )

    @post("/new", opt=BUYERS)
    async def create_procedure(self, call: UserCall, data: Form) -> Redirect:
        return await call.act(
            lambda: publish.create_under(call.db, call.settings, call.me, ProcedureForm.of(data)),
            lambda p: f"已发布{KIND_LABELS[p.kind]}「{p.title}」，项目编号 {p.number}",
            "/procedures/new",
            keep=data,
            to=lambda p: f"/procedures/{p.id}",
        )

    @get("/{procedure_id:uuid}", opt=PUBLIC)
    async def procedure_page(
        self, request: AnyRequest, viewer: Viewer, db: DB, procedure_id: FromPath[uuid.UUID]
    ) -> Template:
        """Public for a published notice (a visitor reads the notice, and the result once closed:
        views.view_for); otherwise for who may see the procedure."""
        view = await views.view_for(db, viewer, procedure_id)  # 404 unless the viewer may see it
        role = viewer.role if viewer is not None else ""
        org_id = viewer.org_id if viewer is not None else None
        async with db.read() as s:
            p = await views.visible(s, viewer, procedure_id)
            items = await views.items_of(s, p.id)
            party = await views.is_party(s, viewer, p.id)
            # only an auction has a room, and only for who may enter it (a party to it): an
            # inquiry's page and a visitor's or outsider's page carry nothing of it (not even a version)
            snap = (
                await room.snapshot(s, p, org_id if role == "supplier" else None)
                if p.kind == ProcedureKind.AUCTION and party
                else None
            )
        now = clock.now()
        step = steps.next_step(p, now)
        return render(
            request,
            "procedure.html",
            p=p,
            step=step,
            stance=steps.stance(p, step, role, org_id)
            if party or viewer is None
            else steps.stance(p, step, "", None),
            party=party,
            items=items,
            view=view,
            snap=snap,
            labels=PROCEDURE_STATUS_LABELS,
            kinds=KIND_LABELS,
            is_winner=role == "supplier"
            and p.status == ProcedureStatus.AWARDED
            and p.awarded_supplier_id == org_id,
            can_reject=role == "buyer"
            and p.buyer_org_id == org_id
            and p.kind == ProcedureKind.INQUIRY
            and p.status == ProcedureStatus.AWARDED,
            now=now,
        )

    @post("/{procedure_id:uuid}/quote", opt=SUPPLIERS)
    async def quote(self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        back = f"/procedures/{procedure_id}"
        if data.get("action") == "withdraw":
            return await call.act(lambda: offers.withdraw(call.db, call.me, procedure_id), "报价已撤回", back)
        return await call.act(
            lambda: offers.quote(call.db, call.me, procedure_id, _amount(data)),
            "报价已提交（密封，截止前可修改或撤回）",
            back,
        )

    @post("/{procedure_id:uuid}/bid", opt=SUPPLIERS)
    async def bid(self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        """The form fallback of the room."""
        return await call.act(
            lambda: room.bid_from(call.request, call.db, call.settings, call.me, procedure_id, _amount(data)),
            "出价成功",
            f"/procedures/{procedure_id}",
        )

    @post("/{procedure_id:uuid}/bid.json", opt=SUPPLIERS)
    async def bid_json(self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: Form) -> dict[str, Any]:
        """The room script's bid (session cookie + CSRF header): JSON, refusals as problem+json."""
        r = await room.bid_from(call.request, call.db, call.settings, call.me, procedure_id, _amount(data))
        label = await _label_of(call.db, call.me, procedure_id)
        return {
            "accepted": r.accepted,
            "seq": r.seq,
            "amount": str(r.amount),
            "lowest": str(r.lowest),
            "label": label,
        }

    @post("/{procedure_id:uuid}/award", opt=SUPPLIERS)
    async def answer_award(self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        back = f"/procedures/{procedure_id}"
        if data.get("action") == "decline":
            return await call.act(
                lambda: award.decline_award(call.db, call.me, procedure_id),
                "已放弃成交，成交资格顺延给下一名",
                back,
            )
        return await call.act(
            lambda: award.confirm_award(call.db, call.me, procedure_id, forms.decode(AwardForm, data)),
            lambda order: f"已确认成交，生成订单 {order.order_no} 与电子合同 {order.contract_no}",
            back,
            to=lambda order: f"/orders/{order.id}",
        )

    @post("/{procedure_id:uuid}/reject", opt=BUYERS)
    async def reject(self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            form = forms.decode(RejectForm, data)
            return await award.reject_quote(call.db, call.me, procedure_id, form.label_no, form.reason)

        return await call.act(go, "已认定该报价无效，排名已重新计算", f"/procedures/{procedure_id}")


# A function, not a method of ProcedurePages: the caller may be anonymous (told by a close code after
# the handshake, not refused before it), and the `me`/`viewer` dependencies read an HTTP request.
@websocket("/procedures/{procedure_id:uuid}/room", opt=allow("user"), include_in_schema=False)
async def room_socket(socket: WebSocket[Any, Any, Any], procedure_id: FromPath[uuid.UUID]) -> None:
    """On connect: a snapshot (with the caller's own label, rank and bids); then every event of the
    room (each one the room's whole public state: the client keeps the newest version).

    A handshake from a page of another site (its Origin is not the mall's public base URL) is
    refused outright. Otherwise the socket is accepted and, when the room is not the caller's to
    watch, closed before anything is said: 4401 not logged in, 4404 no such room (not visible to
    the caller, or an inquiry: sealed quotes have no room), 4429 too many connections of this user
    to this room."""
    app = socket.app
    settings = app.state.settings
    if not room.origin_allowed(socket.headers.get("origin"), settings.public_base_url):
        await socket.close(code=CLOSE_FORBIDDEN, reason="origin")  # before accept: the handshake fails
        return
    who: Principal | None = socket.scope.get("user")
    db = app.state.db
    await socket.accept()
    if who is None:
        await socket.close(code=CLOSE_UNAUTHENTICATED)
        return
    p: Procedure | None = None
    try:
        async with db.read() as s:
            # the room is for the procedure's parties; the public reads the notice
            if await views.is_party(s, who, procedure_id):
                p = await views.visible(s, who, procedure_id)
    except NotFound:
        p = None
    if p is None or p.kind != ProcedureKind.AUCTION:
        await socket.close(code=CLOSE_NOT_FOUND)
        return
    redis = app.state.room_redis
    prefix = f"mall:{settings.queue_name}"
    connection = secrets.token_hex(8)
    try:
        admitted = await room.admit(
            redis, prefix, procedure_id, who.user_id, connection, settings.room_connections_per_user
        )
    except (RedisError, OSError) as exc:  # Redis is down: no count, and no events either (the page reloads)
        log.warning("room connection count unavailable for %s: %s", procedure_id, exc)
        admitted = True
    if not admitted:
        await socket.close(code=CLOSE_TOO_MANY, reason="too many connections")
        return
    metrics.ROOM_CONNECTIONS.inc()
    try:
        await _watch(socket, db, app.state.channels, p.id, who, redis, prefix, connection)
    finally:
        metrics.ROOM_CONNECTIONS.dec()
        with contextlib.suppress(Exception):
            await room.leave(redis, prefix, procedure_id, who.user_id, connection)


async def _watch(
    socket: WebSocket[Any, Any, Any],
    db: Any,
    channels: Any,
    procedure_id: uuid.UUID,
    who: Principal,
    redis: Any,
    prefix: str,
    connection: str,
) -> None:
    async with channels.start_subscription([room.channel_of(procedure_id)]) as subscriber:
        async with db.read() as s:
            p = await s.get(Procedure, procedure_id)
            assert p is not None
            snap = await room.snapshot(s, p, who.org_id if who.role == "supplier" else None)
        await socket.send_text(json.dumps(snap, ensure_ascii=False))

        async def forward() -> None:
            async for event in subscriber.iter_events():
                await socket.send_text(event.decode("utf-8"))

        async def until_closed() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await socket.receive_text()

        async def keep_place() -> None:
            # the connection's place in the per-user count lapses unless renewed: a process that dies
            # without closing its sockets frees their places by itself
            while True:
                await asyncio.sleep(room.KEEPALIVE_SECONDS)
                with contextlib.suppress(Exception):
                    await room.keep_alive(redis, prefix, procedure_id, who.user_id, connection)

        tasks = [
            asyncio.create_task(forward()),
            asyncio.create_task(until_closed()),
            asyncio.create_task(keep_place()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)


ROUTES: list[ControllerRouterHandler] = [ProcedurePages, room_socket]


@retried  # a read: safe to run again (the bid before it has committed)
async def _label_of(db: Database, me: Principal, procedure_id: uuid.UUID) -> int | None:
    """The bidder's label in the room (供应商1, 2, …), as the room shows it."""
    async with db.read() as s:
        label: int | None = await s.scalar(
            select(Participant.label_no).where(
                Participant.procedure_id == procedure_id, Participant.supplier_org_id == me.org_id
            )
        )
    return label
