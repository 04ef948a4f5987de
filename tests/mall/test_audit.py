"""What the audit log records (GB/T 22239-2019 安全审计: 审计覆盖到每个用户，对重要的用户行为和重要安全事件
进行审计; 审计记录应包括事件的日期和时间、用户、事件类型、事件是否成功及其他与审计相关的信息), and how the
audit administrator reads it: the page (Chinese, filters, pages, an empty state) and the API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bidding import offers
from catalog import designated as dd
from mall import orders
from mall.core import audit, audit_search, clock
from mall.core.models import AuditEntry, OrgKind
from mall.ledger import disclosure
from tests.factories import PASSWORD, World
from tests.mall.test_pages import HTML, assert_page, login_ok, place_order, post_form
from tests.security.login_helpers import assert_problem


async def entries(world: World, *actions: str) -> list[AuditEntry]:
    async with world.db.read() as s:
        stmt = select(AuditEntry).order_by(AuditEntry.seq)
        if actions:
            stmt = stmt.where(AuditEntry.action.in_(actions))
        return list((await s.execute(stmt)).scalars())


def who_what(e: AuditEntry) -> tuple[str, str, str, str]:
    return (e.actor_username, e.actor_role, e.action, e.target_kind)


async def test_administrators_writes_are_recorded_with_who_where_and_what_changed(
    client: Any, world: World
) -> None:
    h = world.h("sysadmin")
    body = {
        "kind": "supplier",
        "name": "审计测试供应商有限公司",
        "credit_code": "91410105MA9XK3L2XX",
        "region_code": "410105",
    }
    from mall.core.credit_code import make

    body["credit_code"] = make("9", "1", "410105", "AUDT0001")
    org = (await client.post("/api/admin/organizations", json=body, headers=h)).json()
    await client.post(
        f"/api/admin/organizations/{org['id']}/users",
        json={"username": "auditclerk", "display_name": "审计职员", "password": "Songshan-lake-2026"},
        headers=h,
    )
    line = {"fiscal_year": 2026, "project_code": "AUD-01", "project_name": "审计项目", "amount": "1000.00"}
    r = await client.post(
        f"/api/admin/organizations/{world.who['buyer_b'].org_id}/budget-lines", json=line, headers=h
    )
    assert r.status_code == 201, r.text
    got = await entries(world, "org_registered", "user_created", "budget_line_added")
    assert [who_what(e) for e in got] == [
        ("sysadmin", "sysadmin", "org_registered", "organization"),
        ("sysadmin", "sysadmin", "user_created", "user"),
        ("sysadmin", "sysadmin", "budget_line_added", "budget_line"),
    ]
    assert {e.ip for e in got} == {"testclient"} and all(e.succeeded for e in got)
    assert audit_search.parsed_state(got[0].after_state)["name"] == "审计测试供应商有限公司"
    assert audit_search.parsed_state(got[1].after_state) == {
        "username": "auditclerk",
        "display_name": audit.PERSONAL_MARK,  # a person's name: encrypted where it is kept, not copied here
        "organization": body["credit_code"],
    }
    assert audit_search.parsed_state(got[2].after_state)["amount"] == "1000.00"


async def test_reviews_moderation_agreements_designations_and_voids_are_recorded(
    client: Any, world: World
) -> None:
    center, regulator = world.h("center"), world.h("regulator")
    laptop = world.listings["laptop"].id
    r = await client.post(
        f"/api/listings/{laptop}/moderation",
        json={"action": "freeze", "reason": "价格异常"},
        headers=regulator,
    )
    assert r.status_code == 200, r.text
    [freeze] = await entries(world, "listing_freeze")
    assert who_what(freeze) == ("regulator", "regulator", "listing_freeze", "listing")
    assert audit_search.parsed_state(freeze.before_state)["status"] == "live"
    assert audit_search.parsed_state(freeze.after_state) == {
        "status": "frozen",
        "by": "regulator",
        "reason": "价格异常",
    }

    agreement = await world.agreement("审计协议", "A02021003", days=30)
    r = await client.post(
        f"/api/agreements/{agreement.id}/terminate", json={"reason": "不再需要"}, headers=center
    )
    assert r.status_code == 200, r.text
    assert [e.action for e in await entries(world, "agreement_created", "agreement_terminated")] == [
        "agreement_created",
        "agreement_terminated",
    ]

    # A designation decided through the API, and one through the page: the same entry either way.
    apply = {
        "category_code": "C23090100",
        "region_code": "410100",
        "prices": [{"name": "印刷", "unit": "页", "price": "0.20"}],
    }
    first = (
        await client.post("/api/designated/applications", json=apply, headers=world.h("supplier_x"))
    ).json()
    r = await client.post(
        f"/api/designated/{first['id']}/review", json={"approve": True, "note": ""}, headers=center
    )
    assert r.status_code == 200, r.text
    second = await dd.apply(
        world.db,
        world.settings,
        world.who["supplier_y"],
        "C23090100",
        "410100",
        [dd.PriceItemDraft("印刷", "页", "0.30")],
    )
    await login_ok(client, "center")
    r = await post_form(client, f"/designated/{second.id}/review", {"decision": "reject", "note": "资质不全"})
    assert r.status_code == 303
    got = await entries(world, "designation_applied", "designation_approved", "designation_rejected")
    assert [(e.action, e.actor_username, e.target) for e in got] == [
        ("designation_applied", "supplier_x", first["id"]),
        ("designation_approved", "center", first["id"]),
        ("designation_applied", "", str(second.id)),  # made by the service, outside any request
        ("designation_rejected", "center", str(second.id)),
    ]
    assert audit_search.parsed_state(got[3].after_state)["note"] == "资质不全"

    oid = await place_order(client, world, "printer")
    await orders.confirm(world.db, world.who["supplier_x"], oid)
    r = await client.post(f"/api/orders/{oid}/void", json={"reason": "违规采购"}, headers=regulator)
    assert r.status_code == 200, r.text
    [void] = await entries(world, "order_voided")
    assert who_what(void) == ("regulator", "regulator", "order_voided", "order") and void.detail == "违规采购"


async def test_exports_started_and_downloaded_and_personal_data_read_are_recorded(
    client: Any, world: World
) -> None:
    oid = await place_order(client, world)
    await orders.confirm(world.db, world.who["supplier_x"], oid)
    assert await disclosure.publish_pending(world.db) == 1
    center = world.h("center")
    assert (
        await client.get("/api/exports/disclosures.csv?mode=supermarket", headers=center)
    ).status_code == 200
    job = (await client.post("/api/exports", json={"format": "csv", "filters": {}}, headers=center)).json()
    got = await entries(world, "export_started", "export_downloaded")
    assert [(e.action, e.target) for e in got] == [
        ("export_downloaded", "csv"),
        ("export_started", job["id"]),
    ]
    assert audit_search.parsed_state(got[0].after_state) == {
        "format": "csv",
        "filters": {"mode": "supermarket"},
    }

    await login_ok(client, "regulator")
    assert_page(await client.get(f"/orders/{oid}", headers=HTML))  # the order: where to deliver, to whom
    assert_page(await client.get(f"/orders/{oid}/contract", headers=HTML))  # no personal data: not recorded
    await login_ok(client, "buyer_a")
    assert_page(await client.get(f"/orders/{oid}", headers=HTML))  # a party reads its own: not recorded
    await login_ok(client, "sysadmin")
    assert_page(await client.get("/admin", headers=HTML))
    reads = await entries(world, "personal_data_viewed")
    assert [(e.actor_username, e.target_kind, e.target) for e in reads] == [
        ("regulator", "order", reads[0].target),
        ("sysadmin", "page", "/admin"),
    ]


async def test_logins_logouts_and_tokens_are_recorded(client: Any, world: World) -> None:
    await login_ok(client, "supplier_y")
    r = await client.post(
        "/logout", headers={**HTML, "x-csrftoken": client.cookies.get("mall_csrf")}, follow_redirects=False
    )
    assert r.status_code == 303
    got = await entries(world, "login", "logout")
    assert [(e.action, e.actor_username, e.actor_role) for e in got] == [
        ("login", "supplier_y", "supplier"),
        ("logout", "supplier_y", "supplier"),
    ]
    issued = await entries(world, "token_issued")
    assert len(issued) == len(world.who) and all(e.target_kind == "token" for e in issued)


async def test_the_audit_page_in_chinese_with_filters_pages_and_an_empty_state(
    client: Any, world: World
) -> None:
    for i in range(3):
        r = await client.post("/api/auth/token", json={"username": "buyer_b", "password": f"wrong-{i}"})
        assert r.status_code == 401
    for i in range(60):
        await audit.record_now(
            world.db, world.who["secadmin"], "audit_verified", target="chain", detail=f"第 {i} 次"
        )
    await login_ok(client, "auditor")
    text = assert_page(await client.get("/audit", headers=HTML))
    for heading in ("时间", "操作人", "角色", "来源地址", "操作", "对象", "变更前", "变更后"):
        assert f"<th>{heading}</th>" in text, heading
    assert "审计日志" in text and "在线保存不少于 180 天" in text
    assert "第 1 / 2 页" in text  # 50 a page, newest first
    assert text.index("第 59 次") < text.index("第 58 次")
    second = assert_page(await client.get("/audit?page=2", headers=HTML))
    assert "第 59 次" not in second and "token_issued" in second

    failed = assert_page(await client.get("/audit?actor=buyer_b&outcome=failed", headers=HTML))
    assert failed.count("登录失败") >= 3 and "第 1 次" not in failed and "清除条件" in failed
    assert "login_failed" in failed and "testclient" in failed
    today = clock.local_date(clock.now())
    dated = assert_page(await client.get(f"/audit?action=login_failed&from={today}&to={today}", headers=HTML))
    assert dated.count('<tr class="row-failed">') == 3
    tomorrow = today + timedelta(days=1)
    empty = assert_page(await client.get(f"/audit?from={tomorrow}", headers=HTML))
    assert "没有符合条件的审计记录" in empty and "查看全部记录" in empty
    bad = assert_page(await client.get("/audit?action=drop_table", headers=HTML))
    assert "参数 action 不是已知的操作代码" in bad  # a bad filter is said, and the whole log shown

    # The API: the same filters, paged, and a bad one refused naming it.
    h = world.h("auditor")
    page = (await client.get("/api/audit?action=login_failed&per_page=2", headers=h)).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    item = page["items"][0]
    assert item["action_label"] == "登录失败" and item["succeeded"] is False
    assert item["actor"]["username"] == "buyer_b" and item["ip"] == "testclient" and len(item["hash"]) == 64
    assert_problem(await client.get("/api/audit?action=nope", headers=h), 400, "invalid_parameter")
    assert_problem(await client.get("/api/audit?from=2026-13-01", headers=h), 400, "invalid_parameter")


async def test_an_empty_log_says_so(client: Any, world: World) -> None:
    await login_ok(client, "auditor")
    text = assert_page(await client.get(f"/audit?actor=nobody{uuid.uuid4().hex[:6]}", headers=HTML))
    assert "没有符合条件的审计记录" in text and "<table" not in text


async def test_the_log_never_holds_a_sealed_quote(client: Any, world: World) -> None:
    quoting = [await world.org(f"aq{i}", OrgKind.SUPPLIER, f"审计询价供应商{i}有限公司") for i in range(3)]
    p = await world.procedure("inquiry", "审计询价项目", invited=quoting, hours=2)
    await offers.quote(world.db, quoting[0], p.id, "45791.23")
    r = await client.post(
        f"/api/procedures/{p.id}/quotes", json={"amount": "45817.37"}, headers=world.h("aq1")
    )
    assert r.status_code == 201, r.text
    answer = (await client.get("/api/audit?per_page=100", headers=world.h("auditor"))).text
    await login_ok(client, "auditor")
    answer += (await client.get("/audit", headers=HTML)).text
    for amount in ("45791.23", "45,791.23", "45817.37", "45,817.37"):
        assert amount not in answer
    assert PASSWORD not in answer
