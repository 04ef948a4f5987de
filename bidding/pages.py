"""Pages of inquiries and auctions: the buyer publishes and follows; suppliers quote, or bid in the
live room (a WebSocket carries the room's events; the page works without it, by reloading)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import func, or_, select

from bidding import room, service
from bidding.models import (
    KIND_LABELS,
    PROCEDURE_STATUS_LABELS,
    Participant,
    Procedure,
    ProcedureInvite,
    ProcedureItem,
)
from bidding.routes import room_bid
from mall import budgets, clock
from mall.auth import Principal, allow
from mall.deps import DB, Config
from mall.errors import DomainError, InvalidInput, NotFound
from mall.pages import _act, _page_no, _user, flash, pages_of, pop_form, render

PER_PAGE = 20


async def _visible(s: Any, who: Principal, p: Procedure) -> bool:
    if who.role in ("center", "regulator", "admin"):
        return True
    if who.role == "buyer":
        return p.buyer_org_id == who.org_id
    return True  # suppliers: eligibility is checked when they quote or bid


@get("/procedures", opt=allow("user"), include_in_schema=False)
async def procedures_page(
    request: Request[Any, Any, Any], db: DB, page: FromQuery[str] = "1", kind: FromQuery[str] = ""
) -> Template:
    who = _user(request)
    assert who
    pg = _page_no(page)
    stmt = select(Procedure)
    if who.role == "buyer":
        stmt = stmt.where(Procedure.buyer_org_id == who.org_id)
    elif who.role == "supplier":
        invited = select(ProcedureInvite.procedure_id).where(ProcedureInvite.supplier_org_id == who.org_id)
        stmt = stmt.where(
            Procedure.status.in_(("published", "open", "awarded", "confirmed", "failed")),
            or_(Procedure.eligibility == "category", Procedure.id.in_(invited)),
        )
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
    return render(
        request,
        "procedures.html",
        rows=rows,
        total=total,
        page=pg,
        pages=pages_of(total, PER_PAGE),
        kind=kind,
        kinds=KIND_LABELS,
        labels=PROCEDURE_STATUS_LABELS,
    )


@get("/procedures/new", opt=allow("buyer"), include_in_schema=False)
async def new_procedure_page(
    request: Request[Any, Any, Any], db: DB, kind: FromQuery[str] = "inquiry", agreement: FromQuery[str] = ""
) -> Template:
    who = _user(request)
    assert who and who.org_id
    under = None
    async with db.read() as s:
        lines = await budgets.lines_of(s, who.org_id)
        if agreement:
            from catalog import agreements

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
        "min_participants": "3",
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
    )


@post("/procedures/new", opt=allow("buyer"), include_in_schema=False)
async def create_procedure(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = _user(request)
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
            min_participants = int(data.get("min_participants") or 3)
            agreement_id = uuid.UUID(data["agreement_id"]) if data.get("agreement_id") else None
        except ValueError:
            raise InvalidInput("请选择预算指标并填写最少供应商数", code="procedure_invalid") from None
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
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        request.session["form"] = {k: v for k, v in data.items() if k != "_csrf_token"}
        return Redirect("/procedures/new", status_code=303)
    flash(request, f"已发布{KIND_LABELS[p.kind]}「{p.title}」，项目编号 {p.number}")
    return Redirect(f"/procedures/{p.id}", status_code=303)


@get("/procedures/{procedure_id:uuid}", opt=allow("user"), include_in_schema=False)
async def procedure_page(
    request: Request[Any, Any, Any], procedure_id: FromPath[uuid.UUID], db: DB
) -> Template:
    who = _user(request)
    assert who
    async with db.read() as s:
        p = await s.get(Procedure, procedure_id)
        if p is None or not await _visible(s, who, p):
            raise NotFound("采购项目不存在", code="procedure_not_found")
        items = list(
            (
                await s.execute(
                    select(ProcedureItem)
                    .where(ProcedureItem.procedure_id == p.id)
                    .order_by(ProcedureItem.line_no)
                )
            ).scalars()
        )
        snap = await room.snapshot(s, p, who.org_id if who.role == "supplier" else None)
    view = await service.view_for(db, who, procedure_id)
    return render(
        request,
        "procedure.html",
        p=p,
        items=items,
        view=view,
        snap=snap,
        snap_json=json.dumps(snap, ensure_ascii=False),
        labels=PROCEDURE_STATUS_LABELS,
        kinds=KIND_LABELS,
        is_winner=who.role == "supplier" and p.status == "awarded" and p.awarded_supplier_id == who.org_id,
        can_reject=who.role == "buyer" and p.kind == "inquiry" and p.status == "awarded",
        now=clock.now(),
    )


@post("/procedures/{procedure_id:uuid}/quote", opt=allow("supplier"), include_in_schema=False)
async def quote(
    request: Request[Any, Any, Any],
    procedure_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = _user(request)
    assert who
    if data.get("action") == "withdraw":
        return await _act(
            request,
            lambda: service.withdraw(db, who, procedure_id),
            "报价已撤回",
            f"/procedures/{procedure_id}",
        )
    return await _act(
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
    who = _user(request)
    assert who
    return await _act(
        request,
        lambda: room_bid(request.app, db, settings, who, procedure_id, data.get("amount", "")),
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
    who = _user(request)
    assert who
    r = await room_bid(request.app, db, settings, who, procedure_id, data.get("amount", ""))
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
    who = _user(request)
    assert who
    if data.get("action") == "decline":
        return await _act(
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
    who = _user(request)
    assert who
    try:
        label_no = int(data.get("label_no", ""))
    except ValueError:
        label_no = 0
    return await _act(
        request,
        lambda: service.reject_quote(db, who, procedure_id, label_no, data.get("reason", "")),
        "已认定该报价无效，排名已重新计算",
        f"/procedures/{procedure_id}",
    )


@websocket("/procedures/{procedure_id:uuid}/room", opt=allow("user"), include_in_schema=False)
async def room_socket(socket: WebSocket[Any, Any, Any], procedure_id: FromPath[uuid.UUID]) -> None:
    """On connect: a snapshot (with the caller's own label, rank and bids); then every event of the
    room (each one the room's whole public state: the client keeps the newest version)."""
    who: Principal | None = socket.scope.get("user")
    app = socket.app
    db = app.state.db
    await socket.accept()
    if who is None:
        await socket.close(code=4401)
        return
    async with db.read() as s:
        p = await s.get(Procedure, procedure_id)
        if p is None or not await _visible(s, who, p):
            await socket.close(code=4404)
            return
    channels = app.state.channels
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

        tasks = [asyncio.create_task(forward()), asyncio.create_task(until_closed())]
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
