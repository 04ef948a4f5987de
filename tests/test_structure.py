"""Rules of the code's structure that a linter does not know: statuses are written through their
enums, no module reaches into another module's private names, and a first-party import inside a
function says which cycle or start-up cost it avoids."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mall", "catalog", "bidding", "search_index", "workers")
FIRST_PARTY = PACKAGES


@functools.cache
def _parsed() -> tuple[tuple[Path, str, ast.Module], ...]:
    """Every module's path, source and syntax tree, read and parsed once for all the tests here."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:  # frozen history: a migration keeps the values of its day
                continue
            source = path.read_text(encoding="utf-8")
            found.append((path, source, ast.parse(source, filename=str(path))))
    return tuple(found)


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for path, _source, tree in _parsed():
        yield path, tree


def _is_text(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(_is_text(e) for e in node.elts)


def _is_status(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "status"


def status_literals(tree: ast.Module) -> Iterator[int]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Compare)
            and _is_status(node.left)
            and any(_is_text(c) for c in node.comparators)
        ):
            yield node.lineno
        elif isinstance(node, ast.Call):
            func = node.func
            in_list = (
                isinstance(func, ast.Attribute) and func.attr in ("in_", "not_in") and _is_status(func.value)
            )
            if in_list and any(_is_text(a) for a in node.args):
                yield node.lineno
            for kw in node.keywords:
                if kw.arg == "status" and _is_text(kw.value):
                    yield kw.value.lineno
        elif (
            isinstance(node, ast.Assign) and any(_is_status(t) for t in node.targets) and _is_text(node.value)
        ):
            yield node.lineno


def test_no_status_is_written_as_a_bare_string() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path, tree in modules()
        for line in status_literals(tree)
        # Statuses of other systems' protocols: OCDS release statuses (the standard's codelist) and
        # Meilisearch task statuses.
        if path.name not in ("ocds.py", "meili.py")
    ]
    assert not found, "status literals outside their enum:\n" + "\n".join(found)


def test_the_scan_finds_what_it_looks_for() -> None:
    tree = ast.parse(
        'a = x.status == "live"\nb = q.where(T.status.in_(("a",)))\nf(status="done")\no.status = "paused"\n'
        'c = x.status in ("a", "b")\n'
    )
    assert sorted(status_literals(tree)) == [1, 2, 3, 4, 5]


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FIRST_PARTY:
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert not found, "\n".join(found)


def _is_first_party(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in FIRST_PARTY
    return any(alias.name.split(".")[0] in FIRST_PARTY for alias in node.names)


def unexplained_local_imports(name: str, source: str, tree: ast.Module | None = None) -> Iterator[str]:
    """First-party imports inside functions with no comment saying why: a comment on the import's line,
    or on the line above the block of imports it belongs to (imports and blank lines between)."""
    lines = source.splitlines()
    for fn in ast.walk(tree or ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or not _is_first_party(node):
                continue
            n = node.lineno - 1
            if "#" in lines[n]:
                continue
            above = n - 1
            while above >= 0 and (
                not lines[above].strip() or lines[above].strip().startswith(("import ", "from "))
            ):
                above -= 1
            if above >= 0 and lines[above].strip().startswith("#"):
                continue
            yield f"{name}:{node.lineno} {lines[n].strip()}"


def test_a_first_party_import_inside_a_function_says_which_cycle_or_start_up_cost_it_avoids() -> None:
    found = [
        line
        for path, source, tree in _parsed()
        for line in unexplained_local_imports(str(path.relative_to(ROOT)), source, tree)
    ]
    assert not found, "\n".join(found)


def test_the_local_import_scan_finds_what_it_looks_for() -> None:
    source = (
        "import json\n\n"
        "def f():\n    from mall.core import clock\n\n"
        "def g():\n    # start-up: the search engine\n    import json\n    from search_index import sync\n\n"
        "def h():\n    import json\n    from . import sibling  # cycle: sibling imports this module\n"
    )
    assert list(unexplained_local_imports("x.py", source)) == ["x.py:4 from mall.core import clock"]
