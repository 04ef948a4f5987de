"""The page search caps `q` at 100 characters as the API does (point 16): a longer query is refused
with a clear message and a 400, and nothing is searched with a silently shortened query."""

from __future__ import annotations

from typing import Any

from mall.core.fields import SEARCH_MAX
from tests.factories import World

HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}


async def test_a_query_longer_than_the_limit_is_refused_on_the_page_as_in_the_api(
    client: Any, world: World
) -> None:
    await world.index()
    laptop = world.listings["laptop"]
    # The listing's own name, padded past the limit: cut to the limit it would still match.
    long_q = laptop.name + " " + "商" * (SEARCH_MAX - len(laptop.name))
    assert len(long_q) == SEARCH_MAX + 1

    r = await client.get("/api/catalog/search", params={"q": long_q})
    assert r.status_code == 400 and r.json()["code"] == "invalid_parameter"

    r = await client.get("/goods", params={"q": long_q}, headers=HTML)
    assert r.status_code == 400, r.status_code
    assert r.headers["content-type"].startswith("text/html")
    assert f"搜索词不能超过{SEARCH_MAX}个字符" in r.text
    assert f"/goods/{laptop.id}" not in r.text  # nothing was searched

    # At the limit it is a search like any other.
    ok_q = laptop.name + " " + "商" * (SEARCH_MAX - len(laptop.name) - 1)
    assert len(ok_q) == SEARCH_MAX
    r = await client.get("/goods", params={"q": ok_q}, headers=HTML)
    assert r.status_code == 200
    r = await client.get("/goods", params={"q": laptop.name}, headers=HTML)
    assert r.status_code == 200 and f"/goods/{laptop.id}" in r.text


async def test_the_listing_api_uses_every_word_or_refuses(client: Any, world: World) -> None:
    """Every word of `q` narrows the list: a sixth word is not dropped in silence; more words than
    the limit are refused, naming the parameter."""
    await world.listing("paper", "supplier_x", "25.00", name="得力 A4 复印纸 70g 500张 白色")
    r = await client.get("/api/listings", params={"q": "得力 A4 复印纸 70g 500张"})
    assert r.status_code == 200 and r.json()["total"] == 1
    r = await client.get("/api/listings", params={"q": "得力 A4 复印纸 70g 500张 红色"})
    assert r.status_code == 200 and r.json()["total"] == 0, r.text
    r = await client.get("/api/listings", params={"q": " ".join(f"w{i}" for i in range(11))})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "invalid_parameter" and "q" in r.text
