"""The Content-Security-Policy in a real browser: pages of every role load without a single
violation, and the API docs (Swagger UI) still start without inline script."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import login, new_page, require_chromium, shot
from tests.factories import World

pytestmark = pytest.mark.browser
require_chromium()

LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


async def visit(page: Any, url: str) -> list[str]:
    await page.goto(url)
    await page.wait_for_load_state("networkidle")
    return list(await page.evaluate("window.__csp || []"))


async def test_pages_and_api_docs_run_under_the_policy(server: str, browser: Any, world: World) -> None:
    errors: list[str] = []
    violations: list[str] = []
    for who, paths in [
        (None, ["/", "/goods", "/disclosures", "/login", "/no-such-page"]),
        ("buyer_a", ["/cart", "/orders", "/procedures", "/procedures/new", "/budgets", "/agreements"]),
        ("supplier_x", ["/supplier/listings", "/orders", "/procedures"]),
        ("center", ["/center/listings", "/exports", "/push", "/agreements/new"]),
        ("regulator", ["/oversight", "/exports"]),
        ("sysadmin", ["/admin", "/admin/settings"]),
        ("secadmin", ["/security"]),
        ("auditor", ["/audit"]),
    ]:
        page = await new_page(browser, errors)
        await page.add_init_script(LISTEN)
        if who:
            await login(page, server, who)
        for path in paths:
            violations += [f"{who} {path}: {v}" for v in await visit(page, server + path)]
        await page.context.close()

    page = await new_page(browser, errors)
    await page.add_init_script(LISTEN)
    violations += [f"swagger: {v}" for v in await visit(page, server + "/schema/swagger")]
    # Swagger UI rendered the operations from /schema/openapi.json: its script ran
    await page.wait_for_selector(".opblock", timeout=20000)
    # It renders only what is near the viewport: scroll through and collect every operation shown.
    seen: set[str] = set()
    for _ in range(200):
        for path in await page.locator(".opblock-summary-path").all_inner_texts():
            seen.add(path)
        at_end = await page.evaluate(
            "() => window.scrollY + window.innerHeight >= document.body.scrollHeight - 2"
        )
        if at_end and len(seen) > 100:
            break
        await page.mouse.wheel(0, 600)
        await page.wait_for_timeout(50)
    assert len(seen) > 100, sorted(seen)
    await shot(page, "csp-swagger")

    assert violations == [], violations
    # a missing page's 404 is logged by the browser as a failed resource; nothing else may be
    assert [e for e in errors if "404" not in e] == [], errors
