"""Browser test support: the web server and a worker as real processes, chromium via Playwright.

Screenshots go to test-artifacts/ (kept by CI for people to look at).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mall.core.settings import Settings
from tests.factories import PASSWORD, World

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("MALL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> None:
    """Called at the top of every browser test module."""
    if not CHROMIUM:
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but no chromium binary: the browser tests must run in CI")
        pytest.skip(
            "chromium is not installed (apt-get install chromium); browser tests skipped",
            allow_module_level=True,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALL_")}
    env.update(
        DATABASE_URL=settings.resolved_database_url,
        REDIS_URL=settings.resolved_redis_url,
        MALL_DATA_DIR=str(settings.data_dir),
        MALL_SECRET_KEY=settings.secret_key,
        MALL_DATA_KEY=settings.data_key,
        MALL_QUEUE_NAME=settings.queue_name,
        MALL_SWEEP_INTERVAL_SECONDS="0.5",
        MALL_PUSH_ALLOWED_HOSTS=settings.push_allowed_hosts,
        **extra,
    )
    return env


@contextlib.contextmanager
def web_server(settings: Settings, tmp_path: Path, *serve_args: str, worker: bool = True) -> Iterator[str]:
    """`mall serve` (with `serve_args`) and, unless told otherwise, a `mall worker`, as real processes
    against the test database and Redis; yields the base URL once the server answers."""
    port = free_port()
    # the server's public address is where the browser finds it (the room's WebSocket checks Origin)
    public = {"MALL_PUBLICATION_BASE_URL": f"http://127.0.0.1:{port}"}
    procs = []
    with (tmp_path / "web.log").open("wb") as web_log, (tmp_path / "worker.log").open("wb") as worker_log:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "mall.cli", "serve", "--port", str(port), *serve_args],
                env=env_for(settings, **public),
                stdout=web_log,
                stderr=subprocess.STDOUT,
            )
        )
        if worker:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "mall.cli", "worker"],
                    env=env_for(settings, **public),
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                )
            )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=2).close()  # noqa: S310 (localhost)
                break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise AssertionError((tmp_path / "web.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield base
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="package")
def running_mall(settings: Settings, workdir: Path) -> Iterator[str]:
    """One `mall serve` and one `mall worker` for the browser tests of this package (starting them is
    most of a browser test's cost), stopped when the package is done: a worker left running would
    take the jobs of later tests. Each test still starts from its own world: the database and Redis
    are put back under the running processes, which hold no state of their own between requests."""
    logs = workdir / "e2e-server"
    logs.mkdir(exist_ok=True)
    # the push receivers of these tests listen on 127.0.0.1, which the mall refuses unless listed
    with web_server(replace(settings, push_allowed_hosts="127.0.0.1"), logs) as base:
        yield base


def worker_idle(settings: Settings, timeout: float = 15.0) -> bool:
    """Whether the worker has run every job it was given (nothing queued, nothing started), seen twice
    in a row; waits up to `timeout`. A test leaves nothing in flight for the next one's world."""
    from redis import Redis
    from rq import Queue
    from rq.registry import StartedJobRegistry

    conn = Redis.from_url(settings.resolved_redis_url)
    try:
        queue = Queue(settings.queue_name, connection=conn)
        started = StartedJobRegistry(queue=queue)
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            quiet = quiet + 1 if queue.count == 0 and started.count == 0 else 0
            if quiet >= 2:
                return True
            time.sleep(0.2)
        return False
    finally:
        conn.close()


@pytest.fixture
def server(running_mall: str, world: World, settings: Settings) -> Iterator[str]:
    """The running mall's base URL, over this test's world."""
    yield running_mall
    worker_idle(settings)


@pytest.fixture(scope="package")
async def chromium() -> AsyncIterator[Any]:
    """One Chromium for the browser tests; each test's pages live in browser contexts of their own."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def browser(chromium: Any) -> AsyncIterator[Any]:
    """The run's Chromium; the contexts (cookies, storage, pages) a test opened are closed after it."""
    yield chromium
    for context in list(chromium.contexts):
        await context.close()


async def new_page(browser: Any, errors: list[str]) -> Any:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return page


async def login(page: Any, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_load_state("networkidle")


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def indexed(world: World, timeout: float = 20.0) -> None:
    """Wait until the worker has applied every pending listing change to the search index."""
    from mall.core.models import Outbox

    deadline = time.monotonic() + timeout
    while True:
        async with world.db.read() as s:
            pending = await s.scalar(
                select(func.count()).where(Outbox.topic == "search", Outbox.status == "pending")
            )
        if not pending:
            return
        assert time.monotonic() < deadline, "the worker did not update the search index in time"
        await asyncio.sleep(0.1)
