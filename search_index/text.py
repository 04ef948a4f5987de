"""Chinese text handling shared by the search backends.

- `normalize`: full-width → half-width and lowercase, one character in, one character out (so offsets in
  the normalized text are offsets in the original, which the highlighter relies on).
- `index_tokens`: jieba search-mode segmentation (`cut_for_search`, HMM off so that indexing and querying
  segment the same way) of normalized text; punctuation and spaces dropped.
- `query_terms`: jieba precise-mode segmentation of a query; each term is one AND clause of the query.
- `alternatives`: a term and its synonyms / brand aliases (OR within a term).
- `highlight`: a title HTML-escaped with the matched words wrapped in `<em>…</em>`.

The synonym groups and brand aliases are settings in code; every word of them is added to jieba's
dictionary so that e.g. 台式电脑 stays one token.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import warnings
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("台式电脑", "台式机", "台式计算机"),
    ("笔记本", "笔记本电脑", "便携式计算机", "便携机"),
    ("打印机", "打印设备"),
    ("一体机", "多功能一体机"),
    ("显示器", "液晶显示器"),
    ("空调", "空调机"),
    ("复印纸", "a4纸"),
    ("办公椅", "椅子"),
    ("服务器", "伺服器"),
)

# Chinese brand name → Latin spellings (lowercase).
BRAND_ALIASES: dict[str, tuple[str, ...]] = {
    "联想": ("lenovo",),
    "惠普": ("hp",),
    "戴尔": ("dell",),
    "华为": ("huawei",),
    "佳能": ("canon",),
    "兄弟": ("brother",),
    "爱普生": ("epson",),
    "格力": ("gree",),
    "美的": ("midea",),
    "海尔": ("haier",),
}

EXTRA_WORDS = ("台式", "喷墨", "激光", "黑白", "彩色")


def _build_groups() -> dict[str, frozenset[str]]:
    groups: dict[str, frozenset[str]] = {}
    all_groups = [frozenset(g) for g in SYNONYM_GROUPS]
    all_groups += [frozenset((cn, *latin)) for cn, latin in BRAND_ALIASES.items()]
    for g in all_groups:
        for word in g:
            groups[word] = groups.get(word, frozenset()) | g
    return groups


_GROUPS = _build_groups()
LATIN_ALIASES: dict[str, str] = {latin: cn for cn, names in BRAND_ALIASES.items() for latin in names}

_jieba: Any = None
_jieba_lock = threading.Lock()


def _segmenter() -> Any:
    """jieba, loaded once, quietly (no stderr chatter, no warnings) and taught the domain words."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # pkg_resources deprecation on some setuptools
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    jieba.initialize()
                for word in [*_GROUPS, *EXTRA_WORDS]:
                    jieba.add_word(word, freq=200_000)
                _jieba = jieba
    return _jieba


def warm_up() -> None:
    """Load the dictionary now (a second or so) rather than on the first search."""
    _segmenter()


_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def normalize(text: str) -> str:
    """Full-width ASCII → half-width, ideographic space → space, lowercase. Length-preserving."""
    half = text.translate(_FULLWIDTH)
    low = half.lower()
    if len(low) == len(half):
        return low
    # a few characters grow when lowercased (e.g. "İ"): keep those as they are
    return "".join(lc if len(lc) == 1 else ch for ch in half for lc in (ch.lower(),))


_LATIN_RUN = re.compile(r"[0-9a-z]+")
_MIXED_PARTS = re.compile(r"[0-9a-z]+|[\u3400-\u9fff]+")
_WORDY = re.compile(r"[0-9a-z\u3400-\u9fff]")
_LATIN = re.compile(r"^[a-z]+$")
_ALNUM = re.compile(r"^[0-9a-z]+$")


def _keep(token: str) -> bool:
    return bool(_WORDY.search(token))


def index_tokens(text: str) -> list[str]:
    """Search-mode tokens of normalized text (overlapping sub-words included), punctuation dropped.
    jieba never joins across whitespace, so each whitespace-separated piece is cut on its own and
    remembered: catalogue titles repeat their pieces (brands, series, 台式计算机, i5-12500…) a lot."""
    out: list[str] = []
    for piece in normalize(text).split():
        out.extend(_piece_tokens(piece))
    return out


@lru_cache(maxsize=200_000)
def _piece_tokens(piece: str) -> tuple[str, ...]:
    jieba = _segmenter()
    out: list[str] = []
    for t in jieba.cut_for_search(piece, HMM=False):
        if not _keep(t) or t.isspace():
            continue
        out.append(t)
        if _LATIN_RUN.search(t) and not _ALNUM.match(t):  # "a4纸" also yields "a4" and "纸"
            out.extend(p for p in _MIXED_PARTS.findall(t) if p != t)
    return tuple(out)


def document_tokens(*texts: str) -> list[str]:
    """Index tokens of several fields, plus the Latin / Chinese aliases of any brand word among them."""
    tokens: list[str] = []
    for text in texts:
        tokens.extend(index_tokens(text))
    extra: list[str] = []
    for t in tokens:
        if t in BRAND_ALIASES:
            extra.extend(BRAND_ALIASES[t])
        elif t in LATIN_ALIASES:
            extra.append(LATIN_ALIASES[t])
    return tokens + extra


def query_terms(q: str) -> list[str]:
    """Precise-mode segmentation of a query: the AND clauses (duplicates removed, order kept)."""
    jieba = _segmenter()
    seen: dict[str, None] = {}
    for t in jieba.cut(normalize(q), HMM=False):
        t = t.strip()
        if t and _keep(t):
            seen.setdefault(t, None)
    return list(seen)


def alternatives(term: str) -> list[str]:
    """The term and its synonyms / brand aliases, the term first."""
    return [term, *sorted(_GROUPS.get(term, frozenset()) - {term})]


def is_latin_word(term: str) -> bool:
    return bool(_LATIN.match(term))


def is_alnum(term: str) -> bool:
    return bool(_ALNUM.match(term))


def fuzzy_distance(term: str) -> int:
    """Typo tolerance for Latin words: 0 below 4 letters, 1 from 4, 2 from 8."""
    if not is_latin_word(term) or len(term) < 4:
        return 0
    return 2 if len(term) >= 8 else 1


@lru_cache(maxsize=4096)
def edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, transpositions cost 1 like tantivy's."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def fuzzy_aliases(term: str) -> list[str]:
    """Brand words a misspelt Latin term stands for: `lenvo` → lenovo, 联想."""
    d = fuzzy_distance(term)
    if not d:
        return []
    out: list[str] = []
    for latin, cn in LATIN_ALIASES.items():
        if latin != term and edit_distance(term, latin) <= d:
            out.extend((latin, cn))
    return out


def highlight(title: str, words: Iterable[str], fuzzy: Iterable[tuple[str, int]] = ()) -> str:
    """The title, HTML-escaped, with every occurrence of `words` (normalized, case-insensitive) and every
    Latin run within edit distance of a `fuzzy` (term, distance) pair wrapped in <em>…</em>."""
    norm = normalize(title)
    spans: list[tuple[int, int]] = []
    for w in {normalize(w) for w in words if w}:
        latin = bool(_ALNUM.match(w))
        start = norm.find(w)
        while start >= 0:
            end = start + len(w)
            # a Latin word matches at word starts only (m437 in m437dn, not hp in chp)
            if not latin or start == 0 or not norm[start - 1].isascii() or not norm[start - 1].isalnum():
                spans.append((start, end))
            start = norm.find(w, start + 1)
    fuzzy = list(fuzzy)
    if fuzzy:
        for m in _LATIN_RUN.finditer(norm):
            if any(edit_distance(m.group(), t) <= d for t, d in fuzzy):
                spans.append(m.span())
    if not spans:
        return html.escape(title)
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out.append(html.escape(title[pos:s]))
        out.append(f"<em>{html.escape(title[s:e])}</em>")
        pos = e
    out.append(html.escape(title[pos:]))
    return "".join(out)
