"""The embedded search backend: a tantivy index in the data directory (`<data>/search/`).

Layout under `path`:
    CURRENT        the name of the live index directory (replaced atomically: temp file + os.replace)
    index-<n>/     tantivy index directories; a rebuild writes `index-<n+1>` then swaps CURRENT
    writer.lock    flock held for the length of one write (an upsert, a delete, a swap)
    rebuild.lock   flock held for the length of a rebuild: two rebuilds never run at once

Processes: the worker's jobs (and `mall reindex`) open with `writer=True`; each write takes
writer.lock, opens a tantivy writer on the index CURRENT names at that moment, commits and closes it,
so writes from several processes queue and always land in the live index, even right after a swap.
Web processes open read-only (`writer=False`) and `reload()` before each search (cheap: a read of
CURRENT plus tantivy's reader reload), so they see commits and swaps without restarting.

Text: one field, `text`, holds the jieba search-mode tokens of title + brand + spec_model +
category_name (plus brand aliases: 联想 ↔ lenovo), joined with spaces and indexed with a whitespace +
lowercase analyzer. A query is segmented in precise mode; each word becomes an OR of its synonyms (and,
for Latin words, a fuzzy term and a prefix term), and the words are ANDed.

Facets are tantivy aggregations over all matching documents (not only the page); the terms facets
return at most FACET_SIZE buckets each (the largest counts).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import tantivy

from mall.core.money import from_cents, money_str, to_cents
from search_index import text as tx
from search_index.backend import MAX_PER_PAGE, SORTS, Hit, ProductDocument, SearchQuery, SearchResult

TOKENIZER = "jieba_ws"
FACET_SIZE = 200
MAX_WINDOW = 10_000  # deepest hit reachable by paging (tantivy keeps offset+limit hits in memory)
PRICE_BANDS: tuple[tuple[str, int | None, int | None], ...] = (  # key, from 分 (incl.), to 分 (excl.)
    ("0-1000", None, 100_000),
    ("1000-5000", 100_000, 500_000),
    ("5000-10000", 500_000, 1_000_000),
    ("10000+", 1_000_000, None),
)
_SORT_FIELDS: dict[str, tuple[str, Any]] = {
    "price_asc": ("price_cents", tantivy.Order.Asc),
    "price_desc": ("price_cents", tantivy.Order.Desc),
    "newest": ("created_ts", tantivy.Order.Desc),
    "sales": ("sales", tantivy.Order.Desc),
}
_INDEX_DIR = re.compile(r"^index-(\d+)$")
_INT_FIELDS = ("price_cents", "stock", "sales", "created_ts")


class IndexBusy(RuntimeError):
    """Another process holds the index lock (a rebuild already running, or a write that does not end)."""


# Every field of `build_schema`, by name (tests/search_index checks a new index has exactly these).
SCHEMA_FIELDS = (
    "id",
    "text",
    "title",
    "spec_model",
    "category_name",
    "supplier_name",
    "region_code",
    "brand",
    "category_code",
    "category4",
    "category_prefix",
    "region_prefix",
    "supplier_id",
    "policy",
    *_INT_FIELDS,
)


def build_schema() -> Any:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    sb.add_text_field("text", stored=False, tokenizer_name=TOKENIZER, index_option="position")
    for name in ("title", "spec_model", "category_name", "supplier_name", "region_code"):
        sb.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("brand", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("category_code", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("category4", fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("category_prefix", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("region_prefix", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("supplier_id", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    # policy tokens: "green", "energy", "eco", "origin:domestic" or "origin:imported" (catalog.policy)
    sb.add_text_field("policy", tokenizer_name="raw", index_option="basic")
    for name in _INT_FIELDS:
        sb.add_integer_field(name, stored=True, indexed=True, fast=True)
    return sb.build()


def _analyzer() -> Any:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).filter(tantivy.Filter.lowercase()).build()
    )


def _code_prefix(code: str) -> str:
    """A 品目 code as a prefix: trailing "00" pairs of padded codes dropped (A02010100 → A020101)."""
    code = code.strip().upper()
    while len(code) > 3 and code.endswith("00") and len(code) % 2 == 1:
        code = code[:-2]
    return code


def _region_prefix(code: str) -> str:
    """A region code as a prefix: trailing "00" pairs dropped (110100 → 1101)."""
    code = code.strip()
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def policy_tokens(doc: ProductDocument) -> list[str]:
    kinds = [k for k in doc.green.split(",") if k]
    return [*(["green"] if kinds else []), *kinds, f"origin:{doc.origin or 'domestic'}"]


def _prefixes(code: str) -> list[str]:
    return [code[:i] for i in range(1, len(code) + 1)]


def _document(doc: ProductDocument) -> Any:
    d = tantivy.Document()
    d.add_text("id", doc.id)
    tokens = tx.document_tokens(doc.title, doc.brand, doc.spec_model, doc.category_name)
    d.add_text("text", " ".join(tokens))
    d.add_text("title", doc.title)
    d.add_text("brand", doc.brand)
    d.add_text("spec_model", doc.spec_model)
    d.add_text("category_name", doc.category_name)
    d.add_text("supplier_name", doc.supplier_name)
    d.add_text("supplier_id", doc.supplier_id)
    d.add_text("region_code", doc.region_code)
    d.add_text("category_code", doc.category_code)
    code = doc.category_code.strip().upper()
    if code:
        d.add_text("category4", code[:9])
        for p in _prefixes(code):
            d.add_text("category_prefix", p)
    for p in _prefixes(doc.region_code.strip()):
        d.add_text("region_prefix", p)
    for token in policy_tokens(doc):
        d.add_text("policy", token)
    d.add_integer("price_cents", int(doc.price_cents))
    d.add_integer("stock", int(doc.stock))
    d.add_integer("sales", int(doc.sales))
    d.add_integer("created_ts", int(doc.created_ts))
    return d


def _first(d: dict[str, list[Any]], name: str, default: Any = "") -> Any:
    values = d.get(name)
    return values[0] if values else default


def schema_is_current(path: Path) -> bool:
    """Whether the index in `path` has this release's fields (a release that adds a field needs a
    rebuild: the launcher makes it before the web server starts)."""
    try:
        name = (Path(path) / "CURRENT").read_text(encoding="utf-8").strip()
        meta = json.loads((Path(path) / name / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return {f.get("name") for f in meta.get("schema", [])} == set(SCHEMA_FIELDS)


class EmbeddedBackend:
    name = "embedded"

    def __init__(
        self, path: Path, *, writer: bool = False, heap_bytes: int = 64_000_000, lock_timeout: float = 30.0
    ) -> None:
        self.path = Path(path)
        self.is_writer = writer
        self.heap_bytes = heap_bytes
        self.lock_timeout = lock_timeout
        self.schema = build_schema()
        self._ref_lock = threading.Lock()  # guards the (name, index) pair; held briefly
        self._write_lock = threading.RLock()  # serializes writes within this process
        self._name = ""
        self._index: Any = None
        self.path.mkdir(parents=True, exist_ok=True)
        if writer:
            with self._writing():
                name = self._read_current()
                if not name or not (self.path / name / "meta.json").exists():
                    name = self._next_dir_name()
                    self._new_index(self.path / name)
                    self._write_current(name)
        self.reload()

    @contextlib.contextmanager
    def _flock(self, name: str, *, wait: bool) -> Iterator[None]:
        with open(self.path / name, "a+") as f:
            deadline = time.monotonic() + (self.lock_timeout if wait else 0.0)
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy(name) from None
                    time.sleep(0.005)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write at a time across processes (writer.lock) and threads (the RLock)."""
        self._require_writer()
        with self._write_lock, self._flock("writer.lock", wait=True):
            yield

    # -- files -----------------------------------------------------------------------------------
    def _read_current(self) -> str:
        try:
            return (self.path / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""

    def _write_current(self, name: str) -> None:
        tmp = self.path / f"CURRENT.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / "CURRENT")
        with contextlib.suppress(OSError):  # make the rename durable
            dir_fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _next_dir_name(self) -> str:
        numbers = [int(m.group(1)) for p in self.path.iterdir() if (m := _INDEX_DIR.match(p.name))]
        return f"index-{max(numbers, default=0) + 1}"

    def _new_index(self, directory: Path) -> Any:
        directory.mkdir(parents=True, exist_ok=False)
        index = tantivy.Index(self.schema, str(directory), reuse=False)
        index.register_tokenizer(TOKENIZER, _analyzer())
        return index

    def _open(self, name: str) -> Any:
        index = tantivy.Index.open(str(self.path / name))
        index.register_tokenizer(TOKENIZER, _analyzer())
        with self._ref_lock:
            self._name, self._index = name, index
        return index

    def _remove_old_dirs(self) -> None:
        for p in self.path.iterdir():
            if _INDEX_DIR.match(p.name) and p.name != self._name:
                shutil.rmtree(p, ignore_errors=True)

    # -- reading ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """See the latest commit (and a rebuild's swap, in another process)."""
        for _ in range(3):
            name = self._read_current()
            try:
                if name and name != self._name:
                    self._open(name)
                if self._index is not None:
                    self._index.reload()
                return
            except (OSError, ValueError):  # the directory vanished under us: a swap; read CURRENT again
                continue

    def _searcher(self) -> Any:
        self.reload()
        with self._ref_lock:
            index = self._index
        return None if index is None else index.searcher()

    def count(self) -> int:
        searcher = self._searcher()
        return 0 if searcher is None else int(searcher.num_docs)

    def _text_query(self, q: str) -> tuple[Any, list[str], list[tuple[str, int]]]:
        """The AND of every query word's alternatives; also the words to highlight."""
        schema = self.schema
        clauses = []
        words: list[str] = []
        fuzzy: list[tuple[str, int]] = []
        for term in tx.query_terms(q):
            alts = tx.alternatives(term)
            alts += [a for a in tx.fuzzy_aliases(term) if a not in alts]
            words += alts
            subs = [tantivy.Query.term_query(schema, "text", a) for a in alts]
            distance = tx.fuzzy_distance(term)
            if distance:
                subs.append(tantivy.Query.fuzzy_term_query(schema, "text", term, distance))
                fuzzy.append((term, distance))
            if tx.is_alnum(term) and len(term) >= 3:  # model numbers: M437 finds m437dn
                subs.append(tantivy.Query.regex_query(schema, "text", re.escape(term) + ".*"))
            if len(subs) == 1:
                clauses.append((tantivy.Occur.Must, subs[0]))
            else:
                clauses.append(
                    (
                        tantivy.Occur.Must,
                        tantivy.Query.boolean_query([(tantivy.Occur.Should, s) for s in subs]),
                    )
                )
        if not clauses:
            return None, [], []
        return tantivy.Query.boolean_query(clauses), words, fuzzy

    def _filters(self, query: SearchQuery) -> list[Any]:
        schema = self.schema
        out = []
        if query.category.strip():
            out.append(tantivy.Query.term_query(schema, "category_prefix", _code_prefix(query.category)))
        if query.brand.strip():
            out.append(tantivy.Query.term_query(schema, "brand", query.brand.strip()))
        if query.supplier.strip():
            out.append(tantivy.Query.term_query(schema, "supplier_id", query.supplier.strip()))
        if query.region.strip():
            out.append(tantivy.Query.term_query(schema, "region_prefix", _region_prefix(query.region)))
        lo = None if query.price_min is None else to_cents(Decimal(query.price_min))
        hi = None if query.price_max is None else to_cents(Decimal(query.price_max))
        if lo is not None or hi is not None:
            out.append(tantivy.Query.range_query(schema, "price_cents", tantivy.FieldType.Integer, lo, hi))
        if query.in_stock:
            out.append(tantivy.Query.range_query(schema, "stock", tantivy.FieldType.Integer, 1, None))
        if query.green:
            out.append(tantivy.Query.term_query(schema, "policy", "green"))
        if query.origin:
            out.append(tantivy.Query.term_query(schema, "policy", f"origin:{query.origin}"))
        return out

    def search(self, query: SearchQuery) -> SearchResult:
        if query.sort not in SORTS:
            raise ValueError(f"unknown sort {query.sort!r}; one of {', '.join(SORTS)}")
        per_page = min(max(int(query.per_page), 1), MAX_PER_PAGE)
        page = max(int(query.page), 1)
        searcher = self._searcher()
        if searcher is None:
            return SearchResult(total=0, hits=[], facets={})
        text_q, words, fuzzy = self._text_query(query.q)
        clauses = [] if text_q is None else [(tantivy.Occur.Must, text_q)]
        for f in self._filters(query):  # filters do not score
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0)))
        if not clauses:
            final = tantivy.Query.all_query()
        elif len(clauses) == 1 and text_q is not None:
            final = text_q
        else:
            final = tantivy.Query.boolean_query(clauses)

        sort = query.sort
        if sort == "relevance" and text_q is None:
            sort = "newest"  # no words, nothing to rank by: newest first
        offset = (page - 1) * per_page
        limit = max(0, min(per_page, MAX_WINDOW - offset))
        kwargs: dict[str, Any] = {"limit": max(limit, 1), "offset": min(offset, MAX_WINDOW), "count": True}
        if sort in _SORT_FIELDS:
            kwargs["order_by_field"], kwargs["order"] = _SORT_FIELDS[sort]
        result = searcher.search(final, **kwargs)

        hits = []
        for _key, address in result.hits[:limit]:
            d = searcher.doc(address).to_dict()
            title = _first(d, "title")
            hits.append(
                Hit(
                    id=_first(d, "id"),
                    title=title,
                    brand=_first(d, "brand"),
                    spec_model=_first(d, "spec_model"),
                    category_code=_first(d, "category_code"),
                    price=money_str(from_cents(int(_first(d, "price_cents", 0)))),
                    supplier_name=_first(d, "supplier_name"),
                    highlight=tx.highlight(title, words, fuzzy),
                )
            )
        facets = self._facets(searcher, final) if result.count else {}
        return SearchResult(total=int(result.count), hits=hits, facets=facets)

    def _facets(self, searcher: Any, query: Any) -> dict[str, dict[str, int]]:
        ranges = []
        for key, lo, hi in PRICE_BANDS:
            r: dict[str, Any] = {"key": key}
            if lo is not None:
                r["from"] = lo
            if hi is not None:
                r["to"] = hi
            ranges.append(r)
        agg = {
            "category": {"terms": {"field": "category4", "size": FACET_SIZE}},
            "brand": {"terms": {"field": "brand", "size": FACET_SIZE}},
            "supplier": {"terms": {"field": "supplier_id", "size": FACET_SIZE}},
            "price_band": {"range": {"field": "price_cents", "ranges": ranges}},
        }
        raw = searcher.aggregate(query, agg)
        facets: dict[str, dict[str, int]] = {}
        for name in ("category", "brand", "supplier", "price_band"):
            buckets = raw.get(name, {}).get("buckets", [])
            facets[name] = {str(b["key"]): int(b["doc_count"]) for b in buckets if int(b["doc_count"]) > 0}
        return facets

    # -- writing ---------------------------------------------------------------------------------
    def _require_writer(self) -> None:
        if not self.is_writer:
            raise RuntimeError("this search index was opened read-only (writer=False)")

    def _apply(self, docs: Iterable[ProductDocument], ids: Iterable[str]) -> None:
        with self._writing():
            self.reload()  # the index CURRENT names now (another process may have swapped)
            with self._ref_lock:
                index = self._index
            writer = index.writer(self.heap_bytes, 1)
            n = 0
            for doc_id in ids:
                writer.delete_documents_by_term("id", str(doc_id))
                n += 1
            for doc in docs:
                writer.delete_documents_by_term("id", doc.id)
                writer.add_document(_document(doc))
                n += 1
            if n:
                writer.commit()
            writer.wait_merging_threads()  # also releases tantivy's own lock on the index
            index.reload()

    def upsert(self, docs: Iterable[ProductDocument]) -> None:
        self._apply(list(docs), [])

    def delete(self, ids: Iterable[str]) -> None:
        self._apply([], list(ids))

    def rebuild(self, docs: Iterable[ProductDocument]) -> int:
        """Index everything into a fresh `index-<n+1>`, then swap CURRENT; searches (in this and other
        processes) answer from the old index until the swap, and writes go on landing in the old index
        while the new one is built. A second rebuild while one runs raises IndexBusy. Old index
        directories are removed after the swap."""
        self._require_writer()
        with self._flock("rebuild.lock", wait=False):
            with self._writing():
                name = self._next_dir_name()
                directory = self.path / name
                index = self._new_index(directory)
            try:
                writer = index.writer(max(self.heap_bytes, 128_000_000), 0)
                n = 0
                for doc in docs:
                    writer.add_document(_document(doc))
                    n += 1
                writer.commit()
                writer.wait_merging_threads()
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            with self._writing():
                self._write_current(name)
                self._open(name)
                self._index.reload()
                self._remove_old_dirs()
            return n

    def __enter__(self) -> EmbeddedBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing is held between writes; kept so callers can use the backend as a context manager."""
