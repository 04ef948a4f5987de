"""The whole supermarket flow in a real browser (Debian's chromium driven by Playwright):
a buyer buys, the supplier confirms at a lower price, and the deal appears on the public page.

The web server and a worker run as real processes against the test database and Redis.
Screenshots go to test-artifacts/ (kept by CI for people to look at).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mall.settings import Settings
from tests.factories import PASSWORD, World

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("MALL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

if not CHROMIUM:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI=true but no chromium binary: the browser tests must run in CI")
    pytest.skip(
        "chromium is not installed (apt-get install chromium); browser tests skipped", allow_module_level=True
    )

pytestmark = pytest.mark.browser


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
        MALL_QUEUE_NAME=settings.queue_name,
        MALL_SWEEP_INTERVAL_SECONDS="0.5",
        **extra,
    )
    return env


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    procs = []
    with (tmp_path / "web.log").open("wb") as web_log, (tmp_path / "worker.log").open("wb") as worker_log:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "mall.cli", "serve", "--port", str(port)],
                env=env_for(settings),
                stdout=web_log,
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "mall.cli", "worker"],
                env=env_for(settings),
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
                if time.monotonic() > deadline:
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


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
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


async def test_buy_confirm_and_see_the_deal_published(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    laptop = world.listings["laptop"]

    # The buyer finds the goods, puts them in the cart and checks out against a budget line.
    buyer = await new_page(browser, errors)
    await login(buyer, server, "buyer_a")
    await buyer.goto(f"{server}/goods?q=laptop")
    await shot(buyer, "01-goods")
    await buyer.click(f"a[href='/goods/{laptop.id}']")
    await buyer.fill("input[name=quantity]", "2")
    await buyer.click("form[action='/cart/add'] button[type=submit]")
    await buyer.goto(f"{server}/cart")
    await buyer.select_option("select[name=budget_line_id]", str(world.lines["a1"].id))
    await buyer.fill("input[name=delivery_address]", "甲单位 行政楼 201")
    await shot(buyer, "02-cart")
    await buyer.click("#checkout-submit")
    await buyer.wait_for_url(f"{server}/orders/*")
    order_url = buyer.url
    assert "待供应商确认" in await buyer.content()
    await shot(buyer, "03-order-placed")

    # A wrong input: an empty cart checks out to a clear message, not an error page.
    await buyer.goto(f"{server}/cart")
    assert "购物车" in await buyer.content()

    # The supplier confirms at a lower price.
    supplier = await new_page(browser, errors)
    await login(supplier, server, "supplier_x")
    await supplier.goto(order_url)
    price_input = supplier.locator("input[name^=price_]").first
    # The form itself stops a higher price (max=); past that, the server refuses it with a message.
    assert await price_input.get_attribute("max") == "5000.00"
    await price_input.evaluate("el => el.removeAttribute('max')")
    await price_input.fill("5200.00")
    await supplier.click("#confirm-order")
    await supplier.wait_for_load_state("networkidle")
    assert "只能降价" in await supplier.content()
    await shot(supplier, "04-confirm-refused")
    await supplier.locator("input[name^=price_]").first.fill("4900.00")
    await supplier.click("#confirm-order")
    await supplier.wait_for_load_state("networkidle")
    content = await supplier.content()
    assert "已确认" in content and "9,800.00" in content
    await shot(supplier, "05-confirmed")

    # Within seconds the deal is on the public page, for someone not logged in.
    public = await new_page(browser, errors)
    order_no = order_url.rsplit("/", 1)[-1]
    async with world.db.read() as s:
        from mall.models import Order

        order = await s.get(Order, __import__("uuid").UUID(order_no))
        assert order is not None
        number = order.order_no
    deadline = time.monotonic() + 20
    while True:
        await public.goto(f"{server}/disclosures")
        if number in await public.content():
            break
        assert time.monotonic() < deadline, "the deal was not published within 20 s"
        await public.wait_for_timeout(300)
    await shot(public, "06-disclosures")
    await public.goto(f"{server}/disclosures/1")
    text = await public.content()
    assert number in text and "4,900.00" in text and "甲供应商有限公司" in text
    await shot(public, "07-disclosure-record")
    assert errors == [], errors
