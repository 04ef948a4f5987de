"""Apps built with their own settings, and HTTP clients that call them from a chosen address."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx

from mall.core.settings import Settings
from tests.conftest import app_for

HTML = {"Accept": "text/html,application/xhtml+xml"}


@contextlib.asynccontextmanager
async def served(settings: Settings, *, separate: bool = False, **overrides: Any) -> AsyncIterator[Any]:
    """The app as `create_app` builds it for these settings (`separate`: an app of its own, as in
    another process, not the one the run shares); its connections are closed afterwards."""
    from mall.site.app import create_app

    app = create_app(replace(settings, **overrides)) if separate else app_for(replace(settings, **overrides))
    try:
        yield app
    finally:
        await app.state.room_redis.aclose()
        await app.state.db.dispose()


def client_from(app: Any, ip: str) -> httpx.AsyncClient:
    """A client whose TCP peer address, as the app sees it, is `ip`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://mall.test"
    )


@contextlib.asynccontextmanager
async def served_clients(settings: Settings, *ips: str, **overrides: Any) -> AsyncIterator[tuple[Any, ...]]:
    """`served(settings, **overrides)` and a client from each of `ips`: (app, client, ...)."""
    async with served(settings, **overrides) as app, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client_from(app, ip)) for ip in ips]
        yield (app, *clients)


async def token_request(c: httpx.AsyncClient, username: str, password: str, **headers: str) -> httpx.Response:
    return await c.post("/api/auth/token", json={"username": username, "password": password}, headers=headers)


async def csrf_token(c: httpx.AsyncClient) -> str:
    if not c.cookies.get("mall_csrf"):
        r = await c.get("/login", headers=HTML)
        assert r.status_code == 200, r.text
    token = c.cookies.get("mall_csrf")
    assert token
    return str(token)


async def post_form(c: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    return await c.post(
        path, data={**data, "_csrf_token": await csrf_token(c)}, headers=HTML, follow_redirects=False
    )


async def login_form(c: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await post_form(c, "/login", {"username": username, "password": password})


def flashes(html: str) -> list[str]:
    return re.findall(r'<div class="flash flash-\w+"[^>]*>([^<]*)</div>', html)


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A refusal as problem+json: this status and code, and a Chinese message for people."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), body
    return body
