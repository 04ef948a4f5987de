"""The JSON API of framework agreements (协议供货) and designated services (定点服务)."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from catalog import agreement_orders, agreement_queries, agreement_setup
from catalog import designated as dd
from catalog.models import Agreement, DesignationStatus
from mall import orders
from mall.core import fields
from mall.core.auth import Principal
from mall.core.clock import rfc3339
from mall.core.db import retried
from mall.core.errors import Forbidden
from mall.core.guards import PUBLIC, allow
from mall.core.money import money_str
from mall.orders.models import Order
from mall.structs import OrderOut, ReasonIn
from mall.web.deps import DB, UserCall, Viewer
from mall.web.helpers import IdemKey

WATCHERS = ("center", "regulator")
AGREEMENT_TAGS = ["协议供货"]
DESIGNATED_TAGS = ["定点服务"]

# ---------------------------------------------------------------- agreements


class EnteredOut(msgspec.Struct):
    supplier_org_id: uuid.UUID
    supplier_name: str
    credit_code: str
    supplementary: bool
    entered_at: str


class ProductOut(msgspec.Struct):
    id: uuid.UUID
    supplier_org_id: uuid.UUID
    supplier_name: str
    name: str
    brand: str
    spec_model: str
    category_code: str
    unit: str
    price: str
    list_price: str | None
    discount_rate: str | None


class AgreementOut(msgspec.Struct):
    id: uuid.UUID
    number: str
    title: str
    kind: str
    category_code: str
    category_name: str
    starts_on: str
    ends_on: str
    direct_limit: str
    status: str
    status_label: str
    suppliers: list[EnteredOut] = []
    products: list[ProductOut] = []

    @classmethod
    def brief(cls, a: Agreement) -> AgreementOut:
        """The agreement without its suppliers and products, as a list shows it."""
        return cls(**{k: v for k, v in agreement_queries.as_dict(a).items() if k != "id"}, id=a.id)


class SummaryRowOut(msgspec.Struct):
    supplier_name: str
    orders: int
    amount: str


class SummaryOut(msgspec.Struct):
    agreement_id: uuid.UUID
    number: str
    status: str
    orders: int
    amount: str
    by_supplier: list[SummaryRowOut]


@retried  # a read: safe to run again (the write before it has committed)
async def _agreement_out(db: DB, who: Principal, agreement_id: uuid.UUID) -> AgreementOut:
    async with db.read() as s:
        a = await agreement_queries.visible(s, who, agreement_id)
        out = AgreementOut.brief(a)
        out.suppliers = [
            EnteredOut(e.supplier_org_id, org.name, org.credit_code, e.supplementary, rfc3339(e.entered_at))
            for e, org in await agreement_queries.entered(s, a.id)
        ]
        out.products = [
            ProductOut(
                p.id,
                p.supplier_org_id,
                name,
                p.name,
                p.brand,
                p.spec_model,
                p.category_code,
                p.unit,
                money_str(p.price),
                None if p.list_price is None else money_str(p.list_price),
                None if p.discount_rate is None else str(p.discount_rate),
            )
            for p, name in await agreement_queries.products_of(s, a.id)
        ]
    return out


async def _placed(db: DB, who: Principal, order: Order, replayed: bool) -> Response[OrderOut]:
    """The order as its buyer sees it: 201 when made now, 200 when a retried key answers with it."""
    return Response(await _order_view(db, who, order.id), status_code=200 if replayed else 201)


@retried  # a read: safe to run again (the order has committed)
async def _order_view(db: DB, who: Principal, order_id: uuid.UUID) -> OrderOut:
    async with db.read() as s:
        return OrderOut.of(await orders.get_order(s, who, order_id))


class AgreementApi(Controller):
    path = "/api"
    tags = AGREEMENT_TAGS

    @get("/agreements", opt=allow("user"), summary="框架协议列表（草稿仅本中心可见）")
    async def list_agreements(self, call: UserCall, status: FromQuery[str] = "") -> list[AgreementOut]:
        agreement_queries.check_status(status)
        async with call.db.read() as s:
            rows = await agreement_queries.listed(s, call.me, status)
        return [AgreementOut.brief(a) for a in rows]

    @post("/agreements", opt=allow("center"), status_code=201, summary="新建框架协议（草稿）")
    async def create_agreement(
        self, call: UserCall, data: JSONBody[agreement_setup.AgreementDraft]
    ) -> AgreementOut:
        a = await agreement_setup.create(call.db, call.settings, call.me, data)
        return await _agreement_out(call.db, call.me, a.id)

    @get("/agreements/{agreement_id:uuid}", opt=allow("user"), summary="框架协议：入围供应商与协议产品")
    async def agreement_detail(self, call: UserCall, agreement_id: FromPath[uuid.UUID]) -> AgreementOut:
        return await _agreement_out(call.db, call.me, agreement_id)

    @post(
        "/agreements/{agreement_id:uuid}/suppliers",
        opt=allow("center"),
        status_code=201,
        summary="增加入围供应商（生效后为补充入围）",
    )
    async def add_agreement_supplier(
        self, call: UserCall, agreement_id: FromPath[uuid.UUID], data: JSONBody[agreement_setup.SupplierEntry]
    ) -> AgreementOut:
        await agreement_setup.add_supplier(call.db, call.me, agreement_id, data.credit_code)
        return await _agreement_out(call.db, call.me, agreement_id)

    @post(
        "/agreements/{agreement_id:uuid}/products",
        opt=allow("center"),
        status_code=201,
        summary="增加协议产品（协议价，或报价×折扣率）",
    )
    async def add_agreement_product(
        self, call: UserCall, agreement_id: FromPath[uuid.UUID], data: JSONBody[agreement_setup.ProductDraft]
    ) -> AgreementOut:
        await agreement_setup.add_product(call.db, call.me, agreement_id, data)
        return await _agreement_out(call.db, call.me, agreement_id)

    @post("/agreements/{agreement_id:uuid}/activate", opt=allow("center"), status_code=200)
    async def activate_agreement(self, call: UserCall, agreement_id: FromPath[uuid.UUID]) -> AgreementOut:
        await agreement_setup.activate(call.db, call.me, agreement_id)
        return await _agreement_out(call.db, call.me, agreement_id)

    @post("/agreements/{agreement_id:uuid}/terminate", opt=allow("center"), status_code=200)
    async def terminate_agreement(
        self, call: UserCall, agreement_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn]
    ) -> AgreementOut:
        await agreement_setup.terminate(call.db, call.me, agreement_id, data.reason)
        return await _agreement_out(call.db, call.me, agreement_id)

    @get(
        "/agreements/{agreement_id:uuid}/summary",
        opt=allow(*WATCHERS),
        summary="成交结果汇总（协议下全部成交订单）",
    )
    async def agreement_summary(self, call: UserCall, agreement_id: FromPath[uuid.UUID]) -> SummaryOut:
        async with call.db.read() as s:
            a = await agreement_queries.visible(s, call.me, agreement_id)
            sm = await agreement_queries.summary(s, a.id)
        return SummaryOut(
            a.id,
            a.number,
            a.status,
            sm.orders,
            money_str(sm.amount),
            [SummaryRowOut(r.supplier_name, r.orders, money_str(r.amount)) for r in sm.by_supplier],
        )

    @post(
        "/agreement-orders",
        opt=allow("buyer"),
        summary="协议供货直接选定下单（不高于协议价）；需 Idempotency-Key 请求头",
    )
    async def place_agreement_order(
        self, call: UserCall, data: JSONBody[agreement_orders.AgreementOrderIn], idempotency_key: IdemKey
    ) -> Response[OrderOut]:
        order, replayed = await agreement_orders.place_order(
            call.db, call.settings, call.me, data.keyed(idempotency_key)
        )
        return await _placed(call.db, call.me, order, replayed)


# ---------------------------------------------------------------- designated services


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    approve: bool
    note: fields.Reason = ""  # required to refuse


class PriceItemOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    spec: str
    unit: str
    price: str


class DesignationOut(msgspec.Struct):
    id: uuid.UUID
    supplier_name: str
    category_code: str
    region_code: str
    status: str
    status_label: str
    service_address: str
    items: list[PriceItemOut]


@retried  # a read: safe to run again (the write before it has committed)
async def _designation_out(db: DB, designation_id: uuid.UUID) -> DesignationOut:
    async with db.read() as s:
        return _designation(await dd.get(s, designation_id))


def _designation(f: dd.Found) -> DesignationOut:
    d = dd.as_dict(f)
    return DesignationOut(
        f.designation.id,
        d["supplier_name"],
        d["category_code"],
        d["region_code"],
        d["status"],
        d["status_label"],
        d["service_address"],
        [PriceItemOut(i.id, i.name, i.spec, i.unit, money_str(i.price)) for i in f.items],
    )


class DesignatedApi(Controller):
    path = "/api"
    tags = DESIGNATED_TAGS

    @get(
        "/designated",
        opt=PUBLIC,
        summary="定点供应商与服务价格（公开；按区域、服务品目筛选）",
        description=(
            "任何人可查询定点中的供应商及其价格。status=applied 等其他状态仅集中采购机构与财政监管可查；"
            "供应商以 mine=true 查询本单位各状态的定点资格与申请。"
        ),
    )
    async def find_designated(
        self,
        viewer: Viewer,
        db: DB,
        region: FromQuery[str] = "",
        category: FromQuery[str] = "",
        status: FromQuery[str] = DesignationStatus.APPROVED,
        mine: FromQuery[bool] = False,
    ) -> list[DesignationOut]:
        role = viewer.role if viewer is not None else ""
        if status != DesignationStatus.APPROVED and role not in WATCHERS and not mine:
            status = DesignationStatus.APPROVED  # applications are the center's business
        async with db.read() as s:
            if mine:
                if viewer is None or role != "supplier" or viewer.org_id is None:
                    raise Forbidden("只有供应商可以查询本单位的定点资格与申请", code="forbidden")
                found = []
                for st in DesignationStatus:
                    found += await dd.find(
                        s,
                        region_code=region,
                        category_code=category,
                        status=st,
                        supplier_org_id=viewer.org_id,
                    )
            else:
                found = await dd.find(s, region_code=region, category_code=category, status=status)
        return [_designation(f) for f in found]

    @post(
        "/designated/applications",
        opt=allow("supplier"),
        status_code=201,
        summary="供应商申请定点（7个工作日内审核）",
    )
    async def apply_designation(self, call: UserCall, data: JSONBody[dd.ApplicationIn]) -> DesignationOut:
        d = await dd.apply(
            call.db,
            call.settings,
            call.me,
            data.category_code,
            data.region_code,
            data.prices,
            data.service_address,
        )
        return await _designation_out(call.db, d.id)

    @post("/designated", opt=allow("center"), status_code=201, summary="集中采购机构直接确定定点供应商")
    async def designate_supplier(self, call: UserCall, data: JSONBody[dd.DesignateIn]) -> DesignationOut:
        d = await dd.designate(
            call.db,
            call.me,
            data.credit_code,
            data.category_code,
            data.region_code,
            data.prices,
            data.service_address,
        )
        return await _designation_out(call.db, d.id)

    @post("/designated/{designation_id:uuid}/review", opt=allow("center"), status_code=200)
    async def review_designation(
        self, call: UserCall, designation_id: FromPath[uuid.UUID], data: JSONBody[ReviewIn]
    ) -> DesignationOut:
        await dd.review(call.db, call.me, designation_id, data.approve, data.note)
        return await _designation_out(call.db, designation_id)

    @post("/designated/{designation_id:uuid}/revoke", opt=allow("center"), status_code=200)
    async def revoke_designation(
        self, call: UserCall, designation_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn]
    ) -> DesignationOut:
        await dd.revoke(call.db, call.me, designation_id, data.reason)
        return await _designation_out(call.db, designation_id)

    @post("/service-orders", opt=allow("buyer"), summary="定点服务下单；需 Idempotency-Key 请求头")
    async def place_service_order(
        self, call: UserCall, data: JSONBody[dd.ServiceOrderIn], idempotency_key: IdemKey
    ) -> Response[OrderOut]:
        order, replayed = await dd.place_order(call.db, call.settings, call.me, data.keyed(idempotency_key))
        return await _placed(call.db, call.me, order, replayed)


ROUTES = [AgreementApi, DesignatedApi]
