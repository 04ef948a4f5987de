"""Point 11 (input side): every string a JSON request body carries has a documented maximum, and a
value with a NUL, with a bidi override or one character over that maximum is refused with a 400
before anything is written.

Generated from the OpenAPI document and the role matrix: every operation with a JSON body, every
string property of it (through $refs, nested objects, array items and map values), called as a role
the operation's handler allows, with an otherwise valid body whose path ids are real objects in the
states the operations expect, so the requests reach the field checks. Strings with a `format` (uuid,
date-time) are typed values msgspec decodes, not text: they are left out. A string property without
`maxLength` in the document fails the test, so a field added later without a limit is caught.

On PostgreSQL a NUL that reached the database would be refused there (DataError, answered 400 by the
database handler): the test also requires that no request got that far (nothing logged as a refusal
of the database).
"""

from __future__ import annotations

import copy
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from catalog import agreements as ag
from catalog import designated as dd
from catalog import prices
from catalog import service as catalog
from mall import cart, orders
from mall.core import clock
from mall.core.credit_code import make
from mall.core.models import Organization, OrgKind
from mall.supervision.models import OversightCase
from tests.factories import LAPTOP, PASSWORD, World
from tests.mall.test_pricewatch import open_and_asked_alerts
from tests.security.text_input import chinese, fingerprint, variants

# Who calls an operation that allows these roles (the first role the handler names decides).
CALLER = {
    "public": None,
    "user": "regulator",  # only the password change: nobody else's token is at stake if it went wrong
    "buyer": "buyer_a",
    "supplier": "supplier_x",
    "center": "center",
    "regulator": "regulator",
    "sysadmin": "sysadmin",
    "secadmin": "secadmin",
    "auditor": "auditor",
}
TYPED_FORMATS = {"uuid", "date-time", "date"}
# Every (operation, string property) pair of the API today is exercised; the floor keeps the test from
# passing by exercising nothing.
MIN_PAIRS = 124


@dataclass
class Pinned:
    """Real objects in the states the operations expect."""

    ids: dict[str, str] = field(default_factory=dict)


async def credit_code(world: World, name: str) -> str:
    async with world.db.read() as s:
        org = await s.get(Organization, world.who[name].org_id)
        assert org is not None
        return org.credit_code


async def pinned(world: World) -> Pinned:
    p = Pinned()
    sx, center, buyer = (world.who[n] for n in ("supplier_x", "center", "buyer_a"))
    margin = world.settings.price_margin
    # A placed order of buyer_a with supplier_x: confirm, decline, cancel, pay, ship… (refused first).
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        buyer,
        orders.CheckoutRequest(
            world.lines["a1"].id, "text-fields-order-1", ((world.listings["laptop"].id, "1"),)
        ),
    )
    p.ids["order_id"] = str(placed[0].id)
    p.ids["order_line"] = str(placed[0].lines[0].id)
    # The printer in buyer_a's cart (changing its quantity or accepting its price).
    await cart.add_to_cart(world.db, buyer, world.listings["printer"].id, "1")
    p.ids["cart_listing"] = str(world.listings["printer"].id)
    # A draft of supplier_x (editable), a submitted one (to review), a live one with a pending price.
    draft = await catalog.create_listing(
        world.db,
        sx,
        catalog.ListingDraft("草稿打印机", "草稿牌", "D-1", "A02021003", "台", "900.00", "900.00", "5"),
        margin=margin,
        submit=False,
    )
    p.ids["draft_listing"] = str(draft.id)
    submitted = await catalog.create_listing(
        world.db,
        sx,
        catalog.ListingDraft("待审打印机", "待审牌", "S-1", "A02021003", "台", "950.00", "950.00", "5"),
        margin=margin,
    )
    p.ids["submitted_listing"] = str(submitted.id)
    _, request = await prices.change_price(
        world.db, sx, world.listings["laptop"].id, "5000.00", "5200.00", margin=margin
    )
    assert request is not None
    p.ids["price_request"] = str(request.id)
    p.ids["live_listing"] = str(world.listings["laptop"].id)
    # An inquiry open to supplier_x (invited), with buyer_a's budget.
    others = [await world.org(f"tf_s{n}", OrgKind.SUPPLIER, f"文本测试供应商{n}") for n in range(2)]
    for kind, title, extra in (
        ("inquiry", "文本字段询价项目", {}),
        ("auction", "文本字段竞价项目", {"decrement": "10"}),
    ):
        procedure = await world.procedure(
            kind,
            title,
            invited=[sx, *others],
            ceiling="9000.00",
            item=LAPTOP,
            hours=2,
            region_code=world.settings.region_code,
            **extra,
        )
        p.ids["procedure_id" if kind == "inquiry" else "auction_id"] = str(procedure.id)
    # An agreement of the center in force, supplier_x entered with one product.
    a = await world.agreement("打印机协议供货", "A02021003", days=100)
    codes = {n: await credit_code(world, n) for n in ("supplier_x", "supplier_y")}
    await ag.add_supplier(world.db, center, a.id, codes["supplier_x"])
    product = await ag.add_product(
        world.db,
        center,
        a.id,
        ag.ProductDraft(sx.org_id, "激光打印机", "惠普", "M1005", "A02021003", "台", price="1500.00"),  # type: ignore[arg-type]
    )
    await ag.activate(world.db, center, a.id)
    p.ids["agreement_id"] = str(a.id)
    p.ids["agreement_product"] = str(product.id)
    p.ids["supplier_y_code"] = codes["supplier_y"]
    # A designation supplier_x applied for (to review), and one of supplier_y in force (to order from).
    applied = await dd.apply(
        world.db, world.settings, sx, "C23090100", "410100", [dd.PriceItemDraft("印刷", "页", "0.20")]
    )
    p.ids["designation_applied"] = str(applied.id)
    approved = await dd.designate(
        world.db,
        center,
        codes["supplier_y"],
        "C23120301",
        "410100",
        [dd.PriceItemDraft("保养", "次", "300.00")],
    )
    async with world.db.read() as s:
        found = await dd.get(s, approved.id)
    p.ids["designation_approved"] = str(approved.id)
    p.ids["price_item"] = str(found.items[0].id)
    p.ids["buyer_b_org"] = str(world.who["buyer_b"].org_id)
    # Price alerts: one open, one the center asked supplier_x about; an open oversight case of buyer_a.
    p.ids["open_alert"], p.ids["asked_alert"] = map(str, await open_and_asked_alerts(world))
    p.ids["open_case"] = str(await open_case(world, "buyer_a"))
    # A sanction's statements are refused at decoding, before the sanction is looked up.
    p.ids["sanction"] = str(uuid.uuid4())
    return p


async def open_case(world: World, party: str) -> uuid.UUID:
    """An open case whose party is `party`'s organization, in its region (what a rule hit opens)."""
    now = clock.now()
    async with world.db.write() as tx:
        org = await tx.session.get(Organization, world.who[party].org_id)
        assert org is not None
        case = OversightCase(
            case_no="JG" + uuid.uuid4().hex[:12].upper(),
            rule="split_purchase",
            subject_key=f"pinned:{uuid.uuid4()}",
            region_code=org.region_code,
            buyer_org_id=org.id,
            party_org_id=org.id,
            summary="化整为零",
            evidence={},
            opened_at=now,
            last_hit_at=now,
            explain_due_at=now + timedelta(days=7),
        )
        tx.session.add(case)
        await tx.session.flush()
        return case.id


Base = Callable[[World, Pinned], tuple[dict[str, Any], dict[str, str]]]


def on(param: str, pinned: str, body: dict[str, Any]) -> Base:
    """A base of a fixed body whose path parameter `param` is the pinned object `pinned`."""
    return lambda w, p: (body, {param: p.ids[pinned]})


def _now_plus(hours: int) -> str:
    return (clock.now() + timedelta(hours=hours)).astimezone(clock.SHANGHAI).isoformat()


# (method, path) -> a valid-looking body and the path parameters, for the caller the roles name.
BASES: dict[str, Base] = {
    "POST /api/oversight/price-alerts/{alert_id}/ask": on(
        "alert_id", "open_alert", {"note": "请说明定价依据"}
    ),
    "POST /api/oversight/price-alerts/{alert_id}/freeze": on(
        "alert_id", "open_alert", {"reason": "价格过高"}
    ),
    "POST /api/oversight/price-alerts/{alert_id}/close": on("alert_id", "open_alert", {"note": "说明合理"}),
    "POST /api/supplier/price-alerts/{alert_id}/answer": on(
        "alert_id", "asked_alert", {"answer": "含三年保修"}
    ),
    "POST /api/listings/{listing_id}/ecommerce": on(
        "listing_id",
        "live_listing",
        {
            "ecommerce_price": "4899.00",
            "ecommerce_url": "https://shop.example.com/1",
            "ecommerce_captured_on": "2026-12-01",
        },
    ),
    "PUT /api/listings/{listing_id}/policy": on(
        "listing_id",
        "live_listing",
        {
            "energy_cert_no": "CQC21701234567",
            "energy_cert_until": "2027-12-31",
            "eco_cert_no": "",
            "eco_cert_until": "",
            "origin": "imported",
            "import_approval_ref": "豫财采审〔2026〕12号",
        },
    ),
    "POST /api/sme/declarations": lambda w, p: (
        {"industry": "retail", "employees": "8", "revenue": "90", "assets": ""},
        {},
    ),
    "POST /api/cases/{case_id}/explanation": on("case_id", "open_case", {"explanation": "分批到货"}),
    "POST /api/oversight/cases/{case_id}/decision": on(
        "case_id", "open_case", {"decision": "violation", "note": "意见"}
    ),
    "POST /api/sanctions": lambda w, p: (
        {
            "supplier_org_id": str(w.who["supplier_y"].org_id),
            "kind": "warning",
            "months": 6,
            "reason": "延迟供货",
            "basis": "政府采购法第七十七条",
        },
        {},
    ),
    "POST /api/sanctions/reports/{report_id}/decision": on(
        "report_id",
        "sanction",
        {
            "outcome": "upheld",
            "reason": "查证属实",
            "kind": "warning",
            "months": 6,
            "sanction_reason": "延迟供货",
            "basis": "政府采购法第七十七条",
        },
    ),
    "POST /api/sanctions/{sanction_id}/rebuttal": on("sanction_id", "sanction", {"statement": "已补发"}),
    "POST /api/sanctions/{sanction_id}/review": on(
        "sanction_id", "sanction", {"decision": "lift", "reason": "申辩属实"}
    ),
    "POST /api/sanctions/{sanction_id}/appeal": on("sanction_id", "sanction", {"statement": "不可抗力"}),
    "POST /api/sanctions/{sanction_id}/appeal/decision": on(
        "sanction_id", "sanction", {"outcome": "upheld", "reason": "维持"}
    ),
    "POST /api/auth/token": lambda w, p: ({"username": "buyer_a", "password": PASSWORD, "name": "脚本"}, {}),
    "POST /api/auth/password": lambda w, p: (
        {"current_password": PASSWORD, "new_password": "New-Sunshine-2026x"},
        {},
    ),
    "POST /api/cart/items": lambda w, p: (
        {"listing_id": str(w.listings["desk"].id), "quantity": "1", "unit_price": "800.00"},
        {},
    ),
    "PUT /api/cart/items/{listing_id}": on("listing_id", "cart_listing", {"quantity": "2"}),
    "POST /api/cart/items/{listing_id}/price": on("listing_id", "cart_listing", {"unit_price": "1200.00"}),
    "POST /api/checkout": lambda w, p: (
        {
            "budget_line_id": str(w.lines["a1"].id),
            "items": [{"listing_id": str(w.listings["desk"].id), "quantity": "1", "unit_price": "800.00"}],
            "delivery_address": "郑州市金水路1号",
            "note": "工作日送货",
        },
        {},
    ),
    "POST /api/orders/{order_id}/confirm": lambda w, p: (
        {"prices": {p.ids["order_line"]: "4900.00"}},
        {"order_id": p.ids["order_id"]},
    ),
    "POST /api/orders/{order_id}/decline": on("order_id", "order_id", {"reason": "库存不足"}),
    "POST /api/orders/{order_id}/cancel": on("order_id", "order_id", {"reason": "预算调整"}),
    "POST /api/orders/{order_id}/cancel-request": on("order_id", "order_id", {"reason": "预算调整"}),
    "POST /api/orders/{order_id}/ship": lambda w, p: (
        {
            "note": "顺丰 SF1",
            "carrier": "顺丰速运",
            "tracking_no": "SF1234567890",
            "lines": [{"line_id": p.ids["order_line"], "quantity": "1"}],
        },
        {"order_id": p.ids["order_id"]},
    ),
    "POST /api/orders/{order_id}/receive": lambda w, p: (
        {"note": "外包装完好", "lines": [{"line_id": p.ids["order_line"], "quantity": "1"}]},
        {"order_id": p.ids["order_id"]},
    ),
    "POST /api/orders/{order_id}/accept": lambda w, p: (
        {
            "inspectors": ["王建国"],
            "score": 5,
            "comment": "货物完好",
            "inspected_on": "2026-12-01",
            "lines": [
                {"line_id": p.ids["order_line"], "passed": False, "note": "破损", "refused_quantity": "1"}
            ],
        },
        {"order_id": p.ids["order_id"]},
    ),
    "POST /api/orders/{order_id}/invoices": on(
        "order_id",
        "order_id",
        {
            "invoice_no": "26412000000012345678",
            "amount": "100.00",
            "issued_on": "2026-12-01",
            "invoice_code": "",
        },
    ),
    "POST /api/orders/{order_id}/invoices/reject": lambda w, p: (
        {"invoice_id": str(uuid.uuid4()), "reason": "金额不符"},
        {"order_id": p.ids["order_id"]},
    ),
    "POST /api/orders/{order_id}/invoices/confirm": lambda w, p: (
        {"invoice_id": str(uuid.uuid4()), "reason": ""},
        {"order_id": p.ids["order_id"]},
    ),
    "POST /api/orders/{order_id}/pay": on(
        "order_id", "order_id", {"voucher_no": "ZF-0001", "amount": "100.00", "paid_on": "2026-12-01"}
    ),
    "POST /api/orders/{order_id}/void": on("order_id", "order_id", {"reason": "合同违规"}),
    "POST /api/orders/{order_id}/correction": on(
        "order_id",
        "order_id",
        {
            "reason": "型号有误",
            "lines": [
                {"line_no": 1, "item_name": "台式计算机", "brand": "联想", "spec_model": "M1", "unit": "台"}
            ],
        },
    ),
    "POST /api/orders/{order_id}/claims": on(
        "order_id", "order_id", {"kind": "repair", "reason": "屏幕损坏", "line_no": 1}
    ),
    "POST /api/orders/{order_id}/claims/{claim_id}/answer": lambda w, p: (
        {"answer": "三个工作日内上门维修"},
        {
            "order_id": p.ids["order_id"],
            "claim_id": str(uuid.uuid4()),
        },  # the body is refused before any lookup
    ),
    "POST /api/orders/{order_id}/claims/{claim_id}/close": lambda w, p: (
        {"outcome": "resolved", "note": "已修好"},
        {"order_id": p.ids["order_id"], "claim_id": str(uuid.uuid4())},
    ),
    "POST /api/admin/organizations": lambda w, p: (
        {
            "kind": "supplier",
            "name": "新登记供应商有限公司",
            "credit_code": make("9", "1", "410105", "TXTF0001"),
            "region_code": "410105",
            "address": "郑州市",
            "contact_phone": "0371-12345678",
        },
        {},
    ),
    "POST /api/admin/organizations/{org_id}/users": on(
        "org_id",
        "buyer_b_org",
        {"username": "newuser01", "display_name": "新用户", "password": "Sunshine-test-2026"},
    ),
    "PUT /api/security/users/{user_id}/role": lambda w, p: (
        {"role": "sysadmin"},
        {"user_id": str(w.who["auditor"].user_id)},
    ),
    "POST /api/admin/organizations/{org_id}/budget-lines": lambda w, p: (
        {
            "fiscal_year": clock.local_date(clock.now()).year,
            "project_code": "TF-01",
            "project_name": "新项目",
            "amount": "1000.00",
        },
        {"org_id": p.ids["buyer_b_org"]},
    ),
    "POST /api/admin/users/{user_id}/disable": lambda w, p: (
        {"reason": "调离岗位"},
        {"user_id": str(w.who["buyer_b"].user_id)},
    ),
    "POST /api/admin/budget-lines/{line_id}/adjustments": lambda w, p: (
        {"kind": "increase", "amount": "100.00", "reason": "追加"},
        {"line_id": str(w.lines["b1"].id)},
    ),
    "POST /api/listings": lambda w, p: (
        {
            "name": "新台式机",
            "brand": "新品牌",
            "spec_model": "N-1",
            "category_code": "A02010105",
            "unit": "台",
            "price": "1000.00",
            "reference_price": "1000.00",
            "stock": "5",
            "reference_source": "京东自营",
            "description": "说明",
        },
        {},
    ),
    "PUT /api/listings/{listing_id}": lambda w, p: (
        {
            "name": "草稿打印机",
            "brand": "草稿牌",
            "spec_model": "D-1",
            "category_code": "A02021003",
            "unit": "台",
            "price": "900.00",
            "reference_price": "900.00",
            "stock": "5",
            "reference_source": "京东自营",
            "description": "说明",
        },
        {"listing_id": p.ids["draft_listing"]},
    ),
    "POST /api/listings/{listing_id}/price": on(
        "listing_id",
        "live_listing",
        {"price": "4900.00", "reference_price": "5100.00", "note": "降价", "reference_source": "京东自营"},
    ),
    "POST /api/review/prices/{request_id}": on(
        "request_id",
        "price_request",
        {"decision": "reject", "reason": "参考价无依据", "price": "5000.00", "reference_price": "5200.00"},
    ),
    "POST /api/review/listings/{listing_id}": on(
        "listing_id",
        "submitted_listing",
        {"decision": "reject", "reason": "图片不清", "price": "950.00", "reference_price": "950.00"},
    ),
    "POST /api/listings/{listing_id}/moderation": on(
        "listing_id", "live_listing", {"action": "freeze", "reason": "价格核查"}
    ),
    "POST /api/agreements": lambda w, p: (
        {
            "title": "复印纸协议供货",
            "kind": "goods",
            "category_code": "A02021003",
            "starts_on": clock.local_date(clock.now()).isoformat(),
            "ends_on": (clock.local_date(clock.now()) + timedelta(days=100)).isoformat(),
            "direct_limit": "200000.00",
        },
        {},
    ),
    "POST /api/agreements/{agreement_id}/suppliers": lambda w, p: (
        {"credit_code": p.ids["supplier_y_code"]},
        {"agreement_id": p.ids["agreement_id"]},
    ),
    "POST /api/agreements/{agreement_id}/products": lambda w, p: (
        {
            "supplier_org_id": str(w.who["supplier_x"].org_id),
            "name": "喷墨打印机",
            "brand": "佳能",
            "spec_model": "G3800",
            "category_code": "A02021003",
            "unit": "台",
            "price": "",
            "list_price": "1200.00",
            "discount_rate": "0.95",
        },
        {"agreement_id": p.ids["agreement_id"]},
    ),
    "POST /api/agreements/{agreement_id}/terminate": on(
        "agreement_id", "agreement_id", {"reason": "协议违约"}
    ),
    "POST /api/agreement-orders": lambda w, p: (
        {
            "product_id": p.ids["agreement_product"],
            "quantity": "1",
            "budget_line_id": str(w.lines["a1"].id),
            "unit_price": "1500.00",
            "delivery_address": "郑州市金水路1号",
            "note": "工作日送货",
        },
        {},
    ),
    "POST /api/designated": lambda w, p: (
        {
            "credit_code": p.ids["supplier_y_code"],
            "category_code": "C23090100",
            "region_code": "410100",
            "prices": [{"name": "装订", "unit": "本", "price": "5.00", "spec": "胶装"}],
            "service_address": "郑州市",
        },
        {},
    ),
    "POST /api/designated/applications": lambda w, p: (
        {
            "category_code": "C23120301",
            "region_code": "410100",
            "prices": [{"name": "洗车", "unit": "次", "price": "30.00", "spec": "普通"}],
            "service_address": "郑州市",
        },
        {},
    ),
    "POST /api/designated/{designation_id}/review": on(
        "designation_id", "designation_applied", {"approve": False, "note": "资质不全"}
    ),
    "POST /api/designated/{designation_id}/revoke": on(
        "designation_id", "designation_approved", {"reason": "服务质量差"}
    ),
    "POST /api/service-orders": lambda w, p: (
        {
            "designation_id": p.ids["designation_approved"],
            "items": [{"price_item_id": p.ids["price_item"], "quantity": "1"}],
            "budget_line_id": str(w.lines["a1"].id),
            "service_address": "郑州市",
            "note": "上午",
        },
        {},
    ),
    "POST /api/procedures": lambda w, p: (
        {
            "kind": "inquiry",
            "title": "办公电脑询价项目",
            "budget_line_id": str(w.lines["a1"].id),
            "ceiling": "9000.00",
            "ends_at": _now_plus(2),
            "items": [
                {
                    "category_code": "A02010108",
                    "item_name": "便携式计算机",
                    "quantity": "1",
                    "unit": "台",
                    "spec": "i5",
                }
            ],
            "decrement": "0",
        },
        {},
    ),
    "POST /api/procedures/{procedure_id}/quotes": on("procedure_id", "procedure_id", {"amount": "8000.00"}),
    "POST /api/procedures/{procedure_id}/bids": on("procedure_id", "auction_id", {"amount": "8000.00"}),
    "POST /api/procedures/{procedure_id}/award/confirm": on(
        "procedure_id", "procedure_id", {"unit_prices": {"1": "8000.00"}}
    ),
    "POST /api/subscriptions": lambda w, p: (
        {"name": "接收方", "url": "https://receiver.example.com/hook", "mode": "supermarket"},
        {},
    ),
    "POST /api/exports": lambda w, p: ({"format": "csv", "filters": {"mode": "supermarket"}}, {}),
}
# The password change goes last: had it gone through, the caller's tokens would be revoked.
LAST = {"POST /api/auth/password"}
NEEDS_KEY = {"POST /api/checkout", "POST /api/agreement-orders", "POST /api/service-orders"}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def string_leaves(
    doc: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...] = ()
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every string property under `schema`, by path (a key, 0 for an array's items, "*" for a map's
    values); typed strings (uuid, date-time) are left out."""
    schema = _resolve(doc, schema)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    # A union's own keywords (Litestar puts an optional field's maxLength next to its oneOf) apply to
    # every alternative.
    shared = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    for alt in [*schema.get("anyOf", []), *schema.get("oneOf", [])]:
        out |= string_leaves(doc, {**shared, **_resolve(doc, alt)}, path)
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "object" in kinds or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            out |= string_leaves(doc, sub, (*path, name))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out |= string_leaves(doc, extra, (*path, "*"))
    if "array" in kinds:
        out |= string_leaves(doc, schema.get("items", {}), (*path, 0))
    if "string" in kinds and schema.get("format") not in TYPED_FORMATS:
        out[path] = schema
    return out


def _get(body: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        if step == "*":
            body = next(iter(body.values()))
        elif isinstance(body, dict):
            body = body.get(step)
        else:
            body = body[step]
        if body is None:
            return None
    return body


def _set(body: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node: Any = out
    for step in path[:-1]:
        node = node[next(iter(node))] if step == "*" else node[step]
    last = path[-1]
    if last == "*":
        node[next(iter(node))] = value
    else:
        node[last] = value
    return out


def _label(path: tuple[Any, ...]) -> str:
    return ".".join("[]" if s == 0 else str(s) for s in path)


def _handler_roles(app: Any) -> dict[str, tuple[str, ...]]:
    roles = {}
    for route in app.routes:
        plain = re.sub(r"\{(\w+)(?::[^}]*)?\}", r"{\1}", route.path)
        for h in getattr(route, "route_handlers", None) or []:
            for method in h.http_methods:
                roles[f"{method} {plain}"] = h.opt.get("roles", ())
    return roles


class DatabaseRefusals(logging.Handler):
    """Counts the requests that reached the database with what it cannot store."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "database refused" in message or "unhandled error" in message:
            self.seen.append(message)


@pytest.mark.slow
async def test_every_string_of_every_json_body_has_a_limit_and_refuses_bad_text(
    app: Any, client: Any, world: World
) -> None:
    doc = app.openapi_schema.to_schema()
    roles = _handler_roles(app)
    p = await pinned(world)
    watcher = DatabaseRefusals()
    logging.getLogger("mall.errors").addHandler(watcher)
    problems: list[str] = []
    exercised: list[str] = []
    operations = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                operations.append((f"{method.upper()} {path}", content["application/json"]["schema"]))
    operations.sort(key=lambda o: o[0] in LAST)
    try:
        for key, schema in operations:
            leaves = string_leaves(doc, schema)
            if not leaves:
                continue  # nothing but numbers, booleans and typed values
            if key not in BASES:
                problems.append(f"{key}: no base body in this test (add one)")
                continue
            base, params = BASES[key](world, p)
            method, path = key.split(" ", 1)
            url = path.format(**params)
            caller = CALLER[roles[key][0]]
            before = await fingerprint(world.db)
            for leaf, sub in leaves.items():
                name = _label(leaf)
                limit = sub.get("maxLength")
                if limit is None:
                    problems.append(f"{key} {name}: no maxLength in the OpenAPI document")
                sample = _get(base, leaf)
                for kind, value in variants(
                    sample if isinstance(sample, str) else "", limit or 100_000
                ).items():
                    headers = world.h(caller) if caller else {}
                    if key in NEEDS_KEY:
                        headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
                    r = await client.request(method, url, json=_set(base, leaf, value), headers=headers)
                    shown = f"{key} {name} [{kind}]"
                    if r.status_code != 400:
                        problems.append(f"{shown}: {r.status_code} {r.text[:200]}")
                        continue
                    if not r.headers["content-type"].startswith("application/problem+json"):
                        problems.append(f"{shown}: not problem+json")
                        continue
                    body = r.json()
                    if not body.get("code") or not chinese(body.get("detail")):
                        problems.append(f"{shown}: no code or no Chinese detail: {body}")
                exercised.append(f"{key} {name}")
            if await fingerprint(world.db) != before:
                problems.append(f"{key}: a refused request wrote to the database")
                before = await fingerprint(world.db)
    finally:
        logging.getLogger("mall.errors").removeHandler(watcher)
    problems += [f"reached the database: {m[:200]}" for m in watcher.seen]
    print(f"\n{len(exercised)} (operation, string property) pairs exercised, 3 refused values each")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert len(exercised) >= MIN_PAIRS, len(exercised)


@pytest.mark.parametrize("bad", ["\x00", "\u202e", "\x1b", "\u200b", "\ufeff", "\xad"])
async def test_a_search_with_control_characters_is_refused_in_the_api_and_on_the_page(
    client: Any, world: World, bad: str
) -> None:
    """A search query is echoed back and searched: the API and the page refuse the same characters."""
    q = f"台式{bad}电脑"
    for path in ("/api/catalog/search", "/api/listings"):
        for param in ("q", "brand"):
            r = await client.get(path, params={param: q})
            assert r.status_code == 400, (path, param, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/problem+json")
            assert chinese(r.json()["detail"])
    r = await client.get("/goods", params={"q": q}, headers={"Accept": "text/html"})
    assert r.status_code == 400 and "不允许的字符" in r.text


async def test_list_filters_that_reach_a_query_refuse_what_no_value_can_be(client: Any, world: World) -> None:
    """A filter that goes into SQL is checked first: PostgreSQL never sees a NUL (it would refuse it
    itself), the API says which parameter is wrong, and a page drops the filter with a message."""
    watcher = DatabaseRefusals()
    logging.getLogger("mall.errors").addHandler(watcher)
    try:
        for path, param, who in (
            ("/api/designated", "region", "buyer_a"),
            ("/api/designated", "category", "buyer_a"),
            ("/api/designated", "status", "center"),
            ("/api/admin/organizations", "kind", "sysadmin"),
            ("/api/agreements", "status", "center"),
            ("/api/listings", "category", None),
        ):
            r = await client.get(path, params={param: "41\x000100"}, headers=world.h(who) if who else {})
            assert r.status_code == 400, (path, param, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/problem+json")
            assert param in r.text and chinese(r.json()["detail"])
        await client.get("/login", headers={"Accept": "text/html"})
        r = await client.post(
            "/login",
            data={
                "username": "buyer_a",
                "password": PASSWORD,
                "_csrf_token": client.cookies.get("mall_csrf"),
            },
            headers={"Accept": "text/html"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        r = await client.get("/designated", params={"region": "41\x000100"}, headers={"Accept": "text/html"})
        assert r.status_code == 200 and "服务区域应为6位行政区划代码" in r.text
    finally:
        logging.getLogger("mall.errors").removeHandler(watcher)
    assert watcher.seen == []


@pytest.mark.parametrize("invisible", ["\u200b", "\u200d", "\u2060", "\ufeff", "\xad", "\u3164"])
async def test_a_model_with_an_invisible_character_is_refused(
    client: Any, world: World, invisible: str
) -> None:
    """ "NF5280M6" with a zero-width space inside looks the same and would be another model to the
    duplicate and split rules: refused, naming the field, and nothing is written."""
    before = await fingerprint(world.db)
    r = await client.post(
        "/api/listings",
        json={
            "name": "服务器",
            "brand": "浪潮",
            "spec_model": f"NF5280{invisible}M6",
            "category_code": "A02010104",
            "unit": "台",
            "price": "91000.00",
            "reference_price": "91093.07",
            "stock": "5",
        },
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "spec_model" in r.text and chinese(r.json()["detail"])
    assert await fingerprint(world.db) == before
