"""The login page names the demo accounts and their password only on a database the demo data was
seeded into; the demo password passes the password policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mall.core.db import Database
from mall.core.settings import Settings
from mall.devtools import seed
from tests.factories import World
from tests.security.login_helpers import HTML, served_clients, token_request

ROOT = Path(__file__).resolve().parents[2]


async def test_no_demo_data_no_demo_accounts_on_the_login_page(client: Any, world: World) -> None:
    text = (await client.get("/login", headers=HTML)).text
    assert "demo1234" not in text and seed.DEMO_PASSWORD not in text
    assert "演示账号" not in text and "buyer1" not in text


@pytest.mark.slow
async def test_the_demo_seed_shows_its_accounts_and_their_password_on_the_login_page(
    clean: None, db: Database, settings: Settings
) -> None:
    await seed.seed_demo(db, settings, history=0)
    async with served_clients(settings, "198.51.100.70") as (_app, c):
        text = (await c.get("/login", headers=HTML)).text
        assert "演示账号" in text and seed.DEMO_PASSWORD in text
        for username in ("buyer1", "supplier1", "center1", "regulator1", "sysadmin", "secadmin", "auditor"):
            assert re.search(rf"<code>{username}</code>", text), username
        assert "<code>admin</code>" not in text  # one administrator for everything is gone (三员分立)
        for username in ("buyer1", "sysadmin", "secadmin", "auditor"):
            assert (await token_request(c, username, seed.DEMO_PASSWORD)).status_code == 201


def test_the_demo_password_passes_the_policy_and_the_old_one_is_gone() -> None:
    from mall.core.passwords import password_problem

    for username in ("buyer1", "sysadmin"):
        assert password_problem(seed.DEMO_PASSWORD, username, published_ok=True) is None
        # Published in the README: nobody but the demo seed may choose it.
        assert password_problem(seed.DEMO_PASSWORD, username) == (
            "published",
            "该密码是公开的演示密码，任何人都知道，请换一个",
        )
    assert password_problem("demo1234", "buyer1") is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"password `{seed.DEMO_PASSWORD}`" in readme
    for path in [
        ROOT / "README.md",
        *ROOT.joinpath("templates").rglob("*.html"),
        ROOT / "mall" / "devtools" / "seed.py",
    ]:
        assert "demo1234" not in path.read_text(encoding="utf-8"), path
