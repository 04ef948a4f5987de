"""The Meilisearch adapter, checked at the HTTP level.

No Meilisearch server can run on this machine, so these tests check the requests the adapter (the
official `meilisearch` client underneath) sends against the documented Meilisearch API (method,
path, query string, JSON body shape, headers). The server they talk to is a fake
(`tests/search_index/fake_meili.py`): a small HTTP server on 127.0.0.1 that records every request
and answers the way the reference documents it. It is not a search engine: the search answer is
canned per test.

References: https://www.meilisearch.com/docs/reference/api/ (indexes, settings, documents, search,
tasks, stats, swap-indexes).

With MEILI_URL (and MEILI_KEY if the server has a master key) set, `test_real_server_round_trip`
also runs a minimal upsert → search → delete round trip against that server.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from search_index.backend import SORTS, ProductDocument, SearchQuery
from search_index.meili import INDEX_SETTINGS, SYNONYMS, MeiliBackend, MeiliError, quote_filter_value
from tests.search_index.fake_meili import KEY, FakeMeili, serve


def make(fake: FakeMeili, key: str = KEY, **kwargs: Any) -> MeiliBackend:
    return MeiliBackend(fake.url, key, **kwargs)


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
def fake() -> Iterator[FakeMeili]:
    server = FakeMeili()
    with serve(server) as url:
        server.url = url
        yield server


def test_every_request_carries_the_bearer_key(fake: FakeMeili) -> None:
    make(fake).upsert([doc()])
    assert fake.requests
    for r in fake.requests:
        assert r.headers["Authorization"] == f"Bearer {KEY}"
        assert r.headers["User-Agent"].startswith("Meilisearch Python")  # the official client
        assert f"http://{r.url.host}:{r.url.port}" == fake.url


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
        "green",
        "origin",
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
        "green": [],
        "origin": "domestic",
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
        green=True,
        origin="imported",
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
            "green IS NOT EMPTY",
            'origin = "imported"',
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
    backend = make(fake, task_timeout=0.3, poll_interval=0.02)
    backend.ensure_index()
    fake.tasks_stuck = True
    started = time.monotonic()
    with pytest.raises(
        MeiliError, match=r"task \d+ \(documentAdditionOrUpdate on products\) not finished after 0.3s"
    ):
        backend.upsert([doc(1)])
    assert time.monotonic() - started >= 0.3
    polls = [p for m, p in fake.calls() if p == f"/tasks/{max(fake.tasks)}"]
    assert len(polls) >= 3  # it polled, at the interval asked, until the deadline


def test_http_error_is_reported_with_the_api_error(fake: FakeMeili) -> None:
    backend = make(fake, key="wrong-key")
    with pytest.raises(
        MeiliError,
        match=r"GET /indexes/products/stats answered 401 \(missing_authorization_header: missing key\)",
    ):
        backend.count()


def test_unreachable_server_is_a_meili_error() -> None:
    backend = MeiliBackend("http://127.0.0.1:9", KEY, timeout=2)  # discard port: nothing listens
    with pytest.raises(MeiliError, match=r"GET /indexes/products/stats"):
        backend.count()


def test_each_thread_has_its_own_client(fake: FakeMeili) -> None:
    """The client sets and removes Content-Type on a header dict it shares between requests, so a
    search (POST) and a health check (GET) at once in two threads must not share one client."""
    fake.indexes["products"] = {}
    backend = make(fake)
    barrier = threading.Barrier(4, timeout=10)

    def client_of_this_thread(_i: int) -> int:
        barrier.wait()  # four threads at once
        return id(backend._client())

    with ThreadPoolExecutor(4) as pool:
        clients = set(pool.map(client_of_this_thread, range(4)))
        futures = [
            pool.submit(backend.search, SearchQuery(q="x")) if i % 2 else pool.submit(backend.count)
            for i in range(40)
        ]
        for f in futures:
            f.result()
    assert len(clients) == 4 and backend._client() is backend._client()
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 20
    assert all(r.headers.get("Content-Type") == "application/json" for r in posts)


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
        backend.wait_for_task(backend._delete_index(index))
        backend.close()
