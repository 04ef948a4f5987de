"""The system administrator's tools: finding organizations and users, disabling a user, a password
reset the user must replace before anything else, and 追加/调减 of a budget line with its history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mall.core.models import AuditEntry
from tests.factories import PASSWORD, World
from tests.mall.test_pages import HTML, assert_page, login, post_form
from tests.security.login_helpers import assert_problem

ADMIN = "/api/admin"


async def test_organizations_are_found_by_name_credit_code_or_username(client: Any, world: World) -> None:
    h = world.h("sysadmin")
    r = await client.get(f"{ADMIN}/organizations", params={"q": "乙"}, headers=h)
    assert sorted(o["name"] for o in r.json()["items"]) == ["乙供应商有限公司", "乙单位"]
    code = world.who["buyer_a"].org_credit_code
    r = await client.get(f"{ADMIN}/organizations", params={"q": code[-6:]}, headers=h)
    assert [o["name"] for o in r.json()["items"]] == ["甲单位"]
    r = await client.get(f"{ADMIN}/organizations", params={"q": "supplier_y"}, headers=h)
    assert [o["name"] for o in r.json()["items"]] == ["乙供应商有限公司"]
    # LIKE's wildcards are searched for as themselves
    r = await client.get(f"{ADMIN}/organizations", params={"q": "%"}, headers=h)
    assert r.json()["total"] == 0
    await login(client, "sysadmin")
    page = assert_page(await client.get("/admin?q=%E4%B9%99", headers=HTML))
    assert "乙单位" in page and "甲单位" not in page


async def test_a_disabled_user_is_shut_out_at_once_and_let_back_in(client: Any, world: World) -> None:
    h, uid = world.h("sysadmin"), world.who["buyer_b"].user_id
    assert (await client.get("/api/budgets", headers=world.h("buyer_b"))).status_code == 200
    assert_problem(
        await client.post(f"{ADMIN}/users/{uid}/disable", json={"reason": ""}, headers=h),
        400,
        "text_required",
    )
    r = await client.post(f"{ADMIN}/users/{uid}/disable", json={"reason": "调离岗位"}, headers=h)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert_problem(await client.get("/api/budgets", headers=world.h("buyer_b")), 401, "unauthenticated")
    assert (await login(client, "buyer_b")).status_code == 401
    r = await client.post(f"{ADMIN}/users/{uid}/enable", headers=h)
    assert r.json()["is_active"] is True
    assert (await login(client, "buyer_b")).status_code == 303
    # the administrators' own accounts are the security administrator's, and nobody disables themselves
    for target in ("secadmin", "sysadmin"):
        r = await client.post(
            f"{ADMIN}/users/{world.who[target].user_id}/disable", json={"reason": "试"}, headers=h
        )
        assert_problem(r, 403, "forbidden")
    async with world.db.read() as s:
        actions = (await s.execute(select(AuditEntry.action))).scalars().all()
    assert "user_disabled" in actions and "user_enabled" in actions


async def test_a_reset_password_must_be_changed_before_anything_else(client: Any, world: World) -> None:
    uid = world.who["buyer_b"].user_id
    r = await client.post(f"{ADMIN}/users/{uid}/password-reset", headers=world.h("sysadmin"))
    assert r.status_code == 200, r.text
    temporary = r.json()["temporary_password"]
    assert len(temporary) == 16
    # the old password and the old token are gone
    assert (await login(client, "buyer_b")).status_code == 401
    assert_problem(await client.get("/api/budgets", headers=world.h("buyer_b")), 401, "unauthenticated")

    # the page login lands on the account page, whatever it asks for
    r = await login(client, "buyer_b", temporary)
    assert r.status_code == 303
    r = await client.get(r.headers["location"], headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    page = assert_page(await client.get("/account", headers=HTML))
    assert "管理员已重置您的密码" in page
    r = await client.get("/orders", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account"

    # an API token works for nothing but changing the password
    r = await client.post("/api/auth/token", json={"username": "buyer_b", "password": temporary})
    token = {"Authorization": f"Bearer {r.json()['token']}"}
    assert_problem(await client.get("/api/budgets", headers=token), 403, "password_change_required")
    r = await client.post(
        "/api/auth/password",
        json={"current_password": temporary, "new_password": "my-own-Secret-2026"},
        headers=token,
    )
    assert r.status_code == 204, r.text
    r = await client.post("/api/auth/token", json={"username": "buyer_b", "password": "my-own-Secret-2026"})
    fresh = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await client.get("/api/budgets", headers=fresh)).status_code == 200


async def test_budget_lines_are_increased_and_decreased_with_their_history(client: Any, world: World) -> None:
    h, line = world.h("sysadmin"), world.lines["b1"]
    url = f"{ADMIN}/budget-lines/{line.id}/adjustments"
    r = await client.post(
        url, json={"kind": "increase", "amount": "20000.00", "reason": "年中追加"}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == "520000.00"
    # spend some, then try to decrease below what is reserved
    r = await client.post(
        "/api/checkout",
        json={
            "budget_line_id": str(line.id),
            "items": [{"listing_id": str(world.listings["laptop"].id), "quantity": "1"}],
        },
        headers={**world.h("buyer_b"), "Idempotency-Key": "adjust-checkout-1"},
    )
    assert r.status_code == 201, r.text
    problem = assert_problem(
        await client.post(url, json={"kind": "decrease", "amount": "516000.00", "reason": "压减"}, headers=h),
        422,
        "budget_decrease_too_large",
    )
    assert "5,000.00" in problem["detail"] and "515,000.00" in problem["detail"]
    r = await client.post(url, json={"kind": "decrease", "amount": "515000.00", "reason": "压减"}, headers=h)
    assert r.status_code == 201 and r.json()["available"] == "0.00"
    for bad in (
        {"kind": "double", "amount": "1", "reason": "x"},
        {"kind": "increase", "amount": "-5", "reason": "x"},
    ):
        assert_problem(await client.post(url, json=bad, headers=h), 400, "budget_adjustment_invalid")
    assert_problem(
        await client.post(url, json={"kind": "increase", "amount": "1", "reason": ""}, headers=h),
        400,
        "text_required",
    )
    r = await client.get(url, headers=h)
    assert [(a["kind"], a["amount_before"], a["amount_after"]) for a in r.json()] == [
        ("increase", "500000.00", "520000.00"),
        ("decrease", "520000.00", "5000.00"),
    ]
    assert_problem(await client.get(url, headers=world.h("buyer_b")), 403, "forbidden")

    # the page: the same through its form, the history under the line
    await login(client, "sysadmin")
    r = await post_form(
        client,
        f"/admin/budget-lines/{line.id}/adjust",
        {"kind": "increase", "amount": "1000", "reason": "补充"},
    )
    assert r.status_code == 303
    page = assert_page(await client.get("/admin?q=%E4%B9%99%E5%8D%95%E4%BD%8D", headers=HTML))
    assert "已调整，指标金额现为 6,000.00 元" in page and "调整 3 次" in page and "补充" in page


async def test_the_admin_page_disables_and_resets_through_its_forms(client: Any, world: World) -> None:
    uid = world.who["buyer_b"].user_id
    await login(client, "sysadmin")
    r = await post_form(client, f"/admin/users/{uid}/password-reset", {})
    assert r.status_code == 303
    page = assert_page(await client.get("/admin", headers=HTML))
    assert "临时密码（仅显示这一次" in page and "待修改密码" in page
    r = await post_form(client, f"/admin/users/{uid}/disable", {"reason": "离职"})
    page = assert_page(await client.get("/admin", headers=HTML))
    assert "已停用" in page and "重新启用" in page
    assert PASSWORD not in page
