"""Pages of inquiries and auctions: the buyer publishes and follows; suppliers quote, or bid in the
live room (a WebSocket carries the room's events; the page works without it, by reloading)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from redis.exceptions import RedisError
from sqlalchemy import func, select

from bidding import room, service, views
from bidding.models import (
    KIND_LABELS,
    PROCEDURE_STATUS_LABELS,
    Participant,
    Procedure,
    ProcedureItem,
    ProcedureKind,
    ProcedureStatus,
)
from bidding.routes import limit_exempt, room_bid
from catalog import agreement_queries as agreements
from mall import budgets
from mall.core import clock
from mall.core.auth import Principal, allow
from mall.core.errors import DomainError, InvalidInput, NotFound
from mall.web.deps import DB, Config
from mall.web.helpers import act, current_user, flash, keep_form, page_no, pages_of, pop_form, render

PER_PAGE = 20
log = logging.getLogger("mall.rooms")

# Close codes of the room's WebSocket, sent before anything else (room.js stops or waits on them).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403  # another site's page (Origin): the handshake itself is refused
CLOSE_NOT_FOUND = 4404  # no such room for this user: not visible, or an inquiry (sealed: no room)
CLOSE_TOO_MANY = 4429  # the user already holds `room_connections_per_user` connections to the room


@get("/procedures", opt=allow("user"), include_in_schema=False)
async def procedures_page(
    request: Request[Any, Any, Any], db: DB, page: FromQuery[str] = "1", kind: FromQuery[str] = ""
) -> Template:
    who = current_user(request)
    assert who
    pg = page_no(page)
    stmt = select(Procedure).where(views.visible_clause(who))
    if kind in KIND_LABELS:
        stmt = stmt.where(Procedure.kind == kind)
    async with db.read() as s:
        total = await s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = list(
            (
                await s.execute(
                    stmt.order_by(Procedure.created_at.desc()).offset((pg - 1) * PER_PAGE).limit(PER_PAGE)
                )
            ).scalars()
        )
    now = clock.now()
    return render(
        request,
        "procedures.html",
        rows=rows,
        shown={p.id: views.shown_status(p, now) for p in rows},
        total=total,
        page=pg,
        pages=pages_of(total, PER_PAGE),
        kind=kind,
        kinds=KIND_LABELS,
        labels=PROCEDURE_STATUS_LABELS,
    )


@get("/procedures/new", opt=allow("buyer"), include_in_schema=False)
async def new_procedure_page(
    request: Request[Any, Any, Any],
    db: DB,
    settings: Config,
    kind: FromQuery[str] = "inquiry",
    agreement: FromQuery[str] = "",
) -> Template:
    who = current_user(request)
    assert who and who.org_id
    under = None
    async with db.read() as s:
        lines = await budgets.lines_of(s, who.org_id)
        if agreement:
            try:
                under = await agreements.get(s, uuid.UUID(agreement))
            except ValueError:
                raise NotFound("框架协议不存在", code="agreement_not_found") from None
            if not agreements.visible_to(who, under):
                raise NotFound("框架协议不存在", code="agreement_not_found")
    now = clock.now().astimezone(clock.SHANGHAI)
    defaults = {
        "kind": kind if kind in KIND_LABELS else "inquiry",
        "ends_at": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "min_participants": str(settings.min_participants),
        "decrement": "100",
        "quantity": "1",
        "unit": "台",
    }
    if under is not None:  # 二次竞价: the agreement's 品目, its suppliers only
        defaults |= {"agreement_id": str(under.id), "title": f"{under.title}二次竞价"}
    return render(
        request,
        "procedure_new.html",
        lines=lines,
        form={**defaults, **pop_form(request)},
        kinds=KIND_LABELS,
        agreement=under,
        min_participants=settings.min_participants,
    )


@post("/procedures/new", opt=allow("buyer"), include_in_schema=False)
async def create_procedure(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    assert who
    try:
        try:
            ends = datetime.fromisoformat((data.get("ends_at") or "").strip())
        except ValueError:
            raise InvalidInput("请填写截止时间", code="procedure_invalid") from None
        if ends.tzinfo is None:
            ends = ends.replace(tzinfo=clock.SHANGHAI)
        try:
            line_id = uuid.UUID(data.get("budget_line_id", ""))
            agreement_id = uuid.UUID(data["agreement_id"]) if data.get("agreement_id") else None
        except ValueError:
            raise InvalidInput("请选择预算指标", code="procedure_invalid") from None
        raw = (data.get("min_participants") or "").strip()
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 3):
            raise InvalidInput(
                "最少有效供应商数应为整数", code="min_participants_invalid", field="min_participants"
            )
        min_participants = int(raw) if raw else None
        draft = service.ProcedureDraft(
            kind=data.get("kind", ""),
            title=data.get("title", ""),
            budget_line_id=line_id,
            ceiling=data.get("ceiling", ""),
            starts_at=clock.now(),
            ends_at=ends,
            items=[
                service.ItemDraft(
                    data.get("category_code", ""),
                    data.get("item_name", ""),
                    data.get("spec", ""),
                    data.get("quantity", ""),
                    data.get("unit", ""),
                )
            ],
            decrement=data.get("decrement", "0") if data.get("kind") == "auction" else "0",
            decrement_is_percent=data.get("decrement_is_percent") == "1",
            min_participants=min_participants,
            agreement_id=agreement_id,
        )
        p = await service.create(
            db,
            who,
            draft,
            open_tender_threshold=settings.open_tender_threshold,
            region_code=settings.region_code,
            min_participants=settings.min_participants,
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, data)
        return Redirect("/procedures/new", status_code=303)
    flash(request, f"已发布{KIND_LABELS[p.kind]}「{p.title}」，项目编号 {p.number}")
    return Redirect(f"/procedures/{p.id}", status_code=303)


@get("/procedures/{procedure_id:uuid}", opt=allow("user"), include_in_schema=False)
async def procedure_page(
    request: Request[Any, Any, Any], procedure_id: FromPath[uuid.UUID], db: DB
) -> Template:
    who = current_user(request)
    assert who
    view = await views.view_for(db, who, procedure_id)  # 404 unless `who` may see the procedure
    async with db.read() as s:
        p = await views.visible(s, who, procedure_id)
        items = list(
            (
                await s.execute(
                    select(ProcedureItem)
                    .where(ProcedureItem.procedure_id == p.id)
                    .order_by(ProcedureItem.line_no)
                )
            ).scalars()
        )
        # only an auction has a room: an inquiry's page carries nothing of it (not even a version)
        snap = (
            await room.snapshot(s, p, who.org_id if who.role == "supplier" else None)
            if p.kind == ProcedureKind.AUCTION
            else None
        )
    return render(
        request,
        "procedure.html",
        p=p,
        items=items,
        view=view,
        snap=snap,
        labels=PROCEDURE_STATUS_LABELS,
        kinds=KIND_LABELS,
        is_winner=who.role == "supplier"
        and p.status == ProcedureStatus.AWARDED
        and p.awarded_supplier_id == who.org_id,
        can_reject=who.role == "buyer"
        and p.kind == ProcedureKind.INQUIRY
        and p.status == ProcedureStatus.AWARDED,
        now=clock.now(),
    )


@post("/procedures/{procedure_id:uuid}/quote", opt=allow("supplier"), include_in_schema=False)
async def quote(
    request: Request[Any, Any, Any],
    procedure_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    if data.get("action") == "withdraw":
        return await act(
            request,
            lambda: service.withdraw(db, who, procedure_id),
            "报价已撤回",
            f"/procedures/{procedure_id}",
        )
    return await act(
        request,
        lambda: service.quote(db, who, procedure_id, data.get("amount", "")),
        "报价已提交（密封，截止前可修改或撤回）",
        f"/procedures/{procedure_id}",
    )


@post("/procedures/{procedure_id:uuid}/bid", opt=allow("supplier"), include_in_schema=False)
async def bid(
    request: Request[Any, Any, Any],
    procedure_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    """The form fallback of the room."""
    who = current_user(request)
    assert who
    exempt = limit_exempt(request, settings)
    return await act(
        request,
        lambda: room_bid(request.app, db, settings, who, procedure_id, data.get("amount", ""), exempt=exempt),
        "出价成功",
        f"/procedures/{procedure_id}",
    )


@post("/procedures/{procedure_id:uuid}/bid.json", opt=allow("supplier"), include_in_schema=False)
async def bid_json(
    request: Request[Any, Any, Any],
    procedure_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> dict[str, Any]:
    """The room script's bid (session cookie + CSRF header): JSON, refusals as problem+json."""
    who = current_user(request)
    assert who
    r = await room_bid(
        request.app,
        db,
        settings,
        who,
        procedure_id,
        data.get("amount", ""),
        exempt=limit_exempt(request, settings),
    )
    async with db.read() as s:
        label = await s.scalar(
            select(Participant.label_no).where(
                Participant.procedure_id == procedure_id, Participant.supplier_org_id == who.org_id
            )
        )
    return {
        "accepted": r.accepted,
        "seq": r.seq,
        "amount": str(r.amount),
        "lowest": str(r.lowest),
        "label": label,
    }


@post("/procedures/{procedure_id:uuid}/award", opt=allow("supplier"), include_in_schema=False)
async def award(
    request: Request[Any, Any, Any],
    procedure_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    if data.get("action") == "decline":
        return await act(
            request,
            lambda: service.decline_award(db, who, procedure_id),
            "已放弃成交，成交资格顺延给下一名",
            f"/procedures/{procedure_id}",
        )
    try:
        order = await service.confirm_award(db, who, procedure_id)
    except DomainError as exc:
        flash(request, exc.detail, "error")
        return Redirect(f"/procedures/{procedure_id}", status_code=303)
    flash(request, f"已确认成交，生成订单 {order.order_no} 与电子合同 {order.contract_no}")
    return Redirect(f"/orders/{order.id}", status_code=303)


@post("/procedures/{procedure_id:uuid}/reject", opt=allow("buyer"), include_in_schema=False)
async def reject(
    request: Request[Any, Any, Any],
    procedure_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    try:
        label_no = int(data.get("label_no", ""))
    except ValueError:
        label_no = 0
    return await act(
        request,
        lambda: service.reject_quote(db, who, procedure_id, label_no, data.get("reason", "")),
        "已认定该报价无效，排名已重新计算",
        f"/procedures/{procedure_id}",
    )


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
    if not room.origin_allowed(socket.headers.get("origin"), settings.publication_base_url):
        await socket.close(code=CLOSE_FORBIDDEN, reason="origin")  # before accept: the handshake fails
        return
    who: Principal | None = socket.scope.get("user")
    db = app.state.db
    await socket.accept()
    if who is None:
        await socket.close(code=CLOSE_UNAUTHENTICATED)
        return
    try:
        async with db.read() as s:
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
    try:
        await _watch(socket, db, app.state.channels, p.id, who, redis, prefix, connection)
    finally:
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


ROUTES = [
    procedures_page,
    new_procedure_page,
    create_procedure,
    procedure_page,
    quote,
    bid,
    bid_json,
    award,
    reject,
    room_socket,
]
