"""The search interface every backend implements (embedded tantivy, Meilisearch).

Documents are built from live listings (`search_index.documents`); only live listings are ever
indexed, so a search can never return anything else. Money travels as decimal strings; the
backends keep prices as integer 分 for filtering and sorting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

SORTS = ("relevance", "price_asc", "price_desc", "newest", "sales")
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class ProductDocument:
    id: str  # listing uuid
    title: str  # the listing's name
    brand: str
    spec_model: str
    category_code: str
    category_name: str
    supplier_id: str
    supplier_name: str
    region_code: str
    price_cents: int
    stock: int
    sales: int
    created_ts: int  # seconds since the epoch, for "newest"
    description: str = ""
    green: str = ""  # certificates in force when indexed: "energy", "eco", "energy,eco" or ""
    origin: str = "domestic"  # domestic | imported


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    category: str = ""  # 品目 code prefix
    brand: str = ""
    supplier: str = ""  # supplier id
    region: str = ""  # region code prefix
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool = False
    green: bool = False  # only products with a certificate in force
    origin: str = ""  # domestic | imported
    sort: str = "relevance"
    page: int = 1
    per_page: int = 20


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    brand: str
    spec_model: str
    category_code: str
    price: str  # decimal string, e.g. "4599.00"
    supplier_name: str
    highlight: str  # the title with matched words wrapped in <em>…</em> (HTML-escaped otherwise)


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)  # category, brand, supplier, price_band


@runtime_checkable
class SearchBackend(Protocol):
    name: str

    def upsert(self, docs: Iterable[ProductDocument]) -> None:
        """Add or replace documents (by id). Visible to searches when this returns."""

    def delete(self, ids: Iterable[str]) -> None:
        """Remove documents (delisted, frozen). Visible to searches when this returns."""

    def search(self, query: SearchQuery) -> SearchResult:
        """Words (Chinese segmented, synonyms expanded, Latin typo-tolerant), filters, sort, facets."""

    def rebuild(self, docs: Iterable[ProductDocument]) -> int:
        """Build a fresh index from all documents and swap it in atomically; searches keep answering
        from the old index until the swap. Returns the number of documents indexed."""

    def count(self) -> int:
        """Documents in the live index."""
