"""Meilisearch backend: the `SearchBackend` interface over the Meilisearch HTTP API (v1.x, >= 1.10).

Requests go through the official Python client (`meilisearch`, MIT), which is synchronous (it
calls `requests`); callers on the event loop run the backend in a thread (`asyncio.to_thread`), as
they did with the earlier hand-written client. Every write in Meilisearch is asynchronous (it
answers 202 with an enqueued task), so each write here waits for its task (`wait_for_task`) until it
has succeeded or failed, which is what makes "visible to searches when this returns" hold.

The client keeps per-request state in a shared header dict (it sets `Content-Type` for a POST and
removes it for a GET on the same object), so one `meilisearch.Client` is made per thread: a search
and a health check running at once in two threads must not share one. It opens a connection per
request (module-level `requests` calls, no session); docs/decisions.md has the measured cost.

Client reference: https://github.com/meilisearch/meilisearch-python (Client, Index, TaskHandler).

Documentation relied on (Meilisearch reference, v1.x):
- Indexes (create, get, delete):       https://www.meilisearch.com/docs/reference/api/indexes
- Swap indexes:                        https://www.meilisearch.com/docs/reference/api/indexes/swap-indexes
- Settings (PATCH /settings; searchableAttributes, filterableAttributes, sortableAttributes,
  rankingRules, synonyms, typoTolerance, faceting, pagination, localizedAttributes):
                                       https://www.meilisearch.com/docs/reference/api/settings
  localizedAttributes ({"attributePatterns": [...], "locales": [...]}):
  https://www.meilisearch.com/docs/reference/api/settings/update-localizedattributes
  typoTolerance:  https://www.meilisearch.com/docs/learn/relevancy/typo_tolerance_settings
  maxTotalHits:   https://www.meilisearch.com/docs/capabilities/full_text_search/advanced/performance_tuning
- Documents (add or replace, delete by batch):
  https://www.meilisearch.com/docs/reference/api/documents
  https://www.meilisearch.com/docs/reference/api/documents/add-or-replace-documents
- Search (POST /indexes/{uid}/search; q, filter, sort, facets, page/hitsPerPage,
  attributesToHighlight, highlightPreTag/highlightPostTag, locales; totalHits, facetDistribution,
  _formatted):                         https://www.meilisearch.com/docs/reference/api/search
- Filter expressions:  https://www.meilisearch.com/docs/learn/filtering_and_sorting/filter_expression_reference
  Escaping inside quoted values (backslash before the quote and before a backslash) is what the
  server's parser does: meilisearch/meilisearch, filter-parser/src/value.rs (`quoted_by`, `unescape`).
- Tasks (GET /tasks/{taskUid}; status enqueued/processing/succeeded/failed/canceled, error object):
                                       https://www.meilisearch.com/docs/reference/api/tasks
- Stats (GET /indexes/{uid}/stats → numberOfDocuments):
                                       https://www.meilisearch.com/docs/reference/api/stats
- Authorization: `Authorization: Bearer <key>` (shown on every reference page).
"""

from __future__ import annotations

import contextlib
import html
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import meilisearch
import requests
from meilisearch.errors import MeilisearchApiError, MeilisearchError, MeilisearchTimeoutError
from meilisearch.index import Index
from meilisearch.models.task import Task, TaskInfo

from mall.core.money import from_cents, money_str, to_cents
from search_index.backend import MAX_PER_PAGE, SORTS, Hit, ProductDocument, SearchQuery, SearchResult

PRIMARY_KEY = "id"
TEXT_FIELDS = ("title", "brand", "spec_model", "category_name", "description")
HIGHLIGHT_PRE = "<em>"
HIGHLIGHT_POST = "</em>"
BATCH_SIZE = 1000

T = TypeVar("T")

# 品目 codes are 9 characters (A + 8 digits, zero-padded per level: A02000000 → A0201 0000 …);
# a document stores every prefix at these lengths so `category_prefixes = "A020101"` filters by prefix.
CATEGORY_PREFIX_LENGTHS = (1, 3, 5, 7, 9)
# Region codes are 6 digits (province 2, city 4, county 6); every prefix is stored.
REGION_PREFIX_LENGTHS = (1, 2, 3, 4, 5, 6)

# Facet name in SearchResult → document field.
FACETS = {
    "category": "category_code",
    "brand": "brand",
    "supplier": "supplier_id",
    "price_band": "price_band",
}
# Upper bounds in 分 (exclusive) → label; the last band is open-ended.
PRICE_BANDS: tuple[tuple[int | None, str], ...] = (
    (1000_00, "0-1000"),
    (5000_00, "1000-5000"),
    (10000_00, "5000-10000"),
    (None, "10000+"),
)

SORT_RULES: dict[str, list[str]] = {
    "relevance": [],
    "price_asc": ["price_cents:asc"],
    "price_desc": ["price_cents:desc"],
    "newest": ["created_ts:desc"],
    "sales": ["sales:desc"],
}
assert set(SORT_RULES) == set(SORTS)

# Groups of interchangeable words. Meilisearch synonyms are one-directional ("word": [synonyms]),
# so each group becomes a mutual mapping. Latin words in lower case (Meilisearch normalizes them).
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("台式电脑", "台式机", "台式计算机"),
    ("笔记本", "便携式计算机"),
    ("打印机", "打印设备"),
    ("联想", "lenovo"),
    ("惠普", "hp"),
    ("戴尔", "dell"),
    ("华为", "huawei"),
)
SYNONYMS: dict[str, list[str]] = {
    word: [other for other in group if other != word] for group in SYNONYM_GROUPS for word in group
}

# The index settings, applied with PATCH /indexes/{uid}/settings (keys as in the settings reference).
INDEX_SETTINGS: dict[str, Any] = {
    "searchableAttributes": list(TEXT_FIELDS),
    "filterableAttributes": [
        "category_prefixes",
        "category_code",  # needed for the category facet
        "brand",
        "supplier_id",
        "region_prefixes",
        "price_cents",
        "price_band",  # needed for the price-band facet
        "stock",
        "green",  # the certificates in force (catalog.policy): a list, empty when none
        "origin",
    ],
    "sortableAttributes": ["price_cents", "created_ts", "sales"],
    "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
    "synonyms": SYNONYMS,
    "typoTolerance": {
        "enabled": True,
        "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
        # Model numbers (e.g. "M4000") must match as typed, not one typo away.
        "disableOnAttributes": ["spec_model"],
    },
    "localizedAttributes": [{"attributePatterns": list(TEXT_FIELDS), "locales": ["cmn"]}],
    "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "count"}},
    "pagination": {"maxTotalHits": 10000},
}

RETRIEVED = ["id", "title", "brand", "spec_model", "category_code", "price_cents", "supplier_name"]


class MeiliError(RuntimeError):
    """A Meilisearch request or task that did not succeed."""


# -- pure helpers -------------------------------------------------------------------------------


def code_prefixes(code: str, lengths: Iterable[int]) -> list[str]:
    code = code.strip()
    return [code[:n] for n in lengths if n <= len(code)]


def _strip_zero_levels(code: str, full_length: int, min_length: int) -> str:
    """A full code of a higher level ("A02010000", "410000") means everything under it: drop the
    trailing "00" pairs so it becomes the prefix ("A0201", "41")."""
    code = code.strip()
    if len(code) != full_length:
        return code
    while len(code) > min_length and code.endswith("00"):
        code = code[:-2]
    return code


def category_prefix(code: str) -> str:
    return _strip_zero_levels(code, 9, 1)


def region_prefix(code: str) -> str:
    return _strip_zero_levels(code, 6, 2)


def price_band(price_cents: int) -> str:
    for upper, label in PRICE_BANDS:
        if upper is None or price_cents < upper:
            return label
    raise AssertionError("unreachable")  # pragma: no cover


def quote_filter_value(value: str) -> str:
    """A string value for a filter expression: double-quoted, with backslash and double quote
    escaped by a backslash (filter-parser `quoted_by`/`unescape`). Control characters are dropped."""
    cleaned = "".join(ch for ch in value if ch >= " ")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_meili_document(doc: ProductDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "title": doc.title,
        "brand": doc.brand,
        "spec_model": doc.spec_model,
        "category_code": doc.category_code,
        "category_name": doc.category_name,
        "category_prefixes": code_prefixes(doc.category_code, CATEGORY_PREFIX_LENGTHS),
        "supplier_id": doc.supplier_id,
        "supplier_name": doc.supplier_name,
        "region_code": doc.region_code,
        "region_prefixes": code_prefixes(doc.region_code, REGION_PREFIX_LENGTHS),
        "price_cents": int(doc.price_cents),
        "price_band": price_band(int(doc.price_cents)),
        "stock": int(doc.stock),
        "sales": int(doc.sales),
        "created_ts": int(doc.created_ts),
        "description": doc.description,
        "green": [k for k in doc.green.split(",") if k],
        "origin": doc.origin or "domestic",
    }


def _cents(d: Decimal) -> int:
    return to_cents(Decimal(d))


def build_filter(query: SearchQuery) -> list[str]:
    """Conditions combined with AND (the array form of `filter`)."""
    conditions: list[str] = []
    if query.category.strip():
        conditions.append(f"category_prefixes = {quote_filter_value(category_prefix(query.category))}")
    if query.brand.strip():
        conditions.append(f"brand = {quote_filter_value(query.brand.strip())}")
    if query.supplier.strip():
        conditions.append(f"supplier_id = {quote_filter_value(query.supplier.strip())}")
    if query.region.strip():
        conditions.append(f"region_prefixes = {quote_filter_value(region_prefix(query.region))}")
    if query.price_min is not None:
        conditions.append(f"price_cents >= {_cents(query.price_min)}")
    if query.price_max is not None:
        conditions.append(f"price_cents <= {_cents(query.price_max)}")
    if query.in_stock:
        conditions.append("stock > 0")
    if query.green:
        conditions.append("green IS NOT EMPTY")
    if query.origin:
        conditions.append(f"origin = {quote_filter_value(query.origin)}")
    return conditions


def build_search_body(query: SearchQuery) -> dict[str, Any]:
    if query.sort not in SORT_RULES:
        raise ValueError(f"unknown sort {query.sort!r}; expected one of {', '.join(SORTS)}")
    body: dict[str, Any] = {
        "q": query.q.strip(),
        "page": max(1, int(query.page)),
        "hitsPerPage": min(MAX_PER_PAGE, max(1, int(query.per_page))),
        "facets": list(FACETS.values()),
        "attributesToRetrieve": RETRIEVED,
        "attributesToHighlight": ["title"],
        "highlightPreTag": HIGHLIGHT_PRE,
        "highlightPostTag": HIGHLIGHT_POST,
        "locales": ["cmn"],
    }
    conditions = build_filter(query)
    if conditions:
        body["filter"] = conditions
    if SORT_RULES[query.sort]:
        body["sort"] = SORT_RULES[query.sort]
    return body


def safe_highlight(title: str, formatted: str | None) -> str:
    """The title HTML-escaped, with Meilisearch's <em>…</em> kept as markup.

    Meilisearch inserts the tags into the raw text without escaping it, so `formatted` is aligned
    against the original title character by character: text that is in the title is escaped, the
    tags that are not are kept. Anything unexpected falls back to the plainly escaped title."""
    if not formatted:
        return html.escape(title)
    out: list[str] = []
    i = j = 0
    open_tag = False
    while j < len(formatted):
        tag = HIGHLIGHT_POST if open_tag else HIGHLIGHT_PRE
        # A tag where the title does not literally hold the same text is markup.
        if formatted.startswith(tag, j) and not title.startswith(tag, i):
            out.append(tag)
            open_tag = not open_tag
            j += len(tag)
        elif i < len(title) and formatted[j] == title[i]:
            out.append(html.escape(title[i]))
            i += 1
            j += 1
        else:
            return html.escape(title)
    if i != len(title):
        return html.escape(title)
    if open_tag:
        out.append(HIGHLIGHT_POST)
    return "".join(out)


def map_response(data: dict[str, Any]) -> SearchResult:
    hits: list[Hit] = []
    for raw in data.get("hits", []):
        title = str(raw.get("title", ""))
        formatted = raw.get("_formatted") or {}
        hits.append(
            Hit(
                id=str(raw["id"]),
                title=title,
                brand=str(raw.get("brand", "")),
                spec_model=str(raw.get("spec_model", "")),
                category_code=str(raw.get("category_code", "")),
                price=money_str(from_cents(int(raw.get("price_cents", 0)))),
                supplier_name=str(raw.get("supplier_name", "")),
                highlight=safe_highlight(title, formatted.get("title")),
            )
        )
    distribution = data.get("facetDistribution") or {}
    facets = {
        name: {str(k): int(v) for k, v in (distribution.get(field) or {}).items()}
        for name, field in FACETS.items()
    }
    total = data.get("totalHits")
    if total is None:  # offset/limit responses only carry an estimate
        total = data.get("estimatedTotalHits", len(hits))
    return SearchResult(total=int(total), hits=hits, facets=facets)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


# -- the backend --------------------------------------------------------------------------------


def _api_detail(exc: MeilisearchApiError) -> str:
    return f"{exc.status_code} ({exc.code or '?'}: {exc.message})"


class MeiliBackend:
    name = "meilisearch"

    def __init__(
        self,
        url: str,
        key: str,
        index: str = "products",
        *,
        timeout: int = 10,
        task_timeout: float = 60.0,
        poll_interval: float = 0.05,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.index = index
        self.timeout = timeout  # seconds, for each HTTP request
        self.task_timeout = task_timeout  # seconds, for each task to finish
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self._local = threading.local()
        self._ensured = False

    def close(self) -> None:
        """Nothing to release: the client holds no connection between requests."""

    # -- the client ----------------------------------------------------------------------------

    def _client(self) -> meilisearch.Client:
        client: meilisearch.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = meilisearch.Client(self.url, self.key, timeout=self.timeout)
            self._local.client = client
        return client

    def _index(self, uid: str) -> Index:
        return self._client().index(uid)  # a local handle: no request

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client call; every failure becomes a MeiliError naming the request."""
        try:
            return fn(*args, **kwargs)
        except MeilisearchApiError as exc:
            raise MeiliError(f"Meilisearch {what} answered {_api_detail(exc)}") from exc
        except (MeilisearchError, requests.RequestException, ValueError) as exc:
            # Connection or timeout; ValueError: an answer that is not the documented JSON.
            raise MeiliError(f"Meilisearch {what}: {exc}") from exc

    def _call_or_none(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """As `_call`, but a 404 (the index does not exist) is None."""
        try:
            return self._call(what, fn, *args)
        except MeiliError as exc:
            cause = exc.__cause__
            if isinstance(cause, MeilisearchApiError) and cause.status_code == 404:
                return None
            raise

    def wait_for_task(self, task: TaskInfo) -> Task:
        """Wait for an enqueued task; raise MeiliError unless it succeeded within `task_timeout`."""
        uid = task.task_uid
        try:
            done = self._client().wait_for_task(
                uid,
                timeout_in_ms=int(self.task_timeout * 1000),
                interval_in_ms=max(1, int(self.poll_interval * 1000)),
            )
        except MeilisearchTimeoutError as exc:
            raise MeiliError(
                f"Meilisearch task {uid} ({task.type} on {task.index_uid}) not finished after "
                f"{self.task_timeout:g}s"
            ) from exc
        except MeilisearchApiError as exc:
            raise MeiliError(f"Meilisearch GET /tasks/{uid} answered {_api_detail(exc)}") from exc
        except (MeilisearchError, requests.RequestException, ValueError) as exc:
            raise MeiliError(f"Meilisearch GET /tasks/{uid}: {exc}") from exc
        if done.status != "succeeded":
            error = done.error or {}
            raise MeiliError(
                f"Meilisearch task {uid} ({done.type} on {done.index_uid}) {done.status}: "
                f"{error.get('code', '?')}: {error.get('message', 'no error message')}"
            )
        return done

    # -- index management ----------------------------------------------------------------------

    def _index_exists(self, uid: str) -> bool:
        return self._call_or_none(f"GET /indexes/{uid}", self._client().get_raw_index, uid) is not None

    def _create_index(self, uid: str) -> None:
        task = self._call("POST /indexes", self._client().create_index, uid, {"primaryKey": PRIMARY_KEY})
        self.wait_for_task(task)

    def _delete_index(self, uid: str) -> TaskInfo:
        return self._call(f"DELETE /indexes/{uid}", self._client().delete_index, uid)

    def _apply_settings(self, uid: str) -> None:
        index = self._index(uid)
        self.wait_for_task(
            self._call(f"PATCH /indexes/{uid}/settings", index.update_settings, INDEX_SETTINGS)
        )

    def ensure_index(self) -> None:
        """Create the live index if missing and (re)apply INDEX_SETTINGS."""
        if not self._index_exists(self.index):
            self._create_index(self.index)
        self._apply_settings(self.index)
        self._ensured = True

    def _ensure_once(self) -> None:
        if not self._ensured:
            self.ensure_index()

    def _add_documents(self, uid: str, docs: Iterable[ProductDocument]) -> tuple[list[TaskInfo], int]:
        index = self._index(uid)
        tasks: list[TaskInfo] = []
        n = 0
        for batch in _batches(docs, self.batch_size):
            body = [to_meili_document(d) for d in batch]
            tasks.append(
                self._call(
                    f"POST /indexes/{uid}/documents", index.add_documents, body, primary_key=PRIMARY_KEY
                )
            )
            n += len(body)
        return tasks, n

    def _delete_batch(self, index: Index, ids: list[str]) -> TaskInfo:
        # POST /documents/delete-batch through the client's own HTTP layer: `Index.delete_documents(
        # ids=...)` sends the same request but warns that the client will drop the `ids` form
        # (the route itself is current); its `filter` form would need `id` to be filterable.
        path = f"indexes/{index.uid}/documents/delete-batch"
        return TaskInfo(**index.http.post(path, ids))

    # -- SearchBackend -------------------------------------------------------------------------

    def upsert(self, docs: Iterable[ProductDocument]) -> None:
        self._ensure_once()
        tasks, _ = self._add_documents(self.index, docs)
        for task in tasks:
            self.wait_for_task(task)

    def delete(self, ids: Iterable[str]) -> None:
        index = self._index(self.index)
        what = f"POST /indexes/{self.index}/documents/delete-batch"
        tasks = [
            self._call(what, self._delete_batch, index, batch)
            for batch in _batches((str(i) for i in ids), self.batch_size)
        ]
        for task in tasks:
            self.wait_for_task(task)

    def search(self, query: SearchQuery) -> SearchResult:
        body = build_search_body(query)
        q = body.pop("q")
        index = self._index(self.index)
        data = self._call_or_none(f"POST /indexes/{self.index}/search", index.search, q, body)
        if data is None:  # the index does not exist yet: nothing indexed
            return SearchResult(total=0, hits=[], facets={name: {} for name in FACETS})
        return map_response(data)

    def rebuild(self, docs: Iterable[ProductDocument]) -> int:
        fresh = f"{self.index}_{time.time_ns() // 1_000_000}"
        self._create_index(fresh)
        try:
            self._apply_settings(fresh)
            tasks, n = self._add_documents(fresh, docs)
            for task in tasks:
                self.wait_for_task(task)
            if not self._index_exists(self.index):
                self._create_index(self.index)
            # Atomic: searches on the live uid answer from the old data until the swap is processed.
            swap = [{"indexes": [self.index, fresh]}]
            self.wait_for_task(self._call("POST /swap-indexes", self._client().swap_indexes, swap))
        except BaseException:
            # Best effort: do not leave the half-built index behind.
            with contextlib.suppress(MeiliError):
                self._delete_index(fresh)
            raise
        # After the swap `fresh` holds the previous live data.
        self.wait_for_task(self._delete_index(fresh))
        self._ensured = True
        return n

    def count(self) -> int:
        index = self._index(self.index)
        stats = self._call_or_none(f"GET /indexes/{self.index}/stats", index.get_stats)
        if stats is None:
            return 0
        return int(stats.number_of_documents)
