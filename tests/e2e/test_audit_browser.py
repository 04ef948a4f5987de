"""The audit administrator in a real browser (三员分立): it logs in, reads the audit log and finds its own
login there, with who, from where and when; the other administrators' pages refuse it with the 403
page; and the API refuses its writes with a 403 problem document."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import require_chromium, shot
from tests.e2e.pages import signed_in
from tests.factories import World

require_chromium()
pytestmark = pytest.mark.browser


async def test_the_audit_administrator_reads_the_log_and_can_change_nothing(
    server: str, browser: Any, world: World
) -> None:
    errors: list[str] = []
    page = await signed_in(browser, errors, server, "auditor")
    assert page.url.endswith("/audit")  # where an audit administrator lands
    await page.click("nav.site-nav >> text=审计日志")
    await page.wait_for_load_state("networkidle")
    assert await page.inner_text("h1") == "审计日志"
    head = await page.locator("#audit-log thead").inner_text()
    for column in ("时间", "操作人", "角色", "来源地址", "操作", "对象", "变更前", "变更后"):
        assert column in head, column
    # Its own login, the newest entry with that action.
    await page.select_option("select[name=action]", "login")
    await page.fill("input[name=actor]", "auditor")
    await page.click("form.filter-bar button[type=submit]")
    await page.wait_for_load_state("networkidle")
    first = page.locator("#audit-log tbody tr").first
    row = await first.inner_text()
    assert "登录成功" in row and "auditor" in row and "审计管理员" in row and "127.0.0.1" in row, row
    await shot(page, "audit-log")

    # The other administrators' pages: the 403 page, in Chinese.
    for path in ("/admin", "/admin/settings", "/security", "/push", "/exports"):
        response = await page.goto(server + path)
        assert response is not None and response.status == 403, path
        assert "您没有权限执行此操作" in await page.inner_text("main"), path
    await shot(page, "audit-admin-refused")

    # The API refuses its writes (its own role's included) with problem+json.
    bearer = {"Authorization": f"Bearer {world.tokens['auditor']}"}
    me = str(world.who["auditor"].user_id)
    org = str(world.who["buyer_b"].org_id)
    for method, path, body in [
        ("PUT", f"/api/security/users/{me}/role", {"role": "secadmin"}),
        ("POST", "/api/admin/organizations", {"kind": "supplier"}),
        ("POST", f"/api/admin/organizations/{org}/users", {"username": "x"}),
        ("DELETE", f"/api/security/tokens/{me}", None),
    ]:
        r = await page.request.fetch(server + path, method=method, headers=bearer, data=body)
        assert r.status == 403, (path, r.status)
        assert r.headers["content-type"].startswith("application/problem+json"), path
        problem = await r.json()
        assert problem["code"] == "forbidden" and problem["status"] == 403, problem
    r = await page.request.get(server + "/api/audit?action=login&actor=auditor", headers=bearer)
    assert r.status == 200 and (await r.json())["total"] >= 1
    # the 403 answers above are logged by the browser as failed resources; nothing else may be
    assert [e for e in errors if "403" not in e] == [], errors
