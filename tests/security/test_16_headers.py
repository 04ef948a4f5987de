"""Point 16: every response carries a Content-Security-Policy without inline script, refuses framing,
turns off MIME sniffing and limits the Referer; no page carries inline script, event-handler
attributes or javascript: URLs (the pages come from the route table, for every role)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.factories import World
from tests.mall.test_pages import login_ok


def assert_security_headers(r: Any) -> None:
    csp = r.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], csp  # no 'unsafe-inline', no hosts
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert directives.get("object-src") == ["'none'"], csp
    assert "'unsafe-inline'" not in directives.get("default-src", []), csp
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("referrer-policy") in (
        "same-origin",
        "strict-origin-when-cross-origin",
        "no-referrer",
    )
    assert r.headers.get("x-frame-options") == "DENY"


async def test_every_kind_of_response_has_the_headers(client: Any, world: World) -> None:
    for path, status in [
        ("/", 200),
        ("/login", 200),
        ("/goods", 200),
        ("/disclosures", 200),
        ("/api/disclosures", 200),
        ("/static/mall.css", 200),
        ("/schema/swagger", 200),
        ("/schema/openapi.json", 200),
        ("/no-such-page", 404),
        ("/api/no-such-thing", 404),
        ("/orders", 401),
    ]:
        r = await client.get(path, headers={"Accept": "text/html"})
        assert r.status_code == status, (path, r.status_code)
        assert_security_headers(r)


class ScriptAudit(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block (or what would need it)."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> event handler attribute")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}=javascript:…>")
        if tag == "script":
            src = values.get("src")
            kind = (values.get("type") or "").lower()
            if src:
                if re.match(r"^(https?:)?//", src):
                    self.problems.append(f"script from elsewhere: {src}")
            elif kind not in ("application/json", "application/ld+json"):
                self._in_inline_script = True

    def handle_data(self, data: str) -> None:
        if self._in_inline_script and data.strip():
            self.problems.append(f"inline script: {data.strip()[:80]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False


def page_paths(app: Any) -> list[str]:
    """Every HTML page of the app without path parameters (GET, not /api, not static files)."""
    from litestar.routes import HTTPRoute

    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "{" in route.path:
            continue
        if route.path.startswith(("/api", "/static", "/schema", "/healthz")):
            continue
        if any("GET" in h.http_methods for h in route.route_handlers):
            out.append(route.path)
    return sorted(out)


@pytest.mark.slow
async def test_no_page_needs_inline_script(client: Any, app: Any, world: World) -> None:
    paths = page_paths(app)
    assert len(paths) >= 15, paths
    problems: list[str] = []
    rendered = 0
    for who in (None, "buyer_a", "supplier_x", "center", "regulator", "sysadmin", "secadmin", "auditor"):
        client.cookies.clear()
        await client.get("/login")
        if who:
            await login_ok(client, who)
        for path in [*paths, "/schema/swagger"]:
            r = await client.get(path, headers={"Accept": "text/html"})
            if "text/html" not in r.headers.get("content-type", ""):
                continue
            rendered += 1
            audit = ScriptAudit()
            audit.feed(r.text)
            problems += [f"{who or 'anonymous'} {path}: {p}" for p in audit.problems]
    assert rendered >= 60
    assert not problems, "\n".join(problems)


async def test_the_api_docs_serve_no_oauth2_redirect_page(client: Any) -> None:
    """Swagger UI's oauth2-redirect.html is an inline script; the API signs in with bearer tokens."""
    r = await client.get("/schema/swagger")
    assert r.status_code == 200 and "<script>" not in r.text
    r = await client.get("/schema/oauth2-redirect.html")
    assert r.status_code == 404
