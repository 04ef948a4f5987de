"""One password policy wherever a password is set: at least 10 characters, not only whitespace, not the
username, not one of the 10,000 most common passwords (shipped with the mall, compared ignoring case)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mall.core.models import User
from mall.core.settings import Settings
from tests.factories import PASSWORD, World
from tests.security import login_helpers as lh

ROOT = Path(__file__).resolve().parents[2]

WEAK = [
    ("short-pw9", "至少 10 个字符"),
    ("          ", "空白"),
    ("  \u3000\u00a0    \u3000  ", "空白"),
    ("Huanghe\tliu-2026", "不允许的字符"),  # a tab, like any control character (a password is one line)
    ("ZhangSan2026", "用户名"),
    ("1q2w3e4r5t", "常见"),
    ("QWERTYUIOP", "常见"),
    ("Password123", "常见"),
    ("x" * 129, "128"),
]


async def _user_exists(world: World, username: str) -> bool:
    async with world.db.read() as s:
        return (await s.scalar(select(User.id).where(User.username == username))) is not None


@pytest.mark.parametrize(("password", "reason"), WEAK)
async def test_the_system_administrator_cannot_open_an_account_with_a_weak_password(
    client: Any, world: World, password: str, reason: str
) -> None:
    org = world.who["buyer_a"].org_id
    body = {"username": "zhangsan2026", "display_name": "张三", "password": password}
    r = await client.post(f"/api/admin/organizations/{org}/users", json=body, headers=world.h("sysadmin"))
    refused_at_the_door = len(password) > 128 or "\t" in password  # the request's own limits
    problem = lh.assert_problem(r, 400, "invalid_input" if refused_at_the_door else "user_invalid")
    assert reason in problem["detail"], problem
    assert not await _user_exists(world, "zhangsan2026")
    # The same account with a sound password opens, and its user can log in.
    body["password"] = "Huanghe-liu-2026"
    r = await client.post(f"/api/admin/organizations/{org}/users", json=body, headers=world.h("sysadmin"))
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/auth/token", json={"username": "zhangsan2026", "password": "Huanghe-liu-2026"}
    )
    assert r.status_code == 201


async def test_the_administration_page_refuses_a_weak_password_with_the_rule(
    world: World, settings: Settings
) -> None:
    org = world.who["buyer_a"].org_id
    async with lh.served_clients(settings, "198.51.100.60") as (app, c):
        assert (await lh.login_form(c, "sysadmin", PASSWORD)).status_code == 303
        form = {"username": "lisi2026", "display_name": "李四", "password": "1234567890"}
        r = await lh.post_form(c, f"/admin/organizations/{org}/users", form)
        assert r.status_code == 303
        messages = lh.flashes((await c.get("/admin", headers=lh.HTML)).text)
        assert any("常见" in m for m in messages), messages
        assert not await _user_exists(world, "lisi2026")
        r = await lh.post_form(c, f"/admin/organizations/{org}/users", {**form, "password": "Songshan-2026"})
        assert r.status_code == 303
        assert await _user_exists(world, "lisi2026")
        async with lh.client_from(app, "198.51.100.61") as other:
            assert (await lh.token_request(other, "lisi2026", "Songshan-2026")).status_code == 201


def test_the_policy_rules_one_by_one() -> None:
    from mall.core.passwords import password_problem

    assert password_problem("Huanghe-liu-2026", "zhangsan") is None
    assert password_problem("abcdefghi", "zhangsan") == (
        "too_short",
        "密码至少 10 个字符，首尾空格不计（现为 9 个）",
    )
    assert password_problem(" " * 12, "zhangsan")[0] == "blank"  # type: ignore[index]
    assert password_problem("ZHANGSAN2026", "zhangsan2026")[0] == "same_as_username"  # type: ignore[index]
    assert password_problem("Basketball", "zhangsan")[0] == "too_common"  # type: ignore[index]
    assert password_problem("x" * 129, "zhangsan")[0] == "too_long"  # type: ignore[index]
    # Spaces around a short password do not make it long; full-width forms are their ASCII selves.
    assert password_problem("x" + " " * 9, "zhangsan")[0] == "too_short"  # type: ignore[index]
    assert password_problem("  abcdefghi  ", "zhangsan")[0] == "too_short"  # type: ignore[index]
    assert password_problem("１２３４５６７８９０", "zhangsan")[0] == "too_common"  # type: ignore[index]
    assert password_problem("ｐａｓｓｗｏｒｄ１２３", "zhangsan")[0] == "too_common"  # type: ignore[index]
    assert password_problem(" Basketball ", "zhangsan")[0] == "too_common"  # type: ignore[index]
    assert password_problem("ｚｈａｎｇｓａｎ２０２６", "zhangsan2026")[0] == "same_as_username"  # type: ignore[index]
    assert password_problem("\u200b" * 10, "zhangsan")[0] == "bad_character"  # type: ignore[index]
    # The demo password is printed in the README: only the demo seed may set it.
    assert password_problem("Sunshine-demo-2026", "lisi2026")[0] == "published"  # type: ignore[index]
    assert password_problem("Sunshine-demo-2026", "buyer1", published_ok=True) is None
    # Ten characters are enough when nothing else is wrong.
    assert password_problem("Qz7#mK2!pL", "zhangsan") is None


def test_the_shipped_list_holds_the_10000_most_common_passwords_and_says_where_it_comes_from() -> None:
    path = ROOT / "mall" / "data" / "common-passwords.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10000 and len(set(lines)) == 10000
    assert lines[:4] == ["123456", "123456789", "qwerty", "password"]  # most common first
    assert all(line == line.strip().lower() and line for line in lines)
    readme = (ROOT / "mall" / "data" / "README.md").read_text(encoding="utf-8")
    assert "common-passwords.txt" in readme and "Django" in readme and "BSD" in readme


async def test_the_api_refuses_a_weak_new_password_on_change(client: Any, world: World) -> None:
    r = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "qwertyuiop"},
        headers=world.h("buyer_a"),
    )
    problem = lh.assert_problem(r, 400, "password_invalid")
    assert problem["rule"] == "too_common" and "常见" in problem["detail"]
    r = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "buyer_a"},
        headers=world.h("buyer_a"),
    )
    lh.assert_problem(r, 400, "password_invalid")
