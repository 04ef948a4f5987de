"""Point 11 (input side) on the pages: the forms refuse what the API refuses — a NUL, a bidi override,
one character over the field's limit — with a message on the page they came from, keep what was typed,
and write nothing. The two cases of the issue: a 1 MB item specification is refused (procedure, API
and page) and a 1 MB order note is refused, not cut to 500 characters."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from catalog import service as catalog
from mall import cart, orders
from mall.core import clock, fields
from mall.core.credit_code import make
from mall.core.errors import InvalidInput
from tests.factories import World, sign_and_file
from tests.mall.test_pages import HTML, login_ok, post_form
from tests.security.text_input import NUL, RLO, chinese, fingerprint, variants

REFUSED = re.compile(r"不允许的字符|不能超过")
MEGABYTE = 1_000_000


@dataclass
class Form:
    who: str
    action: str  # where the form posts
    page: str  # the page the form is on (and where a refusal comes back to)
    base: dict[str, str]
    limits: dict[str, int]  # the fields to refuse, with their limits
    fresh: Callable[[], dict[str, str]] = dict  # values that must differ on every post (a checkout key)


async def orders_in_states(world: World) -> dict[str, uuid.UUID]:
    """A placed order, a contracted one (to ship) and a received one (to accept), all of buyer_a."""
    buyer, sx, sy = world.who["buyer_a"], world.who["supplier_x"], world.who["supplier_y"]

    async def place(listing: str) -> uuid.UUID:
        placed, _ = await orders.checkout(
            world.db,
            world.settings,
            buyer,
            orders.CheckoutRequest(
                world.lines["a1"].id, uuid.uuid4().hex, ((world.listings[listing].id, "1"),)
            ),
        )
        return placed[0].id

    placed = await place("laptop")
    contracted = await place("printer")
    await orders.confirm(world.db, sx, contracted)
    await sign_and_file(world.db, world.settings, buyer, contracted)
    received = await place("desk")
    await orders.confirm(world.db, sy, received)
    await sign_and_file(world.db, world.settings, buyer, received)
    await orders.ship(world.db, sy, received, "")
    await orders.receive(world.db, buyer, received)
    return {"placed": placed, "contracted": contracted, "received": received}


def forms(world: World, ids: dict[str, Any]) -> dict[str, Form]:
    listing = {
        "name": "表单测试台式机",
        "brand": "表单牌",
        "spec_model": "FORM-100",
        "category_code": "A02010105",
        "unit": "台",
        "price": "1000.00",
        "reference_price": "1000.00",
        "stock": "5",
        "reference_source": "表单参考来源",
        "description": "表单测试说明",
    }
    listing_limits = {
        "name": fields.NAME_MAX,
        "brand": fields.SHORT_MAX,
        "spec_model": fields.MODEL_MAX,
        "unit": fields.UNIT_MAX,
        "reference_source": fields.SOURCE_MAX,
        "description": fields.DESCRIPTION_MAX,
        "category_code": fields.CATEGORY_CODE_MAX,
    }
    today = clock.local_date(clock.now())
    ends = (clock.now() + timedelta(hours=2)).astimezone(clock.SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    return {
        "listing create": Form(
            "supplier_x", "/supplier/listings", "/supplier/listings", listing, listing_limits
        ),
        "listing edit": Form(
            "supplier_x",
            f"/supplier/listings/{ids['draft']}/edit",
            f"/supplier/listings/{ids['draft']}/edit",
            listing,
            listing_limits,
        ),
        "procedure create": Form(
            "buyer_a",
            "/procedures/new",
            "/procedures/new",
            {
                "kind": "inquiry",
                "title": "表单测试询价项目",
                "budget_line_id": str(world.lines["a1"].id),
                "ceiling": "9000.00",
                "ends_at": ends,
                "category_code": "A02010108",
                "item_name": "表单便携式计算机",
                "spec": "表单技术要求",
                "quantity": "1",
                "unit": "台",
                "min_participants": "3",
            },
            {
                "title": fields.NAME_MAX,
                "item_name": fields.NAME_MAX,
                "spec": fields.SPEC_MAX,
                "unit": fields.UNIT_MAX,
                "category_code": fields.CATEGORY_CODE_MAX,
            },
        ),
        "organization create": Form(
            "sysadmin",
            "/admin/organizations",
            "/admin",
            {
                "kind": "supplier",
                "name": "表单登记供应商有限公司",
                "credit_code": make("9", "1", "410105", "FRMA0001"),
                "region_code": "410105",
                "address": "表单测试地址",
                "contact_phone": "0371-66668888",
            },
            {
                "name": fields.NAME_MAX,
                "address": fields.ADDRESS_MAX,
                "contact_phone": fields.PHONE_MAX,
                "credit_code": fields.CREDIT_CODE_LENGTH,
            },
        ),
        "user create": Form(
            "sysadmin",
            f"/admin/organizations/{world.who['buyer_b'].org_id}/users",
            "/admin",
            {"username": "formuser01", "display_name": "表单新用户", "password": "Sunshine-form-2026"},
            {"username": fields.USERNAME_MAX, "display_name": fields.SHORT_MAX},
        ),
        "checkout": Form(
            "buyer_a",
            "/checkout",
            "/cart",
            {
                "budget_line_id": str(world.lines["a1"].id),
                "delivery_address": "表单收货地址",
                "note": "表单订单备注",
            },
            {"delivery_address": fields.ADDRESS_MAX, "note": fields.NOTE_MAX},
            fresh=lambda: {"checkout_key": uuid.uuid4().hex},
        ),
        "order cancel reason": Form(
            "buyer_a",
            f"/orders/{ids['placed']}/cancel",
            f"/orders/{ids['placed']}",
            {"reason": "表单取消原因"},
            {"reason": fields.REASON_MAX},
        ),
        "shipping note": Form(
            "supplier_x",
            f"/orders/{ids['contracted']}/ship",
            f"/orders/{ids['contracted']}",
            {"note": "表单发货说明"},
            {"note": fields.SHIPPING_NOTE_MAX},
        ),
        "evaluation comment": Form(
            "buyer_a",
            f"/orders/{ids['received']}/accept",
            f"/orders/{ids['received']}",
            {"score": "5", "comment": "表单验收评价"},
            {"comment": fields.NOTE_MAX},
        ),
        "agreement create": Form(
            "center",
            "/agreements/new",
            "/agreements/new",
            {
                "title": "表单打印机协议供货",
                "kind": "goods",
                "category_code": "A02021003",
                "starts_on": today.isoformat(),
                "ends_on": (today + timedelta(days=100)).isoformat(),
                "direct_limit": "200000.00",
            },
            {"title": fields.NAME_MAX},
        ),
        "designation application": Form(
            "supplier_y",
            "/designated/apply",
            "/designated",
            {
                "category_code": "C23090100",
                "region_code": "410100",
                "service_address": "表单服务地点",
                "item_name_1": "表单印刷",
                "item_unit_1": "页",
                "item_price_1": "0.20",
                "item_spec_1": "表单彩色",
            },
            {
                "service_address": fields.ADDRESS_MAX,
                "item_name_1": fields.NAME_MAX,
                "item_unit_1": fields.UNIT_MAX,
                "item_spec_1": fields.MODEL_MAX,
            },
        ),
        "push subscription": Form(
            "center",
            "/push",
            "/push",
            {"name": "表单接收方", "url": "https://receiver.example.com/hook", "mode": "", "start": ""},
            {"name": fields.SHORT_MAX},
        ),
    }


@pytest.mark.slow
async def test_the_forms_refuse_bad_text_with_a_message_keep_what_was_typed_and_write_nothing(
    client: Any, world: World
) -> None:
    placed = await orders_in_states(world)
    await cart.add_to_cart(world.db, world.who["buyer_a"], world.listings["laptop"].id, "1")
    draft = await catalog.create_listing(
        world.db,
        world.who["supplier_x"],
        catalog.ListingDraft("草稿台式机", "草稿牌", "D-1", "A02010105", "台", "900.00", "900.00", "5"),
        margin=world.settings.price_margin,
        submit=False,
    )
    ids: dict[str, Any] = {**placed, "draft": draft.id}
    problems: list[str] = []
    cases = 0
    for title, form in forms(world, ids).items():
        await login_ok(client, form.who)
        before = await fingerprint(world.db)
        for name, limit in form.limits.items():
            for kind, value in variants(form.base[name], limit).items():
                cases += 1
                shown = f"{title} {name} [{kind}]"
                await client.get(form.page, headers=HTML)  # a page first, as a browser would
                data = {**form.base, **form.fresh(), name: value}
                r = await post_form(client, form.action, data, form.page)
                if r.status_code != 303:
                    problems.append(f"{shown}: {r.status_code} {r.text[:200]}")
                    continue
                if r.headers["location"] != form.page:
                    problems.append(f"{shown}: went to {r.headers['location']}, not back to {form.page}")
                    continue
                page = (await client.get(form.page, headers=HTML)).text
                if not REFUSED.search(page):
                    problems.append(f"{shown}: no refusal message on {form.page}")
                # What was typed is there to correct: another field's text, or this one's around its bad part.
                kept = next(
                    (v for k, v in form.base.items() if k not in (name, "password") and chinese(v)),
                    form.base[name],
                )
                if kind == "rlo" and kept not in page:
                    problems.append(f"{shown}: what was typed ({kept}) is not kept")
        if await fingerprint(world.db) != before:
            problems.append(f"{title}: a refused form wrote to the database")
    assert not problems, f"{len(problems)} problems in {cases} posts:\n" + "\n".join(problems)
    assert cases >= 90, cases


@pytest.mark.slow
async def test_a_megabyte_of_item_specification_is_refused_by_the_api_and_the_page(
    client: Any, world: World
) -> None:
    spec = "规" * MEGABYTE
    await login_ok(client, "buyer_a")  # logging in writes (its audit entry): before the fingerprint
    before = await fingerprint(world.db)
    body = {
        "kind": "inquiry",
        "title": "一兆字节规格询价",
        "budget_line_id": str(world.lines["a1"].id),
        "ceiling": "9000.00",
        "ends_at": (clock.now() + timedelta(hours=2)).isoformat(),
        "items": [{"category_code": "A02010108", "item_name": "便携式计算机", "quantity": "1", "unit": "台"}],
    }
    for value in (spec, "规" * (fields.SPEC_MAX + 1)):
        r = await client.post(
            "/api/procedures",
            json={**body, "items": [{**body["items"][0], "spec": value}]},  # type: ignore[dict-item]
            headers=world.h("buyer_a"),
        )
        assert r.status_code in (400, 413), r.text[:300]  # past 1 MB the whole body is refused first
        assert r.headers["content-type"].startswith("application/problem+json")
    await client.get("/procedures/new", headers=HTML)
    form = world.procedure_form(
        title="一兆字节规格询价",
        ceiling="9000.00",
        category_code="A02010108",
        item_name="便携式计算机",
        spec=spec,
        quantity="1",
    )
    r = await post_form(client, "/procedures/new", form, "/procedures/new")
    assert r.status_code == 303 and r.headers["location"] == "/procedures/new"
    page = (await client.get("/procedures/new", headers=HTML)).text
    assert f"不能超过 {fields.SPEC_MAX} 个字符" in page
    assert "一兆字节规格询价" in page  # the title typed is kept; a megabyte is not put into the session
    assert await fingerprint(world.db) == before


@pytest.mark.slow
async def test_a_megabyte_order_note_is_refused_not_cut(client: Any, world: World) -> None:
    note = "备" * MEGABYTE
    ids = await orders_in_states(world)
    await login_ok(client, "buyer_a")
    await cart.add_to_cart(world.db, world.who["buyer_a"], world.listings["desk"].id, "1")
    before = await fingerprint(world.db)
    await client.get("/cart", headers=HTML)
    r = await post_form(
        client,
        "/checkout",
        {"budget_line_id": str(world.lines["a1"].id), "checkout_key": uuid.uuid4().hex, "note": note},
        "/cart",
    )
    assert r.status_code == 303 and r.headers["location"] == "/cart"
    assert f"不能超过 {fields.NOTE_MAX} 个字符" in (await client.get("/cart", headers=HTML)).text
    assert await fingerprint(world.db) == before
    # The notes written after the order: refused whole, never kept as their first 300 or 500 characters.
    with pytest.raises(InvalidInput) as err:
        await orders.ship(world.db, world.who["supplier_x"], ids["contracted"], note)
    assert err.value.code == "text_too_long" and err.value.extra["field"] == "note"
    with pytest.raises(InvalidInput) as err:
        await orders.accept(
            world.db,
            world.settings,
            world.who["buyer_a"],
            ids["received"],
            inspectors=["王建国"],
            score=5,
            comment=note,
        )
    assert err.value.code == "text_too_long" and err.value.extra["field"] == "comment"
    with pytest.raises(InvalidInput) as err:
        await orders.cancel(world.db, world.who["buyer_a"], ids["placed"], "原因" * 1000)
    assert err.value.extra["field"] == "reason"
    for bad in (NUL, RLO):
        with pytest.raises(InvalidInput) as err:
            await orders.ship(world.db, world.who["supplier_x"], ids["contracted"], f"顺丰{bad}")
        assert err.value.code == "text_invalid"
    assert await fingerprint(world.db) == before
