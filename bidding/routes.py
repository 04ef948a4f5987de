"""The JSON API of inquiries and reverse auctions."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from bidding import award, offers, publish, room, views
from bidding.award import ConfirmIn
from bidding.models import KIND_LABELS, PROCEDURE_STATUS_LABELS
from bidding.offers import AmountIn
from bidding.publish import ProcedureIn
from mall.core import clock
from mall.core.auth import Principal
from mall.core.clock import rfc3339
from mall.core.db import Database, retried
from mall.core.guards import allow
from mall.core.money import money_str, quantity_str
from mall.web.deps import UserCall
from mall.web.helpers import PageNo, PerPage

TAGS = ["询价与竞价"]
SUPPLIERS = allow("supplier")


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
    credit: str = ""  # the supplier's credit score (mall.credit), for the buyer and overseers, after opening
    # the 小微企业 price deduction: the price ranked at (the deal is at `amount`), and why
    evaluated_amount: str | None = None
    deduction: str = ""


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


class ProcedureSummary(msgspec.Struct):
    """A procedure in a list: its notice, never its offers."""

    id: uuid.UUID
    number: str
    kind: str
    kind_label: str
    status: str
    status_label: str
    title: str
    region_code: str
    ceiling: str
    starts_at: str
    ends_at: str


class ProcedurePage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[ProcedureSummary]


class BidOut(msgspec.Struct):
    accepted: bool
    seq: int | None
    amount: str | None
    lowest: str | None
    ends_at: str


class ConfirmOut(msgspec.Struct):
    order_id: uuid.UUID
    order_no: str
    contract_no: str | None
    total_amount: str


def _offers(shown: list[Any] | None) -> list[OfferOut] | None:
    if shown is None:
        return None
    return [
        OfferOut(
            v.label,
            v.amount,
            rfc3339(v.at),
            v.status,
            v.mine,
            list(v.flags),
            v.credit,
            v.evaluated,
            v.deduction,
        )
        for v in shown
    ]


@retried  # a read: safe to run again (the write before it has committed)
async def _out(db: Database, who: Principal, procedure_id: uuid.UUID) -> ProcedureOut:
    view = await views.view_for(db, who, procedure_id)  # 404 unless `who` may see the procedure
    async with db.read() as s:
        p = await views.visible(s, who, procedure_id)
        items = await views.items_of(s, p.id)
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


class ProcedureApi(Controller):
    path = "/api/procedures"
    tags = TAGS

    @post("/", opt=allow("buyer"), status_code=201, summary="发布在线询价或反向竞价")
    async def create_procedure(self, call: UserCall, data: JSONBody[ProcedureIn]) -> ProcedureOut:
        p = await publish.create_under(call.db, call.settings, call.me, data)
        return await _out(call.db, call.me, p.id)

    @get(
        "/",
        opt=allow("user"),
        summary="项目列表：可按类型、状态、品目、区划筛选，分页，新发布的在前",
        description=(
            "与项目详情同一可见范围：采购人看本单位的，供应商看本品目公开或受邀参与的，"
            "集中采购机构与监管部门看全部。状态按显示状态筛选（open 含已开始但尚无报价的项目）；"
            "列表只含公告信息，不含任何报价。"
        ),
    )
    async def list_procedures(
        self,
        call: UserCall,
        kind: FromQuery[str] = "",
        status: FromQuery[str] = "",
        category: FromQuery[str] = "",
        region: FromQuery[str] = "",
        page: PageNo = 1,
        per_page: PerPage = 20,
    ) -> ProcedurePage:
        f = views.list_filter(kind, status, category, region)
        async with call.db.read() as s:
            total, rows = await views.list_visible(s, call.me, f, page, per_page)
        now = clock.now()
        items = []
        for p in rows:
            shown = views.shown_status(p, now)
            items.append(
                ProcedureSummary(
                    id=p.id,
                    number=p.number,
                    kind=p.kind,
                    kind_label=KIND_LABELS[p.kind],
                    status=shown,
                    status_label=PROCEDURE_STATUS_LABELS.get(shown, shown),
                    title=p.title,
                    region_code=p.region_code,
                    ceiling=money_str(p.ceiling),
                    starts_at=rfc3339(p.starts_at),
                    ends_at=rfc3339(p.ends_at),
                )
            )
        return ProcedurePage(total, page, per_page, items)

    @get(
        "/{procedure_id:uuid}",
        opt=allow("user"),
        summary="项目详情：截止前报价密封，只能看到本单位的报价",
        description="采购人本单位、集中采购机构、监管部门与平台管理员可见；供应商可见本品目公开或受邀参与的项目；其他人得到 404。",
    )
    async def get_procedure(self, call: UserCall, procedure_id: FromPath[uuid.UUID]) -> ProcedureOut:
        return await _out(call.db, call.me, procedure_id)

    @post(
        "/{procedure_id:uuid}/quotes",
        opt=SUPPLIERS,
        status_code=201,
        summary="提交或修改密封报价（以最后一次为准）",
    )
    async def submit_quote(
        self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: JSONBody[AmountIn]
    ) -> ProcedureOut:
        await offers.quote(call.db, call.me, procedure_id, data.amount)
        return await _out(call.db, call.me, procedure_id)

    @delete("/{procedure_id:uuid}/quotes", opt=SUPPLIERS, status_code=200, summary="截止前撤回报价")
    async def withdraw_quote(self, call: UserCall, procedure_id: FromPath[uuid.UUID]) -> ProcedureOut:
        await offers.withdraw(call.db, call.me, procedure_id)
        return await _out(call.db, call.me, procedure_id)

    @post(
        "/{procedure_id:uuid}/bids",
        opt=SUPPLIERS,
        status_code=201,
        summary="竞价出价（不符合规则的出价返回 422 并记入出价日志）",
        description="同一用户在同一竞价室一分钟内被拒绝的出价达到上限后，出价返回 429（too_many_refused_bids），不再记录。",
    )
    async def place_bid(
        self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: JSONBody[AmountIn]
    ) -> BidOut:
        r = await room.bid_from(call.request, call.db, call.settings, call.me, procedure_id, data.amount)
        return BidOut(
            r.accepted,
            r.seq,
            None if r.amount is None else money_str(r.amount),
            None if r.lowest is None else money_str(r.lowest),
            rfc3339(r.ends_at),
        )

    @post(
        "/{procedure_id:uuid}/award/confirm",
        opt=SUPPLIERS,
        status_code=201,
        summary="中选供应商确认成交（生成订单与电子合同，公开成交记录）",
    )
    async def confirm_award(
        self, call: UserCall, procedure_id: FromPath[uuid.UUID], data: JSONBody[ConfirmIn]
    ) -> ConfirmOut:
        order = await award.confirm_award(call.db, call.me, procedure_id, data)
        return ConfirmOut(order.id, order.order_no, order.contract_no, money_str(order.total_amount))

    @post(
        "/{procedure_id:uuid}/award/decline",
        opt=SUPPLIERS,
        status_code=200,
        summary="中选供应商放弃成交（顺延给下一名）",
    )
    async def decline_award(self, call: UserCall, procedure_id: FromPath[uuid.UUID]) -> ProcedureOut:
        await award.decline_award(call.db, call.me, procedure_id)
        return await _out(call.db, call.me, procedure_id)


ROUTES = [ProcedureApi]
