"""Build the project's clean table of the 2022 政府采购品目分类目录 (government procurement item catalogue).

Usage (from the repository root)::

    python -m catalog.build_categories \\
        --pdf  /work/shared/data/procurement-catalog-2022/source.pdf \\
        --json /work/shared/data/procurement-catalog-2022/catalogs-full.json \\
        --out  catalog/data/categories-2022.csv

Build-time dependency: ``pdfplumber`` (which pulls in ``pdfminer.six``). It is *not* a runtime
dependency of the mall; install it into a throw-away venv, e.g.
``python3 -m venv /tmp/catvenv && /tmp/catvenv/bin/pip install pdfplumber`` and run the command
above with ``/tmp/catvenv/bin/python``. Everything else is the standard library.

How the table is built
----------------------
1. Read the third party's JSON extraction (``catalogs-full.json``). Its code/level/parent/type
   columns are usable, but many names have text of the 说明 (description) column glued on, a few
   names are truncated or replaced by a description fragment, and some codes are missing.
2. Read the official PDF's three-column table (编码 / 品目名称 / 说明) with pdfplumber's table
   extraction. The 品目名称 cell is the authority for a name: its line breaks are joined, and blanks
   between two Chinese characters (justification artefacts) are removed; blanks next to Latin
   letters are kept as printed (``KVM 设备``). A name cell that continues on the next page (a row
   with no code) is appended to the previous code's name.
3. Cross-check the PDF table against the PDF's plain page text (every code line must start with
   the code followed by the name), against the table of contents (level-1 names) and against the
   number of 门类 stated in the 说明 (8 goods, 10 engineering, 25 service categories).
4. Merge: every JSON code is kept and its name is taken from the PDF (the kind of repair is
   counted); codes printed in the PDF but absent from the JSON are added; level, parent_code and
   type are derived from the code shape and compared with the JSON's values.
5. Validate the result (unique codes, every parent present, level/shape agreement, no description
   residue in names) and write a UTF-8 CSV sorted by code:
   ``code,name,parent_code,level,type,version``.

Code shape: ``A``/``B``/``C`` is level 0; then ``X`` + 2 digits per level, zero-padded to 8 digits:
``A02000000`` (1) → ``A02010000`` (2) → ``A02010100`` (3) → ``A02010105`` (4).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = "2022"
KNOWN_PDF_SHA256 = "59483df358db0bb6e9d705bfae4aa14eba81ef0ff4b255e1d7b03e4511be9b43"
TYPES = {"A": "goods", "B": "engineering", "C": "service"}
TOP_NAMES = {"A": "货物", "B": "工程", "C": "服务"}
# Number of 门类 (level-1 categories) the catalogue's own 说明 announces, by letter.
STATED_RE = {
    "A": re.compile(r"货物类品目共\s*(\d+)\s*个门类"),
    "B": re.compile(r"工程类品目共\s*(\d+)\s*个门类"),
    "C": re.compile(r"服务类品目共\s*(\d+)\s*个门类"),
}
CODE_RE = re.compile(r"[ABC](\d{8})?")
CJK = r"[\u2e80-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
CJK_GAP_RE = re.compile(rf"(?<={CJK})\s+(?={CJK})")
TOC_RE = re.compile(r"^([ABC](?:\d{8})?)\s*(.+?)\s*\.{3,}\s*\d+\s*$")
MAX_NAME_LEN = 40
# Characters that only occur in the 说明 column; a name containing one is description residue.
RESIDUE_RE = re.compile(r"——|：|。|；|^包括")


# --------------------------------------------------------------------------- code shape


def level_of(code: str) -> int:
    """Level implied by the code shape (0 for the letters A/B/C, else 1..4)."""
    if not CODE_RE.fullmatch(code):
        raise ValueError(f"not a catalogue code: {code!r}")
    if len(code) == 1:
        return 0
    digits = code[1:]
    if digits[2:] == "000000":
        return 1
    if digits[4:] == "0000":
        return 2
    if digits[6:] == "00":
        return 3
    return 4


def parent_of(code: str) -> str | None:
    """Parent implied by the code shape (None for the letters A/B/C)."""
    level = level_of(code)
    if level == 0:
        return None
    if level == 1:
        return code[0]
    keep = 1 + 2 * (level - 1)
    return code[:keep] + "0" * (9 - keep)


def normalize_name(raw: str) -> str:
    """Join wrapped lines of a name cell and drop blanks between two Chinese characters."""
    text = re.sub(r"\s*\n\s*", "\n", raw.strip())
    # A line break between two Latin letters/digits would need a blank; none occurs in the 2022
    # catalogue, but keep the words apart if it ever does.
    text = re.sub(r"(?<=[A-Za-z0-9])\n(?=[A-Za-z0-9])", " ", text)
    text = text.replace("\n", "")
    text = CJK_GAP_RE.sub("", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --------------------------------------------------------------------------- PDF


@dataclass
class PdfCatalogue:
    names: dict[str, str] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    page_texts: list[str] = field(default_factory=list)
    continued_names: list[str] = field(default_factory=list)
    # The raw lines of each 品目名称 cell (including a continuation on the next page).
    cell_lines: dict[str, list[str]] = field(default_factory=dict)


def _is_header(row: list[str | None]) -> bool:
    return len(row) >= 2 and squash(row[0] or "") == "编码" and squash(row[1] or "") == "品目名称"


def read_pdf(pdf_path: Path) -> PdfCatalogue:
    try:
        pdfplumber: Any = importlib.import_module("pdfplumber")
    except ModuleNotFoundError:
        sys.exit(
            "build_categories needs pdfplumber (build-time only): "
            "python3 -m venv /tmp/catvenv && /tmp/catvenv/bin/pip install pdfplumber"
        )
    cat = PdfCatalogue()
    raw_names: dict[str, str] = {}
    last_code: str | None = None
    with pdfplumber.open(str(pdf_path)) as pdf:
        for page_no, page in enumerate(pdf.pages, start=1):
            cat.page_texts.append(page.extract_text() or "")
            for table in page.extract_tables():
                if not table or not _is_header(table[0]):
                    continue
                for row in table[1:]:
                    cells = [(c or "") for c in row] + ["", "", ""]
                    code, name = squash(cells[0]), cells[1]
                    if not code:
                        # A 品目名称 cell broken by a page break continues in a code-less row
                        # (a code-less row with only 说明 text is a description continuation).
                        if name.strip() and last_code is not None:
                            raw_names[last_code] += "\n" + name
                            cat.continued_names.append(last_code)
                        continue
                    if not CODE_RE.fullmatch(code):
                        raise SystemExit(f"page {page_no}: unexpected code cell {cells[0]!r}")
                    if code in raw_names:
                        raise SystemExit(f"page {page_no}: code {code} printed twice")
                    raw_names[code] = name
                    cat.pages[code] = page_no
                    last_code = code
    cat.names = {code: normalize_name(raw) for code, raw in raw_names.items()}
    cat.cell_lines = {code: raw.splitlines() for code, raw in raw_names.items()}
    return cat


def check_pdf(cat: PdfCatalogue) -> list[str]:
    """Cross-check the table extraction against the plain page text; return problems found."""
    problems: list[str] = []
    empty = [c for c, n in cat.names.items() if not n]
    problems += [f"{c}: empty name in the PDF table" for c in empty]

    # 1. The codes printed at the start of a line of the plain page text are exactly the table's
    #    codes, and every line of each name cell shows up next to its code (the name cell is
    #    vertically centred, so a wrapped name straddles the code's line; the 说明 text of the
    #    same row is interleaved on those lines, hence the substring test).
    first_page = min(cat.pages.values(), default=1)
    seen: dict[str, tuple[int, int]] = {}
    page_lines = [text.splitlines() for text in cat.page_texts]
    for page_no, lines in enumerate(page_lines, start=1):
        if page_no < first_page:
            continue
        for i, line in enumerate(lines):
            m = re.match(r"([ABC](?:\d{8})?)(?:\s|$)", line)
            if m:
                seen.setdefault(m.group(1), (page_no, i))
    for code in sorted(set(seen) - set(cat.names)):
        problems.append(f"{code}: code in the page text but not in the table")
    for code in sorted(set(cat.names) - set(seen)):
        problems.append(f"{code}: code in the table but not in the page text")
    for code, pieces in cat.cell_lines.items():
        if code not in seen:
            continue
        page_no, i = seen[code]
        lines = page_lines[page_no - 1]
        window = squash("".join(lines[max(0, i - 3) : i + 4]))
        if code in cat.continued_names and page_no < len(page_lines):
            window += squash("".join(page_lines[page_no][:4]))
        rest = squash(lines[i][len(code) :])
        if len(pieces) == 1 and rest and not rest.startswith(squash(pieces[0])):
            # A one-line name sits on the code's own line, right after the code.
            problems.append(f"{code}: table name {pieces[0]!r} does not follow the code ({rest[:30]!r})")
        for piece in pieces:
            if squash(piece) and squash(piece) not in window:
                problems.append(f"{code}: name piece {piece!r} not found near the code in the page text")

    # 2. Table of contents (level-1 names).
    for text in cat.page_texts[:12]:
        for line in text.splitlines():
            m = TOC_RE.match(line.strip())
            if m:
                code, name = m.group(1), normalize_name(m.group(2))
                if cat.names.get(code) != name:
                    problems.append(f"{code}: contents says {name!r}, table says {cat.names.get(code)!r}")

    # 3. Number of 门类 announced in the 说明.
    preface = "".join(cat.page_texts[:10]).replace("\n", "")
    for letter, rx in STATED_RE.items():
        m = rx.search(preface)
        found = sum(1 for c in cat.names if c[0] == letter and level_of(c) == 1)
        if m is None:
            problems.append(f"{letter}: could not find the stated number of 门类 in the 说明")
        elif int(m.group(1)) != found:
            problems.append(f"{letter}: 说明 states {m.group(1)} 门类, table has {found}")
    return problems


# --------------------------------------------------------------------------- JSON + merge


@dataclass
class Row:
    code: str
    name: str
    parent_code: str | None
    level: int
    type: str


def read_json(json_path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(json_path.read_text(encoding="utf-8"))
    entries: list[dict[str, Any]] = data["entries"] if isinstance(data, dict) else data
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        code = str(e["catalog_code"]).strip()
        if code in out:
            raise SystemExit(f"JSON: duplicate code {code}")
        out[code] = e
    return out


def classify_name_fix(json_name: str, pdf_name: str) -> str | None:
    """Kind of repair needed to turn the JSON's name into the PDF's (None if none)."""
    if json_name == pdf_name:
        return None
    j, p = squash(json_name), squash(pdf_name)
    if j == p:
        return "name_whitespace"
    if j.startswith(p):
        return "name_glued_description_removed"
    if p.startswith(j):
        return "name_truncated_completed"
    return "name_replaced_description_fragment"


def merge(
    js: dict[str, dict[str, Any]], pdf: PdfCatalogue
) -> tuple[list[Row], Counter[str], dict[str, list[str]]]:
    fixes: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}

    def note(kind: str, detail: str) -> None:
        fixes[kind] += 1
        examples.setdefault(kind, [])
        if len(examples[kind]) < 3:
            examples[kind].append(detail)

    names = dict(pdf.names)
    for letter, name in TOP_NAMES.items():
        names.setdefault(letter, name)

    rows: dict[str, Row] = {}
    unresolved: list[str] = []
    for code, e in js.items():
        if not CODE_RE.fullmatch(code):
            unresolved.append(f"{code}: malformed code in JSON")
            continue
        if code not in names:
            unresolved.append(f"{code}: in JSON but not in the PDF (dropped)")
            continue
        json_name = str(e.get("catalog_name") or "")
        kind = classify_name_fix(json_name, names[code])
        if kind:
            note(kind, f"{code}: {json_name!r} -> {names[code]!r}")
        if e.get("extraction_status") == "parsed_partial_desc":
            fixes["json_flagged_parsed_partial_desc"] += 1
        level, parent, typ = level_of(code), parent_of(code), TYPES[code[0]]
        if e.get("level") != level:
            note("level_corrected", f"{code}: {e.get('level')} -> {level}")
        if (e.get("parent_code") or None) != parent:
            note("parent_corrected", f"{code}: {e.get('parent_code')} -> {parent}")
        if e.get("category_type") != typ:
            note("type_corrected", f"{code}: {e.get('category_type')} -> {typ}")
        rows[code] = Row(code, names[code], parent, level, typ)

    json_parents = {str(e.get("parent_code")) for e in js.values() if e.get("parent_code")}
    for code in sorted(set(names) - set(rows)):
        rows[code] = Row(code, names[code], parent_of(code), level_of(code), TYPES[code[0]])
        note("code_added_from_pdf", f"{code} {names[code]} (PDF p.{pdf.pages.get(code, '?')})")
        if code in json_parents:
            note("dangling_parent_resolved", code)
    if unresolved:
        raise SystemExit("unresolved:\n  " + "\n  ".join(unresolved))
    return [rows[c] for c in sorted(rows)], fixes, examples


def validate(rows: list[Row]) -> list[str]:
    problems: list[str] = []
    codes = [r.code for r in rows]
    dup = [c for c, n in Counter(codes).items() if n > 1]
    problems += [f"{c}: duplicate" for c in dup]
    have = set(codes)
    for r in rows:
        if r.level != level_of(r.code):
            problems.append(f"{r.code}: level {r.level} disagrees with the code shape")
        if r.parent_code is not None and r.parent_code not in have:
            problems.append(f"{r.code}: parent {r.parent_code} missing")
        if (r.parent_code is None) != (r.level == 0):
            problems.append(f"{r.code}: parent/level inconsistent")
        if not r.name or len(r.name) > MAX_NAME_LEN or RESIDUE_RE.search(r.name):
            problems.append(f"{r.code}: suspicious name {r.name!r}")
        if r.type != TYPES[r.code[0]]:
            problems.append(f"{r.code}: type {r.type}")
    return problems


def write_csv(rows: list[Row], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "name", "parent_code", "level", "type", "version"])
        for r in rows:
            w.writerow([r.code, r.name, r.parent_code or "", r.level, r.type, VERSION])
    tmp.replace(out)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m catalog.build_categories",
        description="Build the clean 2022 procurement catalogue table.",
    )
    ap.add_argument("--pdf", type=Path, required=True, help="the official catalogue PDF (source.pdf)")
    ap.add_argument(
        "--json", type=Path, required=True, help="the third-party extraction (catalogs-full.json)"
    )
    ap.add_argument("--out", type=Path, required=True, help="CSV to write (catalog/data/categories-2022.csv)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print examples of every kind of fix")
    args = ap.parse_args(argv)

    started = time.monotonic()
    digest = hashlib.sha256(args.pdf.read_bytes()).hexdigest()
    if digest != KNOWN_PDF_SHA256:
        print(f"warning: {args.pdf} sha256 {digest} is not the known 2022 source.pdf", file=sys.stderr)

    js = read_json(args.json)
    pdf = read_pdf(args.pdf)
    pdf_problems = check_pdf(pdf)
    if pdf_problems:
        print("PDF cross-checks failed:\n  " + "\n  ".join(pdf_problems), file=sys.stderr)
        return 1

    rows, fixes, examples = merge(js, pdf)
    problems = validate(rows)
    if problems:
        print("validation failed:\n  " + "\n  ".join(problems[:50]), file=sys.stderr)
        return 1
    write_csv(rows, args.out)

    by_level = Counter(r.level for r in rows)
    by_type = Counter(r.type for r in rows)
    print(f"JSON entries: {len(js)}; PDF table codes: {len(pdf.names)} (incl. the A/B/C level-0 rows)")
    print(
        f"PDF cross-checks passed (page text, contents, stated 门类 counts); "
        f"{len(pdf.continued_names)} name(s) continued across a page break"
    )
    print("fixes:")
    for kind in sorted(fixes):
        print(f"  {kind:40s} {fixes[kind]:5d}")
        if args.verbose:
            for ex in examples.get(kind, []):
                print(f"      e.g. {ex}")
    print(
        f"wrote {len(rows)} rows to {args.out} "
        f"(levels {dict(sorted(by_level.items()))}, types {dict(sorted(by_type.items()))}) "
        f"in {time.monotonic() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
