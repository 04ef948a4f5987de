"""Compressed answers where compression is safe, and static files with fingerprints, long caching
and 304s (mall.web.serving)."""

from __future__ import annotations

import gzip
import re
from typing import Any

import httpx

from tests.factories import World
from tests.mall.test_pages import HTML, login_ok

GZIP = {"Accept-Encoding": "gzip"}
PLAIN = {"Accept-Encoding": "identity"}


async def raw_get(client: Any, path: str, **headers: str) -> httpx.Response:
    """The answer as sent (the client would decompress it: the bytes are read before it does)."""
    async with client.stream("GET", path, headers=headers) as r:
        r.raw_body = b"".join([chunk async for chunk in r.aiter_raw()])
    return r


async def test_pages_and_the_api_are_gzipped_for_visitors_who_ask(client: Any, world: World) -> None:
    r = await raw_get(client, "/goods", **HTML, **GZIP)
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    page = gzip.decompress(r.raw_body).decode()
    assert "阳光卖场" in page and int(r.headers["content-length"]) == len(r.raw_body)
    assert len(r.raw_body) < len(page.encode())
    plain = await raw_get(client, "/goods", **HTML, **PLAIN)
    assert "content-encoding" not in plain.headers and plain.raw_body.decode() == page
    api = await raw_get(client, "/schema/openapi.json", **GZIP)
    assert api.status_code == 200 and api.headers.get("content-encoding") == "gzip", api.headers
    small = await raw_get(client, "/api/categories", **GZIP)  # under 1 KiB: not worth it
    assert small.status_code == 200 and "content-encoding" not in small.headers


async def test_a_logged_in_page_is_never_compressed(client: Any, world: World) -> None:
    """It holds the CSRF token beside what the page reflects from its query (BREACH)."""
    await login_ok(client, "buyer_a")
    r = await raw_get(client, "/goods?q=" + "a" * 20, **HTML, **GZIP)
    assert r.status_code == 200 and "content-encoding" not in r.headers
    assert "_csrf_token" in r.raw_body.decode() or "csrf" in r.raw_body.decode()
    # Static files are the same for everyone: compressed, and cached despite the login.
    css = await raw_get(client, "/static/mall.css", **GZIP)
    assert css.headers["content-encoding"] == "gzip" and "no-store" not in css.headers.get(
        "cache-control", ""
    )


async def test_static_files_have_fingerprinted_names_long_caching_and_304s(client: Any, world: World) -> None:
    page = (await client.get("/goods", headers=HTML)).text
    (href,) = re.findall(r'href="(/static/mall\.css\?v=[0-9a-f]{12})"', page)
    r = await client.get(href)
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = r.headers["etag"]
    assert etag.startswith('W/"') and etag[3:-1] == href.rsplit("=", 1)[1]
    again = await raw_get(client, href, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.raw_body == b"" and again.headers["etag"] == etag
    other = await client.get("/static/mall.css?v=000000000000")  # an old name: not kept for long
    assert other.status_code == 200 and other.headers["cache-control"] == "public, max-age=300"
    assert (await client.get("/static/mall.css", headers={"If-None-Match": 'W/"stale"'})).status_code == 200
    assert (await client.get("/static/no-such-file.css")).status_code == 404


def _contrast(a: str, b: str) -> float:
    def luminance(h: str) -> float:
        c = [int(h.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_muted_text_reads_at_least_4_5_to_1_on_every_background() -> None:
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "templates" / "static" / "mall.css").read_text()
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))
    backgrounds = {
        colours[k] for k in ("bg", "card", "primary-light", "warn-light", "accent-light", "ok-light")
    }
    backgrounds |= {"#eef1f5"}  # the grey badges
    worst = min(_contrast(colours["muted"], bg) for bg in backgrounds)
    assert worst >= 4.5, worst
    assert ".pager .disabled { color: var(--muted)" in css


async def test_every_page_starts_with_a_skip_link_to_its_main_content(client: Any, world: World) -> None:
    page = (await client.get("/goods", headers=HTML)).text
    body = page.split("<body>", 1)[1]
    assert body.lstrip().startswith('<a class="skip-link" href="#main">跳到主要内容</a>')
    assert '<main id="main" tabindex="-1">' in body
