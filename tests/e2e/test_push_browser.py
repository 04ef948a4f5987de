"""Push subscriptions in a real browser: a procurement center registers its receiver, copies the secret
shown once, and watches the records the real worker publishes arrive (and a failing receiver retried).

The browser tests' running mall (a web server and a worker, real processes) serves it; the receiver
is the HTTP server of test_push, on 127.0.0.1, which both processes are told to allow
(MALL_PUSH_ALLOWED_HOSTS).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mall.ledger import disclosure
from tests.e2e.conftest import require_chromium, shot
from tests.e2e.pages import signed_in, wait_until_shown
from tests.factories import World
from tests.mall.test_push import Receiver, payload

require_chromium()
pytestmark = pytest.mark.browser


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


async def wait_for(predicate: Any, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_center_registers_a_receiver_and_watches_records_arrive(
    server: str, browser: Any, world: World, receiver: Receiver
) -> None:
    errors: list[str] = []
    page = await signed_in(browser, errors, server, "center")
    await page.click("nav.site-nav a[href='/push']")
    await page.wait_for_load_state("networkidle")
    assert "还没有推送订阅" in await page.inner_text("main")
    await page.fill("#s-name", "省中心数据交换")
    await page.fill("#s-url", receiver.url)
    await page.click("form[action='/push'] button[type=submit]")
    await page.wait_for_load_state("networkidle")
    receiver.secret = (await page.inner_text("#push-secret")).strip()
    assert receiver.secret.startswith("whsec_")
    assert "只显示这一次" in await page.inner_text("main")

    # Deals are published by the worker, which then pushes them to the receiver.
    async with world.db.write() as tx:
        for i in range(3):
            disclosure.stage(tx, payload(i))
    await wait_for(lambda: len(receiver.accepted) >= 3, "three records at the receiver")
    assert receiver.accepted == [1, 2, 3] and receiver.problems == []

    # The receiver answers before the worker commits the cursor that the page shows: wait for it.
    await wait_until_shown(page, page.url, "3 / 3", "the cursor at the third record")
    main = await page.inner_text("main")
    assert "只显示这一次" not in main and receiver.secret not in main
    assert "3 / 3" in main and "成功" in main
    await shot(page, "push-subscription")

    receiver.status = 500  # the receiver fails: the next record waits, retried with backoff
    async with world.db.write() as tx:
        disclosure.stage(tx, payload(9))
    await wait_for(lambda: receiver.attempts >= 4, "the attempt at the fourth record")
    for _ in range(50):
        await page.goto(f"{server}/push")
        main = await page.inner_text("main")
        if "重试中" in main:
            break
        await asyncio.sleep(0.2)
    assert "重试中" in main and "积压 1 条" in main
    await shot(page, "push-subscriptions-retrying")
    assert errors == []
