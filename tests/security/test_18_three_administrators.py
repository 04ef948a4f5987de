"""三员分立 (GB/T 22239-2019: 应授予管理用户所需的最小权限，实现管理用户的权限分离): the system
administrator, the security administrator and the audit administrator. No account holds two of
their roles (one column, and the database refuses anything else); a platform user without a role
can do nothing; only the security administrator grants roles, never its own; the audit
administrator reads the log and changes nothing. (Every route, as each of the three: the role
matrices of tests/mall/test_access.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mall import accounts, cli
from mall.core import audit, auth
from mall.core.models import AuditEntry, User
from mall.core.settings import Settings
from tests.factories import World
from tests.security.login_helpers import assert_problem


async def test_no_account_holds_two_roles_nor_one_that_does_not_exist(world: World) -> None:
    for value in ("admin", "sysadmin,auditor", "sysadmin auditor", "SYSADMIN"):
        with pytest.raises(IntegrityError):
            async with world.db.write() as tx:
                await tx.session.execute(
                    update(User).where(User.username == "sysadmin").values(admin_role=value)
                )
    async with world.db.read() as s:
        assert await s.scalar(select(User.admin_role).where(User.username == "sysadmin")) == "sysadmin"
    assert [r for r, _ in User.__table__.c.items() if r in ("admin_role", "is_admin")] == ["admin_role"]


async def test_roles_fail_closed(client: Any, world: World) -> None:
    """An administrator's role counts only on a user of the platform operator; a platform user
    without one has no role at all."""
    async with world.db.write() as tx:
        await tx.session.execute(update(User).where(User.username == "buyer_b").values(admin_role="auditor"))
        await tx.session.execute(update(User).where(User.username == "auditor").values(admin_role=None))
    async with world.db.read() as s:
        buyer = (await s.execute(select(User).where(User.username == "buyer_b"))).scalar_one()
        nobody = (await s.execute(select(User).where(User.username == "auditor"))).scalar_one()
    assert auth.role_of(buyer) == "none" and auth.role_of(nobody) == "none"
    for who in ("buyer_b", "auditor"):
        assert_problem(await client.get("/api/audit", headers=world.h(who)), 403, "forbidden")
    assert (await client.get("/api/me", headers=world.h("auditor"))).json()["role"] == "none"


async def test_only_the_security_administrator_grants_roles_and_never_its_own(
    client: Any, world: World
) -> None:
    platform = world.who["sysadmin"].org_id
    r = await client.post(
        f"/api/admin/organizations/{platform}/users",
        json={"username": "newauditor", "display_name": "新审计员", "password": "Songshan-lake-2026"},
        headers=world.h("sysadmin"),
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    token = (
        await client.post(
            "/api/auth/token", json={"username": "newauditor", "password": "Songshan-lake-2026"}
        )
    ).json()["token"]
    mine = {"Authorization": f"Bearer {token}"}
    # Opened by the system administrator, the account has no power until a role is granted.
    assert (await client.get("/api/me", headers=mine)).json()["role"] == "none"
    assert_problem(await client.get("/api/audit", headers=mine), 403, "forbidden")
    body = {"role": "auditor"}
    for who in ("sysadmin", "auditor", "center"):
        r = await client.put(f"/api/security/users/{new_id}/role", json=body, headers=world.h(who))
        assert_problem(r, 403, "forbidden")
    r = await client.put(f"/api/security/users/{new_id}/role", json=body, headers=world.h("secadmin"))
    assert r.status_code == 200 and r.json()["admin_role"] == "auditor", r.text
    # A changed role ends the user's sessions and tokens: it logs in again, as an auditor now.
    assert_problem(await client.get("/api/me", headers=mine), 401, "unauthenticated")
    token = (
        await client.post(
            "/api/auth/token", json={"username": "newauditor", "password": "Songshan-lake-2026"}
        )
    ).json()["token"]
    assert (await client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    # One role at a time: granting another replaces it.
    r = await client.put(
        f"/api/security/users/{new_id}/role", json={"role": "sysadmin"}, headers=world.h("secadmin")
    )
    assert r.json()["admin_role"] == "sysadmin"
    # Never one's own role; never a role to someone outside the platform operator; only the three.
    me = world.who["secadmin"].user_id
    r = await client.put(f"/api/security/users/{me}/role", json={"role": None}, headers=world.h("secadmin"))
    assert_problem(r, 403, "own_role")
    buyer = world.who["buyer_a"].user_id
    r = await client.put(f"/api/security/users/{buyer}/role", json=body, headers=world.h("secadmin"))
    assert_problem(r, 403, "not_platform_user")
    r = await client.put(
        f"/api/security/users/{new_id}/role", json={"role": "admin"}, headers=world.h("secadmin")
    )
    assert_problem(r, 400, "invalid_role")

    async with world.db.read() as s:
        changes = list(
            (
                await s.execute(
                    select(AuditEntry).where(AuditEntry.action == "role_changed").order_by(AuditEntry.seq)
                )
            ).scalars()
        )
    assert [(e.actor_username, e.actor_role, e.target, e.before_state, e.after_state) for e in changes] == [
        ("secadmin", "secadmin", "newauditor", '{"admin_role":null}', '{"admin_role":"auditor"}'),
        ("secadmin", "secadmin", "newauditor", '{"admin_role":"auditor"}', '{"admin_role":"sysadmin"}'),
    ]


async def test_the_audit_administrator_reads_and_changes_nothing(client: Any, world: World) -> None:
    h = world.h("auditor")
    r = await client.get("/api/audit?per_page=5", headers=h)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["per_page"] == 5 and len(page["items"]) == 5 and page["total"] > 5
    assert page["online_days"] == 180
    assert [e["seq"] for e in page["items"]] == sorted((e["seq"] for e in page["items"]), reverse=True)
    assert (await client.get("/api/audit/verify", headers=h)).json()["ok"] is True
    # Every write of the administrators refuses it, its own role's included.
    me = world.who["auditor"].user_id
    org = world.who["buyer_b"].org_id
    for method, path, body in [
        ("PUT", f"/api/security/users/{me}/role", {"role": "secadmin"}),
        ("DELETE", f"/api/security/users/{me}/totp", None),
        ("POST", "/api/admin/organizations", {}),
        ("POST", f"/api/admin/organizations/{org}/users", {}),
        ("POST", f"/api/admin/organizations/{org}/budget-lines", {}),
        ("DELETE", f"/api/admin/login-throttles/{me}", None),
        ("DELETE", f"/api/security/tokens/{me}", None),
        ("POST", "/api/subscriptions", {"name": "x", "url": "https://example.com/h"}),
        ("POST", "/api/exports", {"format": "csv"}),
    ]:
        r = await client.request(method, path, json=body, headers=h)
        assert_problem(r, 403, "forbidden")
    async with world.db.read() as s:
        assert await s.scalar(select(User.admin_role).where(User.id == me)) == "auditor"
    # And reading the log is itself recorded.
    async with world.db.read() as s:
        reads = (await s.execute(select(AuditEntry).where(AuditEntry.action == "audit_log_viewed"))).scalars()
        assert [(e.actor_username, e.target) for e in reads] == [("auditor", "/api/audit")]


async def test_the_first_security_administrator_is_made_on_the_host(
    world: World, settings: Settings, capsys: Any
) -> None:
    """`mall grant-role`: how an upgraded or new deployment gets its security administrator; audited."""
    assert cli.build_parser().parse_args(["grant-role", "sysadmin", "secadmin"]).fn is cli.cmd_grant_role
    code = await asyncio.to_thread(
        accounts.grant_role_command, world.db.url, "buyer_a", "secadmin", settings.resolved_data_keys()
    )
    assert code == 1 and "平台运营方" in capsys.readouterr().err
    async with world.db.write() as tx:
        await tx.session.execute(update(User).where(User.username == "secadmin").values(admin_role=None))
    code = await asyncio.to_thread(
        accounts.grant_role_command, world.db.url, "secadmin", "secadmin", settings.resolved_data_keys()
    )
    assert code == 0 and "安全管理员" in capsys.readouterr().out
    async with world.db.read() as s:
        e = (await s.execute(select(AuditEntry).where(AuditEntry.action == "role_changed"))).scalar_one()
    assert (e.actor_user_id, e.target, e.after_state) == (None, "secadmin", '{"admin_role":"secadmin"}')
    assert "mall grant-role" in e.detail
    assert (await audit.verify(world.db)).ok
