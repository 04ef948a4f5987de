"""The JSON API of inquiries and reverse auctions."""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody
from sqlalchemy import select

from bidding import room, rules, service, views
from bidding.models import KIND_LABELS, PROCEDURE_STATUS_LABELS, Procedure, ProcedureItem, ProcedureKind
from mall.core import clock, fields, netaddr
from mall.core.auth import allow
from mall.core.clock import rfc3339
from mall.core.errors import InvalidInput, Unavailable
from mall.core.money import money_str, quantity_str
from mall.web.deps import DB, Config
from mall.web.helpers import me_of

log = logging.getLogger("mall.rooms")


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    category_code: fields.CategoryCode
    item_name: fields.Name
    quantity: fields.Quantity
    unit: fields.Unit
    spec: fields.Spec = ""


class ProcedureIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Annotated[
        str,
        msgspec.Meta(max_length=fields.CHOICE_MAX, description="inquiry（在线询价）| auction（反向竞价）"),
    ]
    title: fields.Name
    budget_line_id: uuid.UUID
    ceiling: fields.Amount
    ends_at: datetime
    items: Annotated[list[ItemIn], msgspec.Meta(max_length=50)]
    starts_at: datetime | None = None  # default: now
    decrement: Annotated[str, msgspec.Meta(max_length=fields.AMOUNT_MAX)] = "0"  # yuan, or percent
    decrement_is_percent: bool = False
    beat_lowest: bool = False
    # at least the platform's minimum (settings.min_participants), which is the default
    min_participants: int | None = None
    # supplier organization ids (at least min_participants active suppliers); omitted: suppliers live in the 品目
    invited: Annotated[list[uuid.UUID], msgspec.Meta(max_length=1000)] | None = None
    agreement_id: uuid.UUID | None = None  # 二次竞价: only this framework agreement's entered suppliers


class ItemOut(msgspec.Struct):
    line_no: int
    category_code: str
    item_name: str
    spec: str
    quantity: str
    unit: str


class OfferOut(msgspec.Struct):
    label: str
    amount: str | None
    at: str
    status: str
    mine: bool
    flags: list[str] = []  # abnormally-low triggers, after opening


class ProcedureOut(msgspec.Struct):
    id: uuid.UUID
    number: str
    kind: str
    kind_label: str
    status: str
    status_label: str
    title: str
    ceiling: str
    starts_at: str
    ends_at: str
    extensions: int
    min_participants: int
    items: list[ItemOut]
    result_note: str
    sealed: bool
    mine: list[OfferOut]
    lowest: str | None = None
    my_rank: int | None = None
    bidders: int | None = None
    ranked: list[OfferOut] | None = None


def _offers(views: list[Any] | None) -> list[OfferOut] | None:
    if views is None:
        return None
    return [OfferOut(v.label, v.amount, rfc3339(v.at), v.status, v.mine, list(v.flags)) for v in views]


async def _out(db: Any, who: Any, procedure_id: uuid.UUID) -> ProcedureOut:
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
    return ProcedureOut(
        id=p.id,
        number=p.number,
        kind=p.kind,
        kind_label=KIND_LABELS[p.kind],
        status=view["status"],
        status_label=PROCEDURE_STATUS_LABELS.get(view["status"], view["status"]),
        title=p.title,
        ceiling=money_str(p.ceiling),
        starts_at=rfc3339(p.starts_at),
        ends_at=rfc3339(view["ends_at"]),
        extensions=p.extensions,
        min_participants=p.min_participants,
        items=[
            ItemOut(i.line_no, i.category_code, i.item_name, i.spec, quantity_str(i.quantity), i.unit)
            for i in items
        ],
        result_note=p.result_note,
        sealed=view["sealed"],
        mine=_offers(view["mine"]) or [],
        lowest=view.get("lowest"),
        my_rank=view.get("my_rank"),
        bidders=view.get("bidders"),
        ranked=_offers(view.get("ranked")),
    )


@post(
    "/api/procedures",
    opt=allow("buyer"),
    status_code=201,
    tags=["询价与竞价"],
    summary="发布在线询价或反向竞价",
)
async def create_procedure(
    request: Request[Any, Any, Any], data: JSONBody[ProcedureIn], db: DB, settings: Config
) -> ProcedureOut:
    who = me_of(request)
    for t in (data.ends_at, data.starts_at):
        if t is not None and t.tzinfo is None:
            raise InvalidInput("时间须带时区，如 2026-12-01T10:00:00+08:00", code="invalid_parameter")
    draft = service.ProcedureDraft(
        kind=data.kind,
        title=data.title,
        budget_line_id=data.budget_line_id,
        ceiling=data.ceiling,
        starts_at=data.starts_at or clock.now(),
        ends_at=data.ends_at,
        items=[
            service.ItemDraft(i.category_code, i.item_name, i.spec, i.quantity, i.unit) for i in data.items
        ],
        decrement=data.decrement,
        decrement_is_percent=data.decrement_is_percent,
        beat_lowest=data.beat_lowest,
        min_participants=data.min_participants,
        invited=data.invited,
        agreement_id=data.agreement_id,
    )
    p = await service.create(
        db,
        who,
        draft,
        open_tender_threshold=settings.open_tender_threshold,
        region_code=settings.region_code,
        min_participants=settings.min_participants,
    )
    return await _out(db, who, p.id)


@get(
    "/api/procedures/{procedure_id:uuid}",
    opt=allow("user"),
    tags=["询价与竞价"],
    summary="项目详情：截止前报价密封，只能看到本单位的报价",
    description="采购人本单位、集中采购机构、监管部门与平台管理员可见；供应商可见本品目公开或受邀参与的项目；其他人得到 404。",
)
async def get_procedure(
    request: Request[Any, Any, Any], procedure_id: FromPath[uuid.UUID], db: DB
) -> ProcedureOut:
    return await _out(db, me_of(request), procedure_id)


class AmountIn(msgspec.Struct, forbid_unknown_fields=True):
    # Free-form within its limit: a malformed amount is an offer the rules refuse and the bid log keeps.
    amount: fields.BidText


@post(
    "/api/procedures/{procedure_id:uuid}/quotes",
    opt=allow("supplier"),
    status_code=201,
    tags=["询价与竞价"],
    summary="提交或修改密封报价（以最后一次为准）",
)
async def submit_quote(
    request: Request[Any, Any, Any], procedure_id: FromPath[uuid.UUID], data: JSONBody[AmountIn], db: DB
) -> ProcedureOut:
    who = me_of(request)
    await service.quote(db, who, procedure_id, data.amount)
    return await _out(db, who, procedure_id)


@delete(
    "/api/procedures/{procedure_id:uuid}/quotes",
    opt=allow("supplier"),
    status_code=200,
    tags=["询价与竞价"],
    summary="截止前撤回报价",
)
async def withdraw_quote(
    request: Request[Any, Any, Any], procedure_id: FromPath[uuid.UUID], db: DB
) -> ProcedureOut:
    who = me_of(request)
    await service.withdraw(db, who, procedure_id)
    return await _out(db, who, procedure_id)


class BidOut(msgspec.Struct):
    accepted: bool
    seq: int | None
    amount: str | None
    lowest: str | None
    ends_at: str


@post(
    "/api/procedures/{procedure_id:uuid}/bids",
    opt=allow("supplier"),
    status_code=201,
    tags=["询价与竞价"],
    summary="竞价出价（不符合规则的出价返回 422 并记入出价日志）",
    description="同一用户在同一竞价室一分钟内被拒绝的出价达到上限后，出价返回 429（too_many_refused_bids），不再记录。",
)
async def place_bid(
    request: Request[Any, Any, Any],
    procedure_id: FromPath[uuid.UUID],
    data: JSONBody[AmountIn],
    db: DB,
    settings: Config,
) -> BidOut:
    r = await room_bid(
        request.app,
        db,
        settings,
        me_of(request),
        procedure_id,
        data.amount,
        exempt=limit_exempt(request, settings),
    )
    return BidOut(
        r.accepted,
        r.seq,
        None if r.amount is None else money_str(r.amount),
        None if r.lowest is None else money_str(r.lowest),
        rfc3339(r.ends_at),
    )


def limit_exempt(request: Request[Any, Any, Any], settings: Any) -> bool:
    """Whether the caller's address is exempt from rate limits (the benchmarks' own loopback)."""
    return netaddr.exempt(
        netaddr.client_ip(request.scope, settings.trusted_proxies), settings.rate_limit_exempt
    )


async def room_bid(
    app: Any, db: Any, settings: Any, who: Any, procedure_id: uuid.UUID, amount: str, *, exempt: bool = False
) -> Any:
    """A bid under the room's Redis lock (fencing token to the database), then the event to watchers.
    Without Redis the database alone still arbitrates, and nobody is told live. A user whose bids in
    this room were refused `bid_refusals_per_minute` times in the last minute gets 429 before taking
    the lock (unless `exempt`), so a flood of bad bids neither slows the room nor fills its log."""
    from redis.exceptions import RedisError

    amount = service.typed_amount(amount)  # text the bid log cannot keep is not a bid at all
    prefix = f"mall:{settings.queue_name}"
    limit = None if exempt else settings.bid_refusals_per_minute
    redis = app.state.room_redis
    if limit is not None:
        try:
            if await room.refusals(redis, prefix, procedure_id, who.user_id) >= limit:
                raise service.too_many_refusals()
        except (RedisError, OSError):
            pass  # the database still counts, under the procedure's row lock
    try:
        async with room.local_lock(procedure_id):  # one contender per process for the Redis lock
            result = await _room_bid_locked(app, db, who, procedure_id, amount, prefix, limit)
    except rules.BidRefused:
        if limit is not None:
            with contextlib.suppress(RedisError, OSError):
                await room.note_refusal(redis, prefix, procedure_id, who.user_id)
        raise
    # Outside the lock: the next bidder goes on while this event goes out. Events carry the room's
    # version and the whole public state; a client keeps the newest, so their order does not matter.
    await publish_room(app, db, procedure_id)
    return result


async def _room_bid_locked(
    app: Any, db: Any, who: Any, procedure_id: uuid.UUID, amount: str, prefix: str, limit: int | None
) -> Any:
    from redis.exceptions import RedisError

    try:
        for attempt in range(2):
            try:
                async with room.room_lock(app.state.room_redis, prefix, procedure_id) as token:
                    result = await service.bid(db, who, procedure_id, amount, fence=token, max_refusals=limit)
                break
            except service.StaleFence as stale:
                if attempt:
                    raise Unavailable("竞价室繁忙，请稍后重试", code="room_busy") from None
                await room.raise_fence(app.state.room_redis, prefix, procedure_id, stale.current)
    except room.RoomBusy:
        raise Unavailable("竞价室繁忙，请稍后重试", code="room_busy") from None
    except (RedisError, OSError):
        log.warning("room lock unavailable for %s; the database arbitrates alone", procedure_id)
        result = await service.bid(db, who, procedure_id, amount, max_refusals=limit)
    return result


async def publish_room(app: Any, db: Any, procedure_id: uuid.UUID) -> None:
    try:
        async with db.read() as s:
            p = await s.get(Procedure, procedure_id)
            if p is None or p.kind != ProcedureKind.AUCTION:
                return  # only an auction has a room; an inquiry's version would count its quotes
            snap = await room.snapshot(s, p, None)
        # published_at: when this process handed the event to the channel (server wall clock)
        event = {**room.event_of(snap), "published_at": rfc3339(datetime.now(UTC))}
        await app.state.channels.wait_published(event, room.channel_of(procedure_id))
    except Exception as exc:  # watchers re-sync on their next event or reconnect
        log.warning("room event for %s not published: %s", procedure_id, exc)


LineNo = Annotated[str, msgspec.Meta(max_length=3, description="明细序号")]


class ConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    # line_no -> unit price, for procedures with several items
    unit_prices: Annotated[dict[LineNo, fields.Amount], fields.AMOUNT_VALUES] = {}


class ConfirmOut(msgspec.Struct):
    order_id: uuid.UUID
    order_no: str
    contract_no: str | None
    total_amount: str


@post(
    "/api/procedures/{procedure_id:uuid}/award/confirm",
    opt=allow("supplier"),
    status_code=201,
    tags=["询价与竞价"],
    summary="中选供应商确认成交（生成订单与电子合同，公开成交记录）",
)
async def confirm_award(
    request: Request[Any, Any, Any], procedure_id: FromPath[uuid.UUID], data: JSONBody[ConfirmIn], db: DB
) -> ConfirmOut:
    try:
        prices = {int(k): v for k, v in data.unit_prices.items()}
    except ValueError:
        raise InvalidInput("unit_prices 的键应为明细序号", code="invalid_parameter") from None
    order = await service.confirm_award(db, me_of(request), procedure_id, prices)
    return ConfirmOut(order.id, order.order_no, order.contract_no, money_str(order.total_amount))


@post(
    "/api/procedures/{procedure_id:uuid}/award/decline",
    opt=allow("supplier"),
    status_code=200,
    tags=["询价与竞价"],
    summary="中选供应商放弃成交（顺延给下一名）",
)
async def decline_award(
    request: Request[Any, Any, Any], procedure_id: FromPath[uuid.UUID], db: DB
) -> ProcedureOut:
    who = me_of(request)
    await service.decline_award(db, who, procedure_id)
    return await _out(db, who, procedure_id)


ROUTES = [
    create_procedure,
    get_procedure,
    submit_quote,
    withdraw_quote,
    place_bid,
    confirm_award,
    decline_award,
]
