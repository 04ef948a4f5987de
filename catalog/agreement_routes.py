"""The JSON API of framework agreements (协议供货) and designated services (定点服务)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from catalog import agreements as ag
from catalog import designated as dd
from mall import orders
from mall.core import fields
from mall.core.auth import allow
from mall.core.clock import rfc3339
from mall.core.errors import InvalidInput, NotFound
from mall.core.money import money_str
from mall.structs import OrderOut
from mall.web.deps import DB, Config
from mall.web.helpers import me_of

IdemKey = Annotated[str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)]

# ---------------------------------------------------------------- agreements


class AgreementIn(msgspec.Struct, forbid_unknown_fields=True):
    title: fields.Name
    kind: fields.Choice  # goods | services
    category_code: fields.CategoryCode
    starts_on: fields.DateText  # YYYY-MM-DD
    ends_on: fields.DateText
    direct_limit: fields.Amount = str(ag.DEFAULT_DIRECT_LIMIT)


class SupplierIn(msgspec.Struct, forbid_unknown_fields=True):
    credit_code: fields.CreditCodeText


class ProductIn(msgspec.Struct, forbid_unknown_fields=True):
    supplier_org_id: uuid.UUID
    name: fields.Name
    brand: fields.RequiredShortText
    spec_model: fields.Model
    category_code: fields.CategoryCode
    unit: fields.Unit
    price: fields.OptionalAmount = ""  # the agreement price; or
    list_price: fields.OptionalAmount = ""  # a list price and
    discount_rate: fields.Rate = ""  # a discount rate


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: fields.Reason


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


async def _agreement_out(db: Any, who: Any, agreement_id: uuid.UUID, *, full: bool = True) -> AgreementOut:
    async with db.read() as s:
        a = await ag.get(s, agreement_id)
        if not ag.visible_to(who, a):
            raise NotFound("框架协议不存在", code="agreement_not_found")
        out = AgreementOut(**{k: v for k, v in ag.as_dict(a).items() if k != "id"}, id=a.id)
        if full:
            out.suppliers = [
                EnteredOut(
                    e.supplier_org_id, org.name, org.credit_code, e.supplementary, rfc3339(e.entered_at)
                )
                for e, org in await ag.entered(s, a.id)
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
                for p, name in await ag.products_of(s, a.id)
            ]
    return out


@get("/api/agreements", opt=allow("user"), tags=["协议供货"], summary="框架协议列表（草稿仅本中心可见）")
async def list_agreements(
    request: Request[Any, Any, Any], db: DB, status: FromQuery[str] = ""
) -> list[AgreementOut]:
    from sqlalchemy import select

    who = me_of(request)
    if status and status not in ag.AGREEMENT_STATUS_LABELS:
        raise InvalidInput(
            f"参数 status 应为 {' | '.join(ag.AGREEMENT_STATUS_LABELS)} 之一",
            code="invalid_parameter",
            parameter="status",
        )
    async with db.read() as s:
        stmt = select(ag.Agreement).order_by(ag.Agreement.created_at.desc()).limit(200)
        if status:
            stmt = stmt.where(ag.Agreement.status == status)
        rows = [a for a in (await s.execute(stmt)).scalars() if ag.visible_to(who, a)]
    return [AgreementOut(**{k: v for k, v in ag.as_dict(a).items() if k != "id"}, id=a.id) for a in rows]


@post(
    "/api/agreements", opt=allow("center"), status_code=201, tags=["协议供货"], summary="新建框架协议（草稿）"
)
async def create_agreement(
    request: Request[Any, Any, Any], data: JSONBody[AgreementIn], db: DB, settings: Config
) -> AgreementOut:
    a = await ag.create(db, settings, me_of(request), ag.AgreementDraft(**msgspec.structs.asdict(data)))
    return await _agreement_out(db, me_of(request), a.id)


@get(
    "/api/agreements/{agreement_id:uuid}",
    opt=allow("user"),
    tags=["协议供货"],
    summary="框架协议：入围供应商与协议产品",
)
async def agreement_detail(
    request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], db: DB
) -> AgreementOut:
    return await _agreement_out(db, me_of(request), agreement_id)


@post(
    "/api/agreements/{agreement_id:uuid}/suppliers",
    opt=allow("center"),
    status_code=201,
    tags=["协议供货"],
    summary="增加入围供应商（生效后为补充入围）",
)
async def add_agreement_supplier(
    request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], data: JSONBody[SupplierIn], db: DB
) -> AgreementOut:
    await ag.add_supplier(db, me_of(request), agreement_id, data.credit_code)
    return await _agreement_out(db, me_of(request), agreement_id)


@post(
    "/api/agreements/{agreement_id:uuid}/products",
    opt=allow("center"),
    status_code=201,
    tags=["协议供货"],
    summary="增加协议产品（协议价，或报价×折扣率）",
)
async def add_agreement_product(
    request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], data: JSONBody[ProductIn], db: DB
) -> AgreementOut:
    await ag.add_product(db, me_of(request), agreement_id, ag.ProductDraft(**msgspec.structs.asdict(data)))
    return await _agreement_out(db, me_of(request), agreement_id)


@post("/api/agreements/{agreement_id:uuid}/activate", opt=allow("center"), status_code=200, tags=["协议供货"])
async def activate_agreement(
    request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], db: DB
) -> AgreementOut:
    await ag.activate(db, me_of(request), agreement_id)
    return await _agreement_out(db, me_of(request), agreement_id)


@post(
    "/api/agreements/{agreement_id:uuid}/terminate", opt=allow("center"), status_code=200, tags=["协议供货"]
)
async def terminate_agreement(
    request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn], db: DB
) -> AgreementOut:
    await ag.terminate(db, me_of(request), agreement_id, data.reason)
    return await _agreement_out(db, me_of(request), agreement_id)


@get(
    "/api/agreements/{agreement_id:uuid}/summary",
    opt=allow("center", "regulator", "admin"),
    tags=["协议供货"],
    summary="成交结果汇总（协议下全部成交订单）",
)
async def agreement_summary(
    request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], db: DB
) -> SummaryOut:
    async with db.read() as s:
        a = await ag.get(s, agreement_id)
        if not ag.visible_to(me_of(request), a):
            raise NotFound("框架协议不存在", code="agreement_not_found")
        sm = await ag.summary(s, a.id)
    return SummaryOut(
        a.id,
        a.number,
        a.status,
        sm.orders,
        money_str(sm.amount),
        [SummaryRowOut(r.supplier_name, r.orders, money_str(r.amount)) for r in sm.by_supplier],
    )


async def _placed(
    request: Request[Any, Any, Any], db: Any, order_id: uuid.UUID, replayed: bool
) -> Response[OrderOut]:
    """The order as its buyer sees it: 201 when made now, 200 when a retried key answers with it."""
    async with db.read() as s:
        body = OrderOut.of(await orders.get_order(s, me_of(request), order_id))
    return Response(body, status_code=200 if replayed else 201)


class AgreementOrderIn(msgspec.Struct, forbid_unknown_fields=True):
    product_id: uuid.UUID
    quantity: fields.QuantityText  # a malformed one: invalid_quantity, as on every way of ordering
    budget_line_id: uuid.UUID
    unit_price: fields.OptionalAmount = ""  # empty: the agreement price
    delivery_address: fields.Address = ""
    note: fields.AgreementNote = ""  # "框架协议 <number>；" is put before it


@post(
    "/api/agreement-orders",
    opt=allow("buyer"),
    tags=["协议供货"],
    summary="协议供货直接选定下单（不高于协议价）；需 Idempotency-Key 请求头",
)
async def place_agreement_order(
    request: Request[Any, Any, Any],
    data: JSONBody[AgreementOrderIn],
    db: DB,
    settings: Config,
    idempotency_key: IdemKey,
) -> Response[OrderOut]:
    req = ag.AgreementOrderRequest(**msgspec.structs.asdict(data), idempotency_key=idempotency_key)
    order, replayed = await ag.place_order(db, settings, me_of(request), req)
    return await _placed(request, db, order.id, replayed)


# ---------------------------------------------------------------- designated services


class PriceItemIn(msgspec.Struct, forbid_unknown_fields=True):
    name: fields.Name
    unit: fields.Unit
    price: fields.Amount
    spec: fields.Model = ""


class ApplicationIn(msgspec.Struct, forbid_unknown_fields=True):
    category_code: fields.CategoryCode
    region_code: fields.RegionCode
    prices: Annotated[list[PriceItemIn], msgspec.Meta(max_length=dd.MAX_PRICE_ITEMS)]
    service_address: fields.Address = ""


class DesignateIn(ApplicationIn, forbid_unknown_fields=True):
    credit_code: fields.CreditCodeText = ""


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


def _designation_out(f: dd.Found) -> DesignationOut:
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


def _prices(items: list[PriceItemIn]) -> list[dd.PriceItemDraft]:
    return [dd.PriceItemDraft(i.name, i.unit, i.price, i.spec) for i in items]


@get("/api/designated", opt=allow("user"), tags=["定点服务"], summary="定点供应商（按区域、服务品目筛选）")
async def find_designated(
    request: Request[Any, Any, Any],
    db: DB,
    region: FromQuery[str] = "",
    category: FromQuery[str] = "",
    status: FromQuery[str] = "approved",
) -> list[DesignationOut]:
    who = me_of(request)
    if status != dd.DesignationStatus.APPROVED and who.role not in ("center", "regulator", "admin"):
        status = dd.DesignationStatus.APPROVED  # applications are the center's business
    async with db.read() as s:
        found = await dd.find(s, region_code=region, category_code=category, status=status)
    return [_designation_out(f) for f in found]


@post(
    "/api/designated/applications",
    opt=allow("supplier"),
    status_code=201,
    tags=["定点服务"],
    summary="供应商申请定点（7个工作日内审核）",
)
async def apply_designation(
    request: Request[Any, Any, Any], data: JSONBody[ApplicationIn], db: DB, settings: Config
) -> DesignationOut:
    d = await dd.apply(
        db,
        settings,
        me_of(request),
        data.category_code,
        data.region_code,
        _prices(data.prices),
        data.service_address,
    )
    async with db.read() as s:
        return _designation_out(await dd.get(s, d.id))


@post(
    "/api/designated",
    opt=allow("center"),
    status_code=201,
    tags=["定点服务"],
    summary="集中采购机构直接确定定点供应商",
)
async def designate_supplier(
    request: Request[Any, Any, Any], data: JSONBody[DesignateIn], db: DB
) -> DesignationOut:
    d = await dd.designate(
        db,
        me_of(request),
        data.credit_code,
        data.category_code,
        data.region_code,
        _prices(data.prices),
        data.service_address,
    )
    async with db.read() as s:
        return _designation_out(await dd.get(s, d.id))


@post("/api/designated/{designation_id:uuid}/review", opt=allow("center"), status_code=200, tags=["定点服务"])
async def review_designation(
    request: Request[Any, Any, Any], designation_id: FromPath[uuid.UUID], data: JSONBody[ReviewIn], db: DB
) -> DesignationOut:
    await dd.review(db, me_of(request), designation_id, data.approve, data.note)
    async with db.read() as s:
        return _designation_out(await dd.get(s, designation_id))


@post("/api/designated/{designation_id:uuid}/revoke", opt=allow("center"), status_code=200, tags=["定点服务"])
async def revoke_designation(
    request: Request[Any, Any, Any], designation_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn], db: DB
) -> DesignationOut:
    await dd.revoke(db, me_of(request), designation_id, data.reason)
    async with db.read() as s:
        return _designation_out(await dd.get(s, designation_id))


class ServiceItemIn(msgspec.Struct, forbid_unknown_fields=True):
    price_item_id: uuid.UUID
    quantity: fields.QuantityText  # a malformed one: invalid_quantity, as on every way of ordering


class ServiceOrderIn(msgspec.Struct, forbid_unknown_fields=True):
    designation_id: uuid.UUID
    items: Annotated[list[ServiceItemIn], msgspec.Meta(max_length=dd.MAX_PRICE_ITEMS)]
    budget_line_id: uuid.UUID
    service_address: fields.Address = ""
    note: fields.Note = ""


@post(
    "/api/service-orders",
    opt=allow("buyer"),
    tags=["定点服务"],
    summary="定点服务下单；需 Idempotency-Key 请求头",
)
async def place_service_order(
    request: Request[Any, Any, Any],
    data: JSONBody[ServiceOrderIn],
    db: DB,
    settings: Config,
    idempotency_key: IdemKey,
) -> Response[OrderOut]:
    req = dd.ServiceOrderRequest(
        data.designation_id,
        tuple((i.price_item_id, i.quantity) for i in data.items),
        data.budget_line_id,
        idempotency_key,
        data.service_address,
        data.note,
    )
    order, replayed = await dd.place_order(db, settings, me_of(request), req)
    return await _placed(request, db, order.id, replayed)


ROUTES = [
    list_agreements,
    create_agreement,
    agreement_detail,
    add_agreement_supplier,
    add_agreement_product,
    activate_agreement,
    terminate_agreement,
    agreement_summary,
    place_agreement_order,
    find_designated,
    apply_designation,
    designate_supplier,
    review_designation,
    revoke_designation,
    place_service_order,
]
