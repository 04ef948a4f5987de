"""The Meilisearch adapter, checked at the HTTP level.

No Meilisearch server can run on this machine, so these tests check the requests the adapter
sends against the documented Meilisearch API (method, path, query string, JSON body shape,
headers) using `httpx.MockTransport` with a small fake that records every request and answers the
way the reference documents it: writes answer 202 with an enqueued task summary
(`taskUid`, `indexUid`, `status: "enqueued"`, `type`, `enqueuedAt`), `GET /tasks/{uid}` answers
the task object with `status: "succeeded"` (or `"failed"` with an `error` object), searches answer
`hits` (with `_formatted`), `facetDistribution`, `totalHits`, `page`, `hitsPerPage`, `totalPages`.
It is not a search engine: the search answer is canned per test.

References: https://www.meilisearch.com/docs/reference/api/ (indexes, settings, documents, search,
tasks, stats, swap-indexes).

With MEILI_URL (and MEILI_KEY if the server has a master key) set, `test_real_server_round_trip`
also runs a minimal upsert → search → delete round trip against that server.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from search_index.backend import SORTS, ProductDocument, SearchQuery
from search_index.meili import INDEX_SETTINGS, SYNONYMS, MeiliBackend, MeiliError, quote_filter_value

KEY = "test-master-key"
URL = "http://meili.test:7700"


class FakeMeili:
    """Records requests; answers like the documented API. Keeps just enough state (index uids,
    document ids, tasks) to make the answers consistent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.indexes: dict[str, dict[str, dict[str, Any]]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.fail_types: dict[str, dict[str, str]] = {}  # task type → error object
        self.search_response: dict[str, Any] = {"hits": [], "totalHits": 0, "facetDistribution": {}}
        self._next_task = 0

    # -- helpers for assertions
    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls() if c[0] != "GET"]

    def body(self, method: str, path: str) -> Any:
        for r in self.requests:
            if r.method == method and r.url.path == path:
                return json.loads(r.content)
        raise AssertionError(f"no {method} {path} in {self.calls()}")

    # -- the transport
    def _task(self, kind: str, index_uid: str | None, apply: Any = None) -> httpx.Response:
        uid = self._next_task
        self._next_task += 1
        error = self.fail_types.get(kind)
        if error is None and apply is not None:
            apply()
        self.tasks[uid] = {
            "uid": uid,
            "indexUid": index_uid,
            "status": "failed" if error else "succeeded",
            "type": kind,
            "error": error,
            "enqueuedAt": "2026-11-22T07:00:00.000000Z",
        }
        return httpx.Response(
            202,
            json={
                "taskUid": uid,
                "indexUid": index_uid,
                "status": "enqueued",
                "type": kind,
                "enqueuedAt": "2026-11-22T07:00:00.000000Z",
            },
        )

    def _not_found(self, uid: str) -> httpx.Response:
        return httpx.Response(
            404,
            json={
                "message": f"Index `{uid}` not found.",
                "code": "index_not_found",
                "type": "invalid_request",
                "link": "https://docs.meilisearch.com/errors#index_not_found",
            },
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return httpx.Response(
                401, json={"message": "missing key", "code": "missing_authorization_header"}
            )
        m, path = request.method, request.url.path
        body: Any = json.loads(request.content) if request.content else None
        if m == "GET" and (t := re.fullmatch(r"/tasks/(\d+)", path)):
            return httpx.Response(200, json=self.tasks[int(t.group(1))])
        if m == "POST" and path == "/indexes":
            return self._task("indexCreation", body["uid"], lambda: self.indexes.setdefault(body["uid"], {}))
        if m == "POST" and path == "/swap-indexes":
            a, b = body[0]["indexes"]

            def swap() -> None:
                self.indexes[a], self.indexes[b] = self.indexes[b], self.indexes[a]

            return self._task("indexSwap", None, swap)
        idx = re.fullmatch(r"/indexes/([A-Za-z0-9_-]+)(/.*)?", path)
        assert idx, path
        uid, rest = idx.group(1), idx.group(2) or ""
        if m == "GET" and rest == "":
            if uid not in self.indexes:
                return self._not_found(uid)
            return httpx.Response(200, json={"uid": uid, "primaryKey": "id"})
        if m == "DELETE" and rest == "":
            return self._task("indexDeletion", uid, lambda: self.indexes.pop(uid, None))
        if m == "PATCH" and rest == "/settings":
            return self._task("settingsUpdate", uid)
        if m == "POST" and rest == "/documents":
            docs = self.indexes.setdefault(uid, {})
            return self._task(
                "documentAdditionOrUpdate", uid, lambda: docs.update({d["id"]: d for d in body})
            )
        if m == "POST" and rest == "/documents/delete-batch":
            docs = self.indexes.get(uid, {})
            return self._task("documentDeletion", uid, lambda: [docs.pop(i, None) for i in body])
        if m == "POST" and rest == "/search":
            if uid not in self.indexes:
                return self._not_found(uid)
            return httpx.Response(200, json=self.search_response)
        if m == "GET" and rest == "/stats":
            if uid not in self.indexes:
                return self._not_found(uid)
            return httpx.Response(
                200,
                json={
                    "numberOfDocuments": len(self.indexes[uid]),
                    "isIndexing": False,
                    "fieldDistribution": {},
                },
            )
        return httpx.Response(404, json={"message": "not found", "code": "not_found"})


def make(fake: FakeMeili, **kwargs: Any) -> MeiliBackend:
    client = httpx.Client(transport=httpx.MockTransport(fake))
    return MeiliBackend(URL, KEY, client=client, sleep=lambda _s: None, **kwargs)


def doc(n: int = 1, **overrides: Any) -> ProductDocument:
    fields: dict[str, Any] = {
        "id": str(uuid.UUID(int=n)),
        "title": f"联想 台式计算机 {n}",
        "brand": "联想",
        "spec_model": f"M{4000 + n}",
        "category_code": "A02010104",
        "category_name": "台式计算机",
        "supplier_id": "sup-1",
        "supplier_name": "郑州某某科技有限公司",
        "region_code": "410102",
        "price_cents": 459900,
        "stock": 5,
        "sales": 3,
        "created_ts": 1_790_000_000 + n,
        "description": "办公用",
    }
    fields.update(overrides)
    return ProductDocument(**fields)


@pytest.fixture
def fake() -> FakeMeili:
    return FakeMeili()


def test_every_request_carries_the_bearer_key(fake: FakeMeili) -> None:
    make(fake).upsert([doc()])
    assert fake.requests
    for r in fake.requests:
        assert r.headers["Authorization"] == f"Bearer {KEY}"
        assert r.url.host == "meili.test" and r.url.port == 7700


def test_ensure_index_creates_then_applies_the_exact_settings(fake: FakeMeili) -> None:
    make(fake).ensure_index()
    assert fake.calls() == [
        ("GET", "/indexes/products"),
        ("POST", "/indexes"),
        ("GET", "/tasks/0"),
        ("PATCH", "/indexes/products/settings"),
        ("GET", "/tasks/1"),
    ]
    assert fake.body("POST", "/indexes") == {"uid": "products", "primaryKey": "id"}
    settings = fake.body("PATCH", "/indexes/products/settings")
    assert settings == INDEX_SETTINGS
    assert set(settings) == {
        "searchableAttributes",
        "filterableAttributes",
        "sortableAttributes",
        "rankingRules",
        "synonyms",
        "typoTolerance",
        "localizedAttributes",
        "faceting",
        "pagination",
    }
    assert settings["searchableAttributes"] == [
        "title",
        "brand",
        "spec_model",
        "category_name",
        "description",
    ]
    assert set(settings["filterableAttributes"]) == {
        "category_prefixes",
        "category_code",
        "brand",
        "supplier_id",
        "region_prefixes",
        "price_cents",
        "price_band",
        "stock",
    }
    assert settings["sortableAttributes"] == ["price_cents", "created_ts", "sales"]
    assert settings["rankingRules"] == ["words", "typo", "proximity", "attribute", "sort", "exactness"]
    assert settings["typoTolerance"]["enabled"] is True
    assert set(settings["typoTolerance"]) <= {"enabled", "minWordSizeForTypos", "disableOnAttributes"}
    assert set(settings["typoTolerance"]["minWordSizeForTypos"]) == {"oneTypo", "twoTypos"}
    assert settings["localizedAttributes"] == [
        {
            "attributePatterns": ["title", "brand", "spec_model", "category_name", "description"],
            "locales": ["cmn"],
        }
    ]
    assert settings["faceting"]["maxValuesPerFacet"] == 100
    assert isinstance(settings["pagination"]["maxTotalHits"], int)
    # Synonyms are mutual within each group.
    syn = settings["synonyms"]
    assert sorted(syn["台式电脑"]) == sorted(["台式机", "台式计算机"])
    assert sorted(syn["台式计算机"]) == sorted(["台式电脑", "台式机"])
    assert syn["笔记本"] == ["便携式计算机"] and syn["便携式计算机"] == ["笔记本"]
    assert syn["打印机"] == ["打印设备"]
    for zh, latin in (("联想", "lenovo"), ("惠普", "hp"), ("戴尔", "dell"), ("华为", "huawei")):
        assert syn[zh] == [latin] and syn[latin] == [zh]
    assert syn == SYNONYMS


def test_ensure_index_on_an_existing_index_only_patches_settings(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    make(fake).ensure_index()
    assert fake.writes() == [("PATCH", "/indexes/products/settings")]


def test_upsert_body_and_primary_key(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    backend = make(fake)
    backend.upsert([doc(1), doc(2, price_cents=99999, category_code="A02010601", region_code="110105")])
    posts = [r for r in fake.requests if r.url.path == "/indexes/products/documents"]
    assert len(posts) == 1
    r = posts[0]
    assert r.method == "POST"
    assert r.url.params["primaryKey"] == "id"
    assert r.headers["Content-Type"] == "application/json"
    body = json.loads(r.content)
    assert isinstance(body, list) and len(body) == 2
    first = body[0]
    assert first == {
        "id": "00000000-0000-0000-0000-000000000001",
        "title": "联想 台式计算机 1",
        "brand": "联想",
        "spec_model": "M4001",
        "category_code": "A02010104",
        "category_name": "台式计算机",
        "category_prefixes": ["A", "A02", "A0201", "A020101", "A02010104"],
        "supplier_id": "sup-1",
        "supplier_name": "郑州某某科技有限公司",
        "region_code": "410102",
        "region_prefixes": ["4", "41", "410", "4101", "41010", "410102"],
        "price_cents": 459900,
        "price_band": "1000-5000",
        "stock": 5,
        "sales": 3,
        "created_ts": 1_790_000_001,
        "description": "办公用",
    }
    assert body[1]["price_band"] == "0-1000"
    assert body[1]["category_prefixes"][-2:] == ["A020106", "A02010601"]
    # It waited for the task before returning: the task poll comes after the enqueue.
    assert fake.calls()[-1] == ("GET", f"/tasks/{max(fake.tasks)}")
    assert set(fake.indexes["products"]) == {d["id"] for d in body}


def test_price_bands_at_the_edges(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    cents = [0, 99999, 100000, 499999, 500000, 999999, 1000000, 99999999]
    make(fake).upsert([doc(i, price_cents=c) for i, c in enumerate(cents, 1)])
    bands = [d["price_band"] for d in fake.body("POST", "/indexes/products/documents")]
    assert bands == [
        "0-1000",
        "0-1000",
        "1000-5000",
        "1000-5000",
        "5000-10000",
        "5000-10000",
        "10000+",
        "10000+",
    ]


def test_upsert_sends_batches_and_skips_empty(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    backend = make(fake, batch_size=2)
    backend.upsert([doc(i) for i in range(1, 6)])
    posts = [json.loads(r.content) for r in fake.requests if r.url.path == "/indexes/products/documents"]
    assert [len(p) for p in posts] == [2, 2, 1]
    n = len(fake.requests)
    backend.upsert([])
    assert all(r.url.path != "/indexes/products/documents" for r in fake.requests[n:])


def test_delete_batch(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    backend = make(fake)
    backend.upsert([doc(1), doc(2)])
    backend.delete([doc(1).id])
    r = fake.requests[-2]
    assert (r.method, r.url.path) == ("POST", "/indexes/products/documents/delete-batch")
    assert json.loads(r.content) == [doc(1).id]
    assert fake.calls()[-1][1].startswith("/tasks/")
    assert backend.count() == 1
    n = len(fake.requests)
    backend.delete([])
    assert fake.requests[n:] == []


def test_search_body_with_every_filter_paging_and_facets(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    query = SearchQuery(
        q=" 台式机 ",
        category="A020101",
        brand="联想",
        supplier="sup-1",
        region="4101",
        price_min=Decimal("1000.50"),
        price_max=Decimal("5000"),
        in_stock=True,
        sort="price_asc",
        page=3,
        per_page=30,
    )
    make(fake).search(query)
    r = fake.requests[-1]
    assert (r.method, r.url.path) == ("POST", "/indexes/products/search")
    assert json.loads(r.content) == {
        "q": "台式机",
        "filter": [
            'category_prefixes = "A020101"',
            'brand = "联想"',
            'supplier_id = "sup-1"',
            'region_prefixes = "4101"',
            "price_cents >= 100050",
            "price_cents <= 500000",
            "stock > 0",
        ],
        "sort": ["price_cents:asc"],
        "page": 3,
        "hitsPerPage": 30,
        "facets": ["category_code", "brand", "supplier_id", "price_band"],
        "attributesToRetrieve": [
            "id",
            "title",
            "brand",
            "spec_model",
            "category_code",
            "price_cents",
            "supplier_name",
        ],
        "attributesToHighlight": ["title"],
        "highlightPreTag": "<em>",
        "highlightPostTag": "</em>",
        "locales": ["cmn"],
    }


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("relevance", None),
        ("price_asc", ["price_cents:asc"]),
        ("price_desc", ["price_cents:desc"]),
        ("newest", ["created_ts:desc"]),
        ("sales", ["sales:desc"]),
    ],
)
def test_each_sort(fake: FakeMeili, sort: str, expected: list[str] | None) -> None:
    assert sort in SORTS
    fake.indexes["products"] = {}
    make(fake).search(SearchQuery(q="x", sort=sort))
    body = json.loads(fake.requests[-1].content)
    assert body.get("sort") == expected
    assert "filter" not in body  # no filters asked, none sent
    assert (body["page"], body["hitsPerPage"]) == (1, 20)


def test_unknown_sort_is_refused_before_any_request(fake: FakeMeili) -> None:
    with pytest.raises(ValueError, match="unknown sort"):
        make(fake).search(SearchQuery(sort="cheapest"))
    assert fake.requests == []


def test_paging_is_clamped(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    make(fake).search(SearchQuery(page=0, per_page=10_000))
    body = json.loads(fake.requests[-1].content)
    assert (body["page"], body["hitsPerPage"]) == (1, 100)


def test_full_level_codes_filter_as_prefixes(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    make(fake).search(SearchQuery(category="A02010000", region="410000"))
    body = json.loads(fake.requests[-1].content)
    assert body["filter"] == ['category_prefixes = "A0201"', 'region_prefixes = "41"']


def test_filter_escaping_of_quotes_and_backslashes(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    make(fake).search(SearchQuery(brand='He said "OK" \\ AND stock > 0'))
    body = json.loads(fake.requests[-1].content)
    # One condition; the value stays inside one double-quoted string (filter-parser escaping).
    assert body["filter"] == ['brand = "He said \\"OK\\" \\\\ AND stock > 0"']
    assert quote_filter_value("it's") == '"it\'s"'
    assert quote_filter_value("a\nb") == '"ab"'


def test_response_mapping_prices_facets_and_highlight_escaping(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    title = '联想<script>alert("x")</script> 台式机 & 显示器'
    fake.search_response = {
        "hits": [
            {
                "id": "00000000-0000-0000-0000-000000000001",
                "title": title,
                "brand": "联想",
                "spec_model": "M4001",
                "category_code": "A02010104",
                "price_cents": 459900,
                "supplier_name": "郑州某某科技有限公司",
                "_formatted": {
                    "id": "00000000-0000-0000-0000-000000000001",
                    "title": '<em>联想</em><script>alert("x")</script> <em>台式机</em> & 显示器',
                },
            },
            {
                "id": "00000000-0000-0000-0000-000000000002",
                "title": "惠普 打印机",
                "brand": "惠普",
                "spec_model": "P1",
                "category_code": "A02021001",
                "price_cents": 5,
                "supplier_name": "乙公司",
            },
        ],
        "query": "联想 台式机",
        "processingTimeMs": 1,
        "hitsPerPage": 20,
        "page": 1,
        "totalPages": 3,
        "totalHits": 42,
        "facetDistribution": {
            "category_code": {"A02010104": 40, "A02021001": 2},
            "brand": {"联想": 40, "惠普": 2},
            "supplier_id": {"s1": 42},
            "price_band": {"1000-5000": 41, "0-1000": 1},
        },
    }
    result = make(fake).search(SearchQuery(q="联想 台式机"))
    assert result.total == 42
    assert result.facets == {
        "category": {"A02010104": 40, "A02021001": 2},
        "brand": {"联想": 40, "惠普": 2},
        "supplier": {"s1": 42},
        "price_band": {"1000-5000": 41, "0-1000": 1},
    }
    first, second = result.hits
    assert first.price == "4599.00" and second.price == "0.05"
    assert first.title == title  # the raw title, escaped by whoever renders it
    assert first.highlight == (
        "<em>联想</em>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; <em>台式机</em> &amp; 显示器"
    )
    assert "<script>" not in first.highlight
    assert second.highlight == "惠普 打印机"  # no _formatted: just the escaped title
    assert (first.id, first.brand, first.spec_model, first.category_code, first.supplier_name) == (
        "00000000-0000-0000-0000-000000000001",
        "联想",
        "M4001",
        "A02010104",
        "郑州某某科技有限公司",
    )


def test_highlight_that_does_not_align_falls_back_to_escaped_title(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    fake.search_response = {
        "hits": [
            {
                "id": "a",
                "title": "<b>x</b>",
                "price_cents": 100,
                "_formatted": {"title": "<em>something else</em>"},
            }
        ],
        "totalHits": 1,
        "facetDistribution": {},
    }
    hit = make(fake).search(SearchQuery(q="x")).hits[0]
    assert hit.highlight == "&lt;b&gt;x&lt;/b&gt;"


def test_search_on_a_missing_index_is_empty(fake: FakeMeili) -> None:
    result = make(fake).search(SearchQuery(q="x"))
    assert result.total == 0 and result.hits == []


def test_failed_task_raises_a_clear_error(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    fake.fail_types["documentAdditionOrUpdate"] = {
        "message": "Document identifier `bad id` is invalid.",
        "code": "invalid_document_id",
        "type": "invalid_request",
        "link": "https://docs.meilisearch.com/errors#invalid_document_id",
    }
    with pytest.raises(
        MeiliError,
        match=r"task \d+ \(documentAdditionOrUpdate on products\) failed: "
        r"invalid_document_id: Document identifier `bad id` is invalid\.",
    ):
        make(fake).upsert([doc(1)])


def test_task_that_never_finishes_times_out(fake: FakeMeili) -> None:
    fake.indexes["products"] = {}
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    client = httpx.Client(transport=httpx.MockTransport(fake))
    backend = MeiliBackend(URL, KEY, client=client, sleep=sleep, clock=lambda: now[0], task_timeout=2.0)
    backend.ensure_index()
    original = fake.__call__

    def stuck(request: httpx.Request) -> httpx.Response:
        resp = original(request)
        if request.url.path.startswith("/tasks/"):
            task = dict(json.loads(resp.content), status="processing")
            return httpx.Response(200, json=task)
        return resp

    backend._client = httpx.Client(transport=httpx.MockTransport(stuck))
    with pytest.raises(MeiliError, match=r"still processing after 2s"):
        backend.upsert([doc(1)])
    assert now[0] >= 2.0


def test_http_error_is_reported_with_the_api_error(fake: FakeMeili) -> None:
    client = httpx.Client(transport=httpx.MockTransport(fake))
    backend = MeiliBackend(URL, "wrong-key", client=client)
    with pytest.raises(MeiliError, match=r"401 \(missing_authorization_header: missing key\)"):
        backend.count()


def test_rebuild_sequence(fake: FakeMeili) -> None:
    fake.indexes["products"] = {doc(99).id: {"id": doc(99).id}}  # the old live data
    backend = make(fake, batch_size=2)
    n = backend.rebuild(doc(i) for i in range(1, 4))
    assert n == 3
    writes = fake.writes()
    assert writes[0] == ("POST", "/indexes")
    fresh = fake.body("POST", "/indexes")["uid"]
    assert re.fullmatch(r"products_\d+", fresh)
    assert writes == [
        ("POST", "/indexes"),
        ("PATCH", f"/indexes/{fresh}/settings"),
        ("POST", f"/indexes/{fresh}/documents"),
        ("POST", f"/indexes/{fresh}/documents"),
        ("POST", "/swap-indexes"),
        ("DELETE", f"/indexes/{fresh}"),
    ]
    assert fake.body("PATCH", f"/indexes/{fresh}/settings") == INDEX_SETTINGS
    assert fake.body("POST", "/swap-indexes") == [{"indexes": ["products", fresh]}]
    # Every write was waited for before the next one was sent.
    calls = fake.calls()
    for i, call in enumerate(calls):
        if call[0] != "GET" and call != ("POST", f"/indexes/{fresh}/documents"):
            assert calls[i + 1][1].startswith("/tasks/"), calls
    # The swap is only sent once all document tasks have succeeded.
    swap_at = calls.index(("POST", "/swap-indexes"))
    polled = {int(p.rsplit("/", 1)[1]) for m, p in calls[:swap_at] if p.startswith("/tasks/")}
    assert polled == set(range(max(polled) + 1))
    # The live index now holds exactly the new documents; the temporary one is gone.
    assert set(fake.indexes) == {"products"}
    assert sorted(fake.indexes["products"]) == sorted(doc(i).id for i in range(1, 4))
    assert backend.count() == 3
    assert fake.calls()[-1] == ("GET", "/indexes/products/stats")


def test_rebuild_creates_a_missing_live_index_before_swapping(fake: FakeMeili) -> None:
    make(fake).rebuild([doc(1)])
    creates = [
        json.loads(r.content)["uid"] for r in fake.requests if (r.method, r.url.path) == ("POST", "/indexes")
    ]
    assert creates[1] == "products"
    assert fake.writes()[-2:] == [("POST", "/swap-indexes"), ("DELETE", f"/indexes/{creates[0]}")]


def test_failed_rebuild_drops_the_half_built_index_and_keeps_the_live_one(fake: FakeMeili) -> None:
    fake.indexes["products"] = {"old": {"id": "old"}}
    fake.fail_types["documentAdditionOrUpdate"] = {"message": "boom", "code": "internal", "type": "internal"}
    with pytest.raises(MeiliError, match="boom"):
        make(fake).rebuild([doc(1)])
    assert ("POST", "/swap-indexes") not in fake.calls()
    assert fake.writes()[-1][0] == "DELETE"
    assert set(fake.indexes) == {"products"} and set(fake.indexes["products"]) == {"old"}


def test_count_reads_stats(fake: FakeMeili) -> None:
    backend = make(fake)
    assert backend.count() == 0  # missing index
    fake.indexes["products"] = {"a": {}, "b": {}}
    assert backend.count() == 2
    assert fake.calls()[-1] == ("GET", "/indexes/products/stats")


@pytest.mark.skipif(
    not os.environ.get("MEILI_URL"),
    reason="no Meilisearch server can run here; set MEILI_URL (and MEILI_KEY) to run the round trip",
)
def test_real_server_round_trip() -> None:
    index = f"test_products_{uuid.uuid4().hex[:8]}"
    backend = MeiliBackend(os.environ["MEILI_URL"], os.environ.get("MEILI_KEY", ""), index=index)
    try:
        backend.ensure_index()
        backend.upsert(
            [doc(1, title='联想 台式计算机 <b>"特价"</b>'), doc(2, brand="戴尔", title="戴尔 笔记本")]
        )
        assert backend.count() == 2
        result = backend.search(SearchQuery(q="联想", brand="联想", category="A020101", in_stock=True))
        assert [h.id for h in result.hits] == [doc(1).id]
        assert "<b>" not in result.hits[0].highlight and "<em>" in result.hits[0].highlight
        assert result.hits[0].price == "4599.00"
        assert result.facets["brand"] == {"联想": 1}
        backend.delete([doc(1).id])
        assert backend.search(SearchQuery(q="联想")).total == 0
    finally:
        backend.wait_for_task(backend._enqueue("DELETE", f"/indexes/{index}"))
        backend.close()
