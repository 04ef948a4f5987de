"""Rules of the code's structure that a linter does not know: statuses are written through their
enums, and no module reaches into another module's private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mall", "catalog", "bidding", "search_index", "workers")
FIRST_PARTY = PACKAGES


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:  # frozen history: a migration keeps the values of its day
                continue
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


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
