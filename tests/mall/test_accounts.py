"""Registering organizations and users: credit codes are checked, only the system administrator may do it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mall.core.credit_code import make
from tests.factories import World
from tests.mall.test_supermarket_flow import assert_problem


def org_body(code: str, **extra: str) -> dict[str, str]:
    return {
        "kind": "supplier",
        "name": "新登记供应商有限公司",
        "credit_code": code,
        "region_code": "410105",
        "address": "郑州市金水区",
        **extra,
    }


async def test_the_system_administrator_registers_an_organization_and_its_user_who_can_then_log_in(
    client: Any, world: World
) -> None:
    code = make("9", "1", "410105", "MA9XK3L2")
    r = await client.post("/api/admin/organizations", json=org_body(code), headers=world.h("sysadmin"))
    assert r.status_code == 201, r.text
    org = r.json()
    assert org["credit_code"] == code and org["kind"] == "supplier"
    r = await client.post(
        f"/api/admin/organizations/{org['id']}/users",
        json={"username": "newsupplier", "display_name": "新用户", "password": "s3cret-pass"},
        headers=world.h("sysadmin"),
    )
    assert r.status_code == 201, r.text
    r = await client.post("/api/auth/token", json={"username": "newsupplier", "password": "s3cret-pass"})
    assert r.status_code == 201 and r.json()["role"] == "supplier"
    listed = (await client.get("/api/admin/organizations?kind=supplier", headers=world.h("sysadmin"))).json()
    assert code in [o["credit_code"] for o in listed["items"]]


async def test_a_wrong_check_character_is_refused_with_the_reason(client: Any, world: World) -> None:
    good = make("9", "1", "410105", "MA9XK3L2")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    r = await client.post("/api/admin/organizations", json=org_body(bad), headers=world.h("sysadmin"))
    assert_problem(r, 400, "organization_invalid")
    assert "校验位" in r.json()["detail"]
    r = await client.post(
        "/api/admin/organizations", json=org_body("91410105MA9XK3L2I"), headers=world.h("sysadmin")
    )
    assert_problem(r, 400, "organization_invalid")
    r = await client.post(
        "/api/admin/organizations", json=org_body(good, kind="platform"), headers=world.h("sysadmin")
    )
    assert_problem(r, 400, "organization_invalid")
    assert (
        await client.post("/api/admin/organizations", json=org_body(good), headers=world.h("sysadmin"))
    ).status_code == 201
    r = await client.post("/api/admin/organizations", json=org_body(good), headers=world.h("sysadmin"))
    assert_problem(r, 409, "credit_code_taken")


async def test_users_need_sound_names_and_passwords(client: Any, world: World) -> None:
    org_id = world.who["buyer_a"].org_id
    for body, code in [
        ({"username": "x", "display_name": "甲", "password": "long-enough"}, "user_invalid"),
        ({"username": "okname", "display_name": "甲", "password": "short"}, "user_invalid"),
        ({"username": "buyer_a", "display_name": "甲", "password": "long-enough"}, "username_taken"),
    ]:
        r = await client.post(
            f"/api/admin/organizations/{org_id}/users", json=body, headers=world.h("sysadmin")
        )
        assert_problem(r, 409 if code == "username_taken" else 400, code)


async def test_only_the_system_administrator_registers(client: Any, world: World) -> None:
    code = make("9", "1", "410105", "MA9XK3L2")
    for who in ("buyer_a", "supplier_x", "center", "regulator", "secadmin", "auditor"):
        r = await client.post("/api/admin/organizations", json=org_body(code), headers=world.h(who))
        assert_problem(r, 403, "forbidden")


async def test_password_guessing_is_throttled_per_account(client: Any, world: World) -> None:
    for _ in range(3):
        r = await client.post("/api/auth/token", json={"username": "buyer_a", "password": "wrong-guess"})
        assert_problem(r, 401, "bad_credentials")
    # From this address even the right password waits now (tests/security/test_14_login_throttle.py:
    # the wait grows, and other addresses are not affected).
    from tests.factories import PASSWORD

    r = await client.post("/api/auth/token", json={"username": "buyer_a", "password": PASSWORD})
    assert_problem(r, 429, "too_many_attempts")
    # Other accounts are not affected.
    r = await client.post("/api/auth/token", json={"username": "buyer_b", "password": PASSWORD})
    assert r.status_code == 201


async def test_the_system_administrator_enters_budget_lines_for_budget_units_only(
    client: Any, world: World
) -> None:
    org = world.who["buyer_b"].org_id
    body = {"fiscal_year": 2026, "project_code": "NEW-01", "project_name": "新增项目", "amount": "120000.00"}
    r = await client.post(
        f"/api/admin/organizations/{org}/budget-lines", json=body, headers=world.h("sysadmin")
    )
    assert r.status_code == 201, r.text
    assert r.json()["available"] == "120000.00"
    supplier_org = world.who["supplier_x"].org_id
    for who, to, changes, status, code in [
        ("sysadmin", org, {}, 409, "budget_line_exists"),
        ("sysadmin", org, {"amount": "1e9"}, 400, "budget_line_invalid"),
        ("sysadmin", supplier_org, {"project_code": "X"}, 400, "budget_line_invalid"),
        ("sysadmin", supplier_org, {"project_code": "X-02"}, 400, "not_a_budget_unit"),
        ("buyer_b", org, {}, 403, "forbidden"),
        ("secadmin", org, {}, 403, "forbidden"),
        ("auditor", org, {}, 403, "forbidden"),
    ]:
        r = await client.post(
            f"/api/admin/organizations/{to}/budget-lines", json={**body, **changes}, headers=world.h(who)
        )
        assert_problem(r, status, code)


async def test_parallel_password_guesses_cannot_race_past_the_throttle(world: World, app: Any) -> None:
    """Requests served concurrently in one event loop (httpx ASGITransport, not the serializing test client)."""
    import asyncio

    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        results = await asyncio.gather(
            *[c.post("/api/auth/token", json={"username": "buyer_b", "password": "guess"}) for _ in range(20)]
        )
    statuses = [r.status_code for r in results]
    assert statuses.count(401) == 3 and statuses.count(429) == 17, statuses


async def test_concurrent_identical_registrations_give_one_201_and_409s(world: World, app: Any) -> None:
    import asyncio

    import httpx

    code = make("9", "1", "410105", "MA9XK3L9")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        results = await asyncio.gather(
            *[
                c.post("/api/admin/organizations", json=org_body(code), headers=world.h("sysadmin"))
                for _ in range(4)
            ]
        )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409], [r.text for r in results]


async def test_a_sole_proprietor_is_registered_as_such_by_its_code_or_by_the_admin(
    client: Any, world: World
) -> None:
    """个体工商户: the credit code of one (92…) makes it one even if the admin forgot to say so; one
    said to be a sole proprietor must have such a code and be a supplier."""
    admin = world.h("sysadmin")
    sole = make("9", "2", "410103", "00000012")
    r = await client.post("/api/admin/organizations", json=org_body(sole, name="张建国"), headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["is_sole_proprietor"] is True
    company = make("9", "1", "410105", "MA9XK3L2")
    body = {**org_body(company), "is_sole_proprietor": True}
    r = await client.post("/api/admin/organizations", json=body, headers=admin)
    assert "92" in assert_problem(r, 400, "organization_invalid")["detail"]
    body = {**org_body(make("9", "2", "410103", "00000013"), kind="budget_unit")}
    r = await client.post("/api/admin/organizations", json=body, headers=admin)
    assert "个体工商户只能登记为供应商" in assert_problem(r, 400, "organization_invalid")["detail"]
    r = await client.post("/api/admin/organizations", json=org_body(company), headers=admin)
    assert r.status_code == 201 and r.json()["is_sole_proprietor"] is False
    listed = (await client.get("/api/admin/organizations?kind=supplier&per_page=100", headers=admin)).json()
    flags = {o["credit_code"]: o["is_sole_proprietor"] for o in listed["items"]}
    assert flags[sole] is True and flags[company] is False


async def test_the_admin_page_registers_a_sole_proprietor_with_its_checkbox(
    client: Any, world: World
) -> None:
    from mall.core.models import Organization
    from tests.mall.test_pages import assert_page, login_ok, post_form

    await login_ok(client, "sysadmin")
    assert "个体工商户" in assert_page(await client.get("/admin", headers={"Accept": "text/html"}))
    code = make("9", "2", "410103", "00000021")
    r = await post_form(
        client,
        "/admin/organizations",
        {**org_body(code, name="李秀英"), "contact_phone": "13912340000", "is_sole_proprietor": "1"},
    )
    assert r.status_code == 303, r.text
    async with world.db.read() as s:
        org = (await s.execute(select(Organization).where(Organization.credit_code == code))).scalar_one()
    assert org.is_sole_proprietor and org.contact_phone == "13912340000"


async def test_the_code_must_fit_the_kind_of_organization(client: Any, world: World) -> None:
    """GB 32100: the first character says who registered it, the second what it is. An enterprise
    (91…) is no budget unit; a procurement center is an agency or public institution (11/12); a
    finance department an agency (11)."""
    admin = world.h("sysadmin")
    enterprise = make("9", "1", "410105", "KLMN0001")
    for kind, text in (("budget_unit", "不能以 9 开头"), ("center", "11 或 12"), ("regulator", "以 11 开头")):
        body = org_body(enterprise, kind=kind, name="某某单位")
        r = await client.post("/api/admin/organizations", json=body, headers=admin)
        assert text in assert_problem(r, 400, "organization_invalid")["detail"], kind
    institution = make("1", "2", "410105", "KLMN0002")  # 事业单位
    for kind in ("budget_unit", "center", "supplier"):
        code = make("1", "2", "410105", f"KLMN00{10 + len(kind)}")
        r = await client.post("/api/admin/organizations", json=org_body(code, kind=kind), headers=admin)
        assert r.status_code == 201, (kind, r.text)
    r = await client.post(
        "/api/admin/organizations", json=org_body(institution, kind="regulator"), headers=admin
    )
    assert "以 11 开头" in assert_problem(r, 400, "organization_invalid")["detail"]
    r = await client.post("/api/admin/organizations", json=org_body(enterprise), headers=admin)
    assert r.status_code == 201  # a supplier may be an enterprise
