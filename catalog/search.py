"""Catalogue search for the API and the pages: parameters checked here, the engine behind one interface."""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
import uuid
from dataclasses import dataclass
from decimal import Decimal

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from mall import accounts
from mall.core.errors import InvalidInput, Unavailable
from mall.core.fields import SEARCH_MAX, bad_character
from mall.core.money import MoneyError, money, typed_negative
from search_index.backend import MAX_PER_PAGE, SORTS, SearchBackend, SearchQuery, SearchResult

log = logging.getLogger("mall.search")

Search = NamedDependency[SearchBackend]  # the request dependency the app factory provides

SORT_LABELS = {
    "relevance": "综合排序",
    "price_asc": "价格从低到高",
    "price_desc": "价格从高到低",
    "newest": "最新上架",
    "sales": "销量",
}
PRICE_BAND_LABELS = {
    "0-1000": "1000元以下",
    "1000-5000": "1000–5000元",
    "5000-10000": "5000–10000元",
    "10000+": "10000元以上",
}
PRICE_BAND_RANGES = {
    "0-1000": ("", "999.99"),
    "1000-5000": ("1000", "4999.99"),
    "5000-10000": ("5000", "9999.99"),
    "10000+": ("10000", ""),
}
MAX_WINDOW = 10_000  # the deepest result reachable by paging


@dataclass(frozen=True)
class RawParams:
    q: str = ""
    category: str = ""
    brand: str = ""
    supplier: str = ""
    region: str = ""
    price_min: str = ""
    price_max: str = ""
    in_stock: str = ""
    sort: str = "relevance"
    page: str = "1"
    per_page: str = "20"
    green: str = ""  # 1: only products with an energy or environmental certificate in force
    origin: str = ""  # domestic | imported


def _int(raw: str, name: str, label: str, lo: int, hi: int) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidInput(f"{label}应为整数", code="invalid_parameter", parameter=name) from None
    if not lo <= value <= hi:
        raise InvalidInput(f"{label}应在 {lo} 至 {hi} 之间", code="invalid_parameter", parameter=name)
    return value


def _price(raw: str, name: str, label: str) -> Decimal | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = money(raw)
    except MoneyError:
        if typed_negative(raw):
            raise InvalidInput(f"{label}不能为负数", code="invalid_parameter", parameter=name) from None
        raise InvalidInput(
            f"{label}格式不正确，应为不超过两位小数的金额", code="invalid_parameter", parameter=name
        ) from None
    if value < 0:
        raise InvalidInput(f"{label}不能为负数", code="invalid_parameter", parameter=name)
    return value


def parse(p: RawParams) -> SearchQuery:
    """Every parameter checked; a bad one is a 400 naming it (problem+json), never a 500."""
    p = RawParams(
        *(
            unicodedata.normalize("NFKC", str(v))
            for v in (
                p.q,
                p.category,
                p.brand,
                p.supplier,
                p.region,
                p.price_min,
                p.price_max,
                p.in_stock,
                p.sort,
                p.page,
                p.per_page,
                p.green,
                p.origin,
            )
        )
    )  # full-width digits and letters typed with a Chinese input method mean the same
    q = p.q.strip()
    if len(q) > SEARCH_MAX:
        raise InvalidInput(f"搜索词不能超过{SEARCH_MAX}个字符", code="invalid_parameter", parameter="q")
    # The words are echoed on the page and in the highlights: refused like any text field's.
    if bad_character(q) is not None:
        raise InvalidInput(
            "搜索词含有不允许的字符（换行、控制字符、文字方向控制字符或不可见字符）",
            code="invalid_parameter",
            parameter="q",
        )
    category = p.category.strip().upper()
    if category and (len(category) > 16 or not category.isalnum()):
        raise InvalidInput("品目编码格式不正确", code="invalid_parameter", parameter="category")
    brand = p.brand.strip()
    if len(brand) > 100:
        raise InvalidInput("品牌不能超过100个字符", code="invalid_parameter", parameter="brand")
    if bad_character(brand) is not None:
        raise InvalidInput(
            "品牌含有不允许的字符（换行、控制字符、文字方向控制字符或不可见字符）",
            code="invalid_parameter",
            parameter="brand",
        )
    supplier = p.supplier.strip()
    if supplier:
        try:
            supplier = str(uuid.UUID(supplier))
        except ValueError:
            raise InvalidInput(
                "供应商编号格式不正确", code="invalid_parameter", parameter="supplier"
            ) from None
    region = p.region.strip()
    if region and (not region.isdigit() or len(region) > 6):
        raise InvalidInput("行政区划代码应为最多6位数字", code="invalid_parameter", parameter="region")
    lo = _price(p.price_min, "price_min", "最低价")
    hi = _price(p.price_max, "price_max", "最高价")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidInput("最低价不能高于最高价", code="invalid_parameter", parameter="price_min")
    sort = p.sort.strip() or "relevance"
    if sort not in SORTS:
        raise InvalidInput(
            f"排序方式应为 {' | '.join(SORTS)} 之一", code="invalid_parameter", parameter="sort"
        )
    in_stock = p.in_stock.strip().lower()
    if in_stock not in ("", "0", "1", "true", "false"):
        raise InvalidInput("in_stock 应为 1 或 0", code="invalid_parameter", parameter="in_stock")
    green = p.green.strip().lower()
    if green not in ("", "0", "1", "true", "false"):
        raise InvalidInput("green 应为 1 或 0", code="invalid_parameter", parameter="green")
    origin = p.origin.strip().lower()
    if origin not in ("", "domestic", "imported"):
        raise InvalidInput("origin 应为 domestic 或 imported", code="invalid_parameter", parameter="origin")
    per_page = _int(p.per_page, "per_page", "每页条数", 1, MAX_PER_PAGE)
    page = _int(p.page, "page", "页码", 1, 100_000)
    if (page - 1) * per_page >= MAX_WINDOW:
        raise InvalidInput(
            f"只能翻到前 {MAX_WINDOW} 条结果，请缩小搜索范围", code="page_too_deep", parameter="page"
        )
    return SearchQuery(
        q=q,
        category=category,
        brand=brand,
        supplier=supplier,
        region=region,
        price_min=lo,
        price_max=hi,
        in_stock=in_stock in ("1", "true"),
        green=green in ("1", "true"),
        origin=origin,
        sort=sort,
        page=page,
        per_page=per_page,
    )


async def run(backend: SearchBackend, query: SearchQuery) -> SearchResult:
    """The engine runs in a thread (tantivy and the Meilisearch client are blocking); an engine that
    does not answer is a 503, not a 500."""
    try:
        return await asyncio.to_thread(backend.search, query)
    except (ValueError, InvalidInput):
        raise
    except Exception as exc:
        log.warning("search failed: %s: %s", type(exc).__name__, exc)
        raise Unavailable("搜索服务暂时不可用，请稍后再试", code="search_unavailable") from None


# Supplier id -> (name, fetched at): facet labels, refreshed after NAME_TTL seconds. Names change
# rarely, and a database round trip per search would cost more than the search itself.
_names: dict[str, tuple[str, float]] = {}
NAME_TTL = 60.0


async def supplier_names(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    now = time.monotonic()
    out = {i: _names[i][0] for i in ids if i in _names and now - _names[i][1] < NAME_TTL}
    wanted = []
    for i in ids:
        if i in out:
            continue
        try:
            wanted.append(uuid.UUID(i))
        except ValueError:
            continue
    if wanted:
        for org_id, name in (await accounts.names_of(session, wanted)).items():
            out[str(org_id)] = name
            _names[str(org_id)] = (name, now)
        if len(_names) > 50_000:  # bounded: drop everything and start again
            _names.clear()
    return out


def cached_supplier_names(ids: list[str]) -> dict[str, str] | None:
    """All the names from the cache, or None when one is missing or stale (then ask the database)."""
    now = time.monotonic()
    out = {}
    for i in ids:
        hit = _names.get(i)
        if hit is None or now - hit[1] >= NAME_TTL:
            return None
        out[i] = hit[0]
    return out
