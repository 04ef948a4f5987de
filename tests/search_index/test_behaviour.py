"""One behavioural suite for every search backend (see conftest.BACKENDS), on a small Chinese catalogue."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from search_index.backend import ProductDocument, SearchQuery, SearchResult

S1, S2 = "sup-beijing", "sup-shanghai"
SUPPLIER_NAMES = {S1: "北京晨星科技有限公司", S2: "上海浦江办公用品有限公司"}
REGIONS = {S1: "110105", S2: "310115"}
CATEGORY_NAMES = {
    "A02010104": "服务器",
    "A02010105": "台式计算机",
    "A02010108": "便携式计算机",
    "A02021003": "A4黑白打印机",
    "A02021004": "A4彩色打印机",
    "A02021001": "A3黑白打印机",
    "A02021104": "液晶显示器",
    "A05010301": "办公椅",
    "A05040101": "复印纸",
    "A02061804": "空调机",
}

# id, title, brand, spec_model, category, supplier, price (元), stock
ROWS = [
    ("d1", "联想(Lenovo) 启天 M437 台式电脑 i5/16G/512G", "联想", "启天M437", "A02010105", S1, "4599.00", 20),
    ("d2", "联想 扬天 T4900 台式计算机", "联想", "T4900", "A02010105", S2, "5299.00", 0),
    ("d3", "惠普 HP ProDesk 400 G9 台式机", "惠普", "ProDesk 400 G9", "A02010105", S1, "4899.00", 5),
    ("d4", "戴尔 OptiPlex 7010 台式电脑", "戴尔", "OptiPlex 7010", "A02010105", S2, "5599.00", 8),
    ("d5", "华为 擎云 B730 台式机", "华为", "B730", "A02010105", S1, "6299.00", 3),
    ("l1", "联想 ThinkPad E14 笔记本电脑", "联想", "ThinkPad E14", "A02010108", S1, "5999.00", 7),
    ("l2", "惠普 战66 笔记本", "惠普", "战66 六代", "A02010108", S2, "4999.00", 9),
    ("l3", "戴尔 Latitude 5440 商用轻薄本", "戴尔", "Latitude 5440", "A02010108", S1, "7299.00", 2),
    ("l4", "华为 MateBook 14 笔记本电脑", "华为", "MateBook 14", "A02010108", S2, "6499.00", 4),
    ("l5", "联想 小新 Pro14 便携机", "联想", "小新Pro14", "A02010108", S1, "5199.00", 0),
    ("p1", "惠普 LaserJet Pro M232dwc A4黑白激光打印机", "惠普", "M232dwc", "A02021003", S1, "1899.00", 15),
    ("p2", "兄弟 HL-2595DW A4黑白激光打印机", "兄弟", "HL-2595DW", "A02021003", S2, "1299.00", 11),
    ("p3", "佳能 LBP623Cdw A4彩色激光打印机", "佳能", "LBP623Cdw", "A02021004", S1, "2699.00", 6),
    ("p4", "爱普生 L3258 A4彩色喷墨打印设备", "爱普生", "L3258", "A02021004", S2, "1099.00", 0),
    ("p5", "惠普 LaserJet M706n A3黑白激光打印机", "惠普", "M706n", "A02021001", S1, "8999.00", 1),
    ("m1", "联想 23.8英寸 液晶显示器 L24e", "联想", "L24e-30", "A02021104", S1, "899.00", 30),
    ("m2", "戴尔 P2422H 显示器", "戴尔", "P2422H", "A02021104", S2, "1299.00", 12),
    ("m3", "惠普 27英寸 IPS 显示器", "惠普", "P27 G5", "A02021104", S1, "1599.00", 0),
    ("c1", "得力 网布办公椅 人体工学", "得力", "DL-4901", "A05010301", S1, "399.00", 50),
    ("c2", "永艺 人体工学椅子 XY-100", "永艺", "XY-100", "A05010301", S2, "1299.00", 10),
    ("c3", "<script>alert(1)</script> 促销办公椅", "得力", "DL-3303", "A05010301", S2, "299.00", 40),
    ("c4", "西昊 会议椅子 M18", "西昊", "M18", "A05010301", S1, "259.00", 25),
    ("a1", "得力 A4复印纸 70g 500张/包", "得力", "7401", "A05040101", S1, "25.00", 500),
    ("a2", "晨光 A4纸 80g 500张/包", "晨光", "APYVPB01", "A05040101", S2, "32.50", 300),
    ("a3", "得力 复印纸 A3 80g", "得力", "7403", "A05040101", S1, "45.00", 0),
    ("s1", "华为 FusionServer 2288H V6 服务器", "华为", "2288H V6", "A02010104", S2, "35999.00", 2),
    ("s2", "联想 ThinkSystem SR658 伺服器", "联想", "SR658", "A02010104", S1, "28999.00", 1),
    ("k1", "格力 1.5匹 变频 空调", "格力", "KFR-35GW", "A02061804", S1, "3299.00", 10),
    ("k2", "美的 大1匹 冷暖 空调机", "美的", "KFR-26GW", "A02061804", S2, "2999.00", 0),
    ("k3", "海尔 3匹 柜式空调", "海尔", "KFR-72LW", "A02061804", S1, "7999.00", 4),
]
DESKTOPS = {"d1", "d2", "d3", "d4", "d5"}
LAPTOPS = {"l1", "l2", "l3", "l4", "l5"}


def make_docs() -> list[ProductDocument]:
    docs = []
    for i, (id_, title, brand, model, cat, sup, price, stock) in enumerate(ROWS):
        docs.append(
            ProductDocument(
                id=id_,
                title=title,
                brand=brand,
                spec_model=model,
                category_code=cat,
                category_name=CATEGORY_NAMES[cat],
                supplier_id=sup,
                supplier_name=SUPPLIER_NAMES[sup],
                region_code=REGIONS[sup],
                price_cents=int(Decimal(price) * 100),
                stock=stock,
                sales=(i * 37) % 101,  # distinct
                created_ts=1_700_000_000 + ((i * 7919) % 1000) * 3600,  # distinct
            )
        )
    return docs


DOCS = make_docs()
BY_ID = {d.id: d for d in DOCS}


@pytest.fixture
def backend(empty_backend: Any) -> Any:
    assert empty_backend.rebuild(DOCS) == len(DOCS)
    return empty_backend


def search(backend: Any, **kw: Any) -> SearchResult:
    kw.setdefault("per_page", 100)
    return backend.search(SearchQuery(**kw))


def ids(result: SearchResult) -> list[str]:
    return [h.id for h in result.hits]


def test_count(backend: Any) -> None:
    assert backend.count() == len(DOCS)


@pytest.mark.parametrize("q", ["台式电脑", "台式机", "台式计算机"])
def test_desktop_synonyms_find_the_desktops_first(backend: Any, q: str) -> None:
    found = ids(search(backend, q=q))
    assert set(found[: len(DESKTOPS)]) == DESKTOPS
    assert set(found) == DESKTOPS  # nothing else says 台式


@pytest.mark.parametrize("q", ["笔记本", "笔记本电脑", "便携式计算机", "便携机"])
def test_laptop_synonyms(backend: Any, q: str) -> None:
    assert set(ids(search(backend, q=q))) == LAPTOPS


def test_words_are_anded(backend: Any) -> None:
    assert set(ids(search(backend, q="联想 台式"))) == {"d1", "d2"}
    assert set(ids(search(backend, q="联想台式电脑"))) == {"d1", "d2"}


def test_printers_a4(backend: Any) -> None:
    assert set(ids(search(backend, q="打印机 A4"))) == {"p1", "p2", "p3", "p4"}  # p4 says 打印设备
    assert set(ids(search(backend, q="打印设备"))) == {"p1", "p2", "p3", "p4", "p5"}


def test_full_width_and_case(backend: Any) -> None:
    assert set(ids(search(backend, q="打印机 Ａ４"))) == {"p1", "p2", "p3", "p4"}
    assert set(ids(search(backend, q="OPTIPLEX"))) == {"d4"}


def test_other_synonym_groups(backend: Any) -> None:
    assert set(ids(search(backend, q="服务器"))) == {"s1", "s2"}
    assert set(ids(search(backend, q="椅子"))) == {"c1", "c2", "c3", "c4"}  # category 办公椅
    assert set(ids(search(backend, q="A4纸"))) == {"a1", "a2", "a3"}  # a3 is 复印纸 (A3)
    assert set(ids(search(backend, q="空调"))) == {"k1", "k2", "k3"}
    assert set(ids(search(backend, q="液晶显示器"))) == {"m1", "m2", "m3"}


def test_model_numbers(backend: Any) -> None:
    assert ids(search(backend, q="M437")) == ["d1"]
    assert ids(search(backend, q="m232")) == ["p1"]  # prefix of M232dwc
    assert ids(search(backend, q="LBP623Cdw")) == ["p3"]
    assert ids(search(backend, q="HL-2595DW")) == ["p2"]


def test_latin_brand_aliases_and_typos(backend: Any) -> None:
    lenovo = {d.id for d in DOCS if d.brand == "联想"}
    assert set(ids(search(backend, q="lenovo"))) == lenovo
    assert set(ids(search(backend, q="lenvo"))) == lenovo
    assert set(ids(search(backend, q="Lenvo 台式"))) == {"d1", "d2"}
    assert set(ids(search(backend, q="huawai"))) == {d.id for d in DOCS if d.brand == "华为"}
    assert set(ids(search(backend, q="epson"))) == {"p4"}


def test_no_match(backend: Any) -> None:
    result = search(backend, q="挖掘机")
    assert result.total == 0 and result.hits == []


def test_filters(backend: Any) -> None:
    computers = {d.id for d in DOCS if d.category_code.startswith("A020101")}
    assert set(ids(search(backend, category="A020101"))) == computers
    assert set(ids(search(backend, category="A02010100"))) == computers  # padded level-3 code
    assert set(ids(search(backend, category="A02010105"))) == DESKTOPS
    assert set(ids(search(backend, q="联想", category="A02010108"))) == {"l1", "l5"}
    assert set(ids(search(backend, brand="惠普"))) == {d.id for d in DOCS if d.brand == "惠普"}
    assert set(ids(search(backend, q="台式电脑", brand="戴尔"))) == {"d4"}
    assert set(ids(search(backend, supplier=S2))) == {d.id for d in DOCS if d.supplier_id == S2}
    assert set(ids(search(backend, region="310000"))) == {d.id for d in DOCS if d.supplier_id == S2}
    assert set(ids(search(backend, region="1101"))) == {d.id for d in DOCS if d.supplier_id == S1}
    cheap = search(backend, q="台式电脑", price_min=Decimal("4800"), price_max=Decimal("5599.00"))
    assert set(ids(cheap)) == {"d2", "d3", "d4"}  # bounds inclusive
    assert set(ids(search(backend, q="台式机", in_stock=True))) == DESKTOPS - {"d2"}
    assert set(ids(search(backend, price_max=Decimal("30")))) == {"a1"}


def test_empty_query_with_filters_lists_everything_filtered(backend: Any) -> None:
    assert search(backend).total == len(DOCS)
    result = search(backend, category="A05", in_stock=True)
    assert set(ids(result)) == {d.id for d in DOCS if d.category_code.startswith("A05") and d.stock > 0}
    assert result.total == len(result.hits)


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("price_asc", "price_cents", False),
        ("price_desc", "price_cents", True),
        ("newest", "created_ts", True),
        ("sales", "sales", True),
    ],
)
@pytest.mark.parametrize("q", ["", "联想", "打印机"])
def test_sorts(backend: Any, sort: str, key: str, reverse: bool, q: str) -> None:
    found = ids(search(backend, q=q, sort=sort))
    assert found
    values = [getattr(BY_ID[i], key) for i in found]
    assert values == sorted(values, reverse=reverse)


def test_relevance_prefers_more_matching_words(backend: Any) -> None:
    found = ids(search(backend, q="台式机 联想"))
    assert set(found) == {"d1", "d2"}
    found = ids(search(backend, q="联想", sort="relevance"))
    assert set(found) == {d.id for d in DOCS if d.brand == "联想"}


def test_unknown_sort_is_refused(backend: Any) -> None:
    with pytest.raises(ValueError):
        search(backend, sort="cheapest")


def test_facets_count_over_all_matches(backend: Any) -> None:
    result = search(backend, q="联想", per_page=2)
    lenovo = [d for d in DOCS if d.brand == "联想"]
    assert result.total == len(lenovo) and len(result.hits) == 2
    assert result.facets["brand"] == {"联想": len(lenovo)}
    cats: dict[str, int] = {}
    for d in lenovo:
        cats[d.category_code] = cats.get(d.category_code, 0) + 1
    assert result.facets["category"] == cats
    suppliers: dict[str, int] = {}
    for d in lenovo:
        suppliers[d.supplier_id] = suppliers.get(d.supplier_id, 0) + 1
    assert result.facets["supplier"] == suppliers
    bands = search(backend, per_page=1).facets["price_band"]
    assert bands == {"0-1000": 7, "1000-5000": 12, "5000-10000": 9, "10000+": 2}
    assert sum(search(backend, per_page=1).facets["brand"].values()) == len(DOCS)


@pytest.mark.parametrize("sort", ["relevance", "price_asc", "price_desc", "newest", "sales"])
def test_pagination_is_stable_and_complete(backend: Any, sort: str) -> None:
    everything = ids(search(backend, sort=sort, per_page=100))
    pages: list[str] = []
    for page in range(1, 20):
        result = search(backend, sort=sort, page=page, per_page=7)
        assert result.total == len(DOCS)
        if not result.hits:
            break
        pages += ids(result)
    assert pages == everything and len(set(pages)) == len(DOCS)


def test_per_page_is_capped(backend: Any) -> None:
    assert len(search(backend, per_page=1000).hits) == len(DOCS)  # capped at 100, we have 30
    assert len(search(backend, per_page=5, page=0).hits) == 5


def test_hit_fields(backend: Any) -> None:
    (hit,) = search(backend, q="M437").hits
    d1 = BY_ID["d1"]
    assert (hit.title, hit.brand, hit.spec_model, hit.category_code) == (
        d1.title,
        d1.brand,
        d1.spec_model,
        d1.category_code,
    )
    assert hit.price == "4599.00"
    assert hit.supplier_name == SUPPLIER_NAMES[S1]
    assert search(backend, q="晨光").hits[0].price == "32.50"


def test_highlight(backend: Any) -> None:
    (hit,) = [h for h in search(backend, q="台式机").hits if h.id == "d4"]
    assert hit.highlight == "戴尔 OptiPlex 7010 <em>台式电脑</em>"
    (hit,) = search(backend, q="促销 办公椅").hits
    assert "<script>" not in hit.highlight
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hit.highlight
    assert "<em>促销</em><em>办公椅</em>" in hit.highlight or "<em>促销办公椅</em>" in hit.highlight
    (hit,) = [h for h in search(backend, q="lenvo 笔记本").hits if h.id == "l1"]
    assert hit.highlight == "联想 ThinkPad E14 <em>笔记本电脑</em>".replace("联想", "<em>联想</em>")
    (hit,) = search(backend, q="m232").hits
    assert "<em>M232</em>dwc" in hit.highlight
    assert search(backend, category="A05040101").hits[0].highlight.count("<em>") == 0


def test_delete_is_visible_immediately(backend: Any) -> None:
    backend.delete(["d1"])
    assert "d1" not in ids(search(backend, q="台式电脑"))
    assert search(backend, q="M437").total == 0
    assert backend.count() == len(DOCS) - 1
    backend.delete([])  # nothing to do
    backend.delete(["no-such-id"])
    assert backend.count() == len(DOCS) - 1


def test_upsert_replaces_and_resorts(backend: Any) -> None:
    assert ids(search(backend, q="台式电脑", sort="price_asc"))[0] == "d1"
    backend.upsert([replace(BY_ID["d1"], price_cents=999_900)])
    found = ids(search(backend, q="台式电脑", sort="price_asc"))
    assert found[-1] == "d1" and len(found) == len(DESKTOPS)
    assert backend.count() == len(DOCS)  # replaced, not added
    assert search(backend, q="M437").hits[0].price == "9999.00"
    new = replace(BY_ID["d1"], id="d9", title="清华同方 超翔 台式机", brand="清华同方", spec_model="Z8000")
    backend.upsert([new])
    assert "d9" in ids(search(backend, q="台式计算机"))
    assert backend.count() == len(DOCS) + 1


def test_rebuild_swaps_atomically(backend: Any, tmp_path: Any) -> None:
    seen_during: list[int] = []

    def feed() -> Any:
        for i, d in enumerate(DOCS[:10]):
            if i == 5:  # mid-rebuild, searches still answer from the old index
                seen_during.append(search(backend, q="台式电脑").total)
                seen_during.append(backend.count())
            yield d

    assert backend.rebuild(feed()) == 10
    assert seen_during == [len(DESKTOPS), len(DOCS)]
    assert backend.count() == 10
    assert set(ids(search(backend, q="台式电脑"))) == DESKTOPS
    assert search(backend, q="打印机").total == 0  # not in the first 10
    backend.upsert([BY_ID["p1"]])  # writes go to the new index
    assert ids(search(backend, q="打印机")) == ["p1"]
    assert backend.rebuild(DOCS) == len(DOCS)
    assert backend.count() == len(DOCS)


def test_rebuild_failure_keeps_the_old_index(backend: Any) -> None:
    def broken() -> Any:
        yield DOCS[0]
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        backend.rebuild(broken())
    assert backend.count() == len(DOCS)
    assert search(backend, q="台式机").total == len(DESKTOPS)


# -- the embedded backend's process model: writers queue on a file lock, readers follow commits and swaps --


def test_embedded_reader_follows_writer(tmp_path: Any) -> None:
    from search_index.embedded import EmbeddedBackend, IndexBusy

    path = tmp_path / "search"
    reader_before = EmbeddedBackend(path)  # no index yet: answers empty
    assert reader_before.count() == 0 and search(reader_before, q="台式机").total == 0
    writer = EmbeddedBackend(path, writer=True, heap_bytes=15_000_000)
    other = EmbeddedBackend(path, writer=True, heap_bytes=15_000_000, lock_timeout=0.2)
    writer.rebuild(DOCS)
    reader = EmbeddedBackend(path)
    assert reader.count() == len(DOCS) == reader_before.count()
    writer.delete(["d1"])
    assert "d1" not in ids(search(reader, q="台式电脑"))
    other.delete(["d2"])  # a second writer's change lands in the same live index
    assert reader.count() == len(DOCS) - 2

    def feed() -> Any:
        for i, doc in enumerate(DOCS[:3]):
            if i == 1:
                with pytest.raises(IndexBusy):
                    other.rebuild(DOCS)  # one rebuild at a time
                other.delete(["d3"])  # writes go on during a rebuild, into the old index
                assert reader.count() == len(DOCS) - 3
            yield doc

    assert writer.rebuild(feed()) == 3
    assert reader.count() == 3 and reader_before.count() == 3
    other.upsert(DOCS[3:4])  # after the swap, the other writer writes to the new index
    assert reader.count() == 4
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("index-")) == [
        (path / "CURRENT").read_text().strip()
    ]
    with pytest.raises(RuntimeError):
        reader.upsert(DOCS[:1])


def test_document_of_a_listing() -> None:
    import uuid
    from datetime import UTC, datetime

    from catalog.categories import name_of
    from catalog.models import Listing
    from mall.core.models import Organization
    from search_index.documents import document_of

    supplier = Organization(
        id=uuid.uuid4(), kind="supplier", name="北京晨星科技有限公司", region_code="110105"
    )
    listing = Listing(
        id=uuid.uuid4(),
        supplier_org_id=supplier.id,
        supplier=supplier,
        name="联想 启天 M437 台式电脑",
        brand="联想",
        spec_model="启天M437",
        category_code="A02010105",
        price=Decimal("4599.5"),
        stock=Decimal("12.000"),
        sales_count=3,
        description="商用台式机",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    doc = document_of(listing, supplier.name, name_of("A02010105"))
    assert doc.id == str(listing.id) and doc.supplier_id == str(supplier.id)
    assert (doc.price_cents, doc.stock, doc.sales) == (459950, 12, 3)
    assert doc.created_ts == int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    assert (doc.category_name, doc.region_code, doc.supplier_name) == (
        "台式计算机",
        "110105",
        "北京晨星科技有限公司",
    )
    without_supplier = Listing(
        **{
            k: getattr(listing, k)
            for k in ("id", "name", "brand", "spec_model", "category_code", "price", "stock", "created_at")
        },
        supplier_org_id=supplier.id,
        sales_count=None,
    )
    assert document_of(without_supplier, "x", "").region_code == ""


def test_pages_past_the_end_are_empty(backend: Any) -> None:
    result = search(backend, page=5, per_page=10)
    assert result.total == len(DOCS) and result.hits == []
    result = search(backend, page=10**9, per_page=100)  # no giant allocation, just nothing
    assert result.total == len(DOCS) and result.hits == []
