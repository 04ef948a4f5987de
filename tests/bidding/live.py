"""The application served for real, inside the test's own process and event loop: uvicorn on a free
loopback port, real HTTP and real WebSockets, and the frozen clock (`mall.core.clock.clock.freeze`) still
applies because the server runs in the same process. Clients log in like a browser (session cookie,
CSRF token) and carry their bearer token for `/api`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from tests.e2e.conftest import free_port
from tests.factories import PASSWORD, World

HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 until the block ends; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", ws="auto")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # the server failed to start: raise its error
            raise AssertionError("the server stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Caller:
    """One person: a page session (cookie) and, for /api, a bearer token."""

    name: str
    http: httpx.AsyncClient
    token: str = ""

    def headers_for(self, path: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = dict(HTML) if not path.startswith("/api") else {}
        if self.token and path.startswith("/api"):
            h["Authorization"] = f"Bearer {self.token}"
        return {**h, **(extra or {})}

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.headers_for(path, kw.pop("headers", None)), **kw)

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = self.headers_for(path, kw.pop("headers", None))
        return await self.http.request(method, path, headers=headers, **kw)

    async def form(self, path: str, data: dict[str, str], *, accept: str = HTML["Accept"]) -> httpx.Response:
        """Post a page form with the CSRF token, as a browser would; the redirect is not followed."""
        token = self.http.cookies.get("mall_csrf") or ""
        return await self.http.post(
            path, data={**data, "_csrf_token": token}, headers={"Accept": accept}, follow_redirects=False
        )

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)

    async def aclose(self) -> None:
        await self.http.aclose()


async def caller(base: str, world: World | None, name: str) -> Caller:
    """A caller logged in as `name` (a user of the world), or anonymous for name 'anonymous'."""
    http = httpx.AsyncClient(base_url=base, timeout=60, follow_redirects=False)
    c = Caller(name, http)
    r = await http.get("/login", headers=HTML)
    assert r.status_code == 200, r.text[:300]
    if name == "anonymous" or world is None:
        return c
    r = await c.form("/login", {"username": name, "password": PASSWORD})
    assert r.status_code == 303, (name, r.status_code, r.text[:500])
    c.token = world.tokens[name]
    return c


@dataclass(frozen=True)
class SocketAnswer:
    """What a WebSocket handshake got: refused (HTTP status), or accepted with the messages that came
    before the server closed it (close code), or still open after its first message."""

    refused_status: int | None = None
    messages: tuple[str, ...] = ()
    close_code: int | None = None

    @property
    def accepted(self) -> bool:
        return self.refused_status is None

    def first_json(self) -> dict[str, Any]:
        assert self.messages, self
        out: dict[str, Any] = json.loads(self.messages[0])
        return out


async def socket_answer(
    base: str, path: str, *, cookie: str = "", origin: str | None = None, extra: dict[str, str] | None = None
) -> SocketAnswer:
    """Open a WebSocket, read until the server either closes it or sends its first message, then close.
    A server that accepts and then neither sends nor closes would hang here: the room always does one."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    headers = dict(extra or {})
    if cookie:
        headers["Cookie"] = cookie
    url = "ws://" + base.removeprefix("http://") + path
    try:
        async with connect(url, additional_headers=headers, origin=origin, open_timeout=30) as ws:
            try:
                first = await ws.recv()
            except ConnectionClosed as closed:
                return SocketAnswer(close_code=closed.rcvd.code if closed.rcvd else None)
            return SocketAnswer(messages=(str(first),))
    except InvalidStatus as exc:
        return SocketAnswer(refused_status=exc.response.status_code)


@contextlib.asynccontextmanager
async def open_socket(
    base: str, path: str, *, cookie: str = "", origin: str | None = None
) -> AsyncIterator[Any]:
    """A WebSocket kept open for the block (the caller reads from it)."""
    from websockets.asyncio.client import connect

    url = "ws://" + base.removeprefix("http://") + path
    headers = {"Cookie": cookie} if cookie else {}
    async with connect(url, additional_headers=headers, origin=origin, open_timeout=30) as ws:
        yield ws
