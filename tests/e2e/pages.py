"""Steps the browser tests share: a signed-in page, waiting for a public page to show something."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import login, new_page


async def signed_in(browser: Any, errors: list[str], server: str, username: str) -> Any:
    """A new page (its script errors go to `errors`) logged in as `username`."""
    page = await new_page(browser, errors)
    await login(page, server, username)
    return page


async def wait_until_shown(page: Any, url: str, text: str, what: str, within: float = 60.0) -> None:
    """Reload `url` until it shows `text`, for at most `within` seconds: what a worker publishes
    arrives within a second or two, but CI runs two suites side by side on two cores."""
    deadline = time.monotonic() + within
    while True:
        await page.goto(url)
        if text in await page.content():
            return
        assert time.monotonic() < deadline, f"{what} was not shown within {within:.0f} s"
        await page.wait_for_timeout(300)
