"""Search backends under test: every backend in BACKENDS runs the same behavioural suite.

To add a backend (e.g. Meilisearch), add a factory `(tmp_path) -> (backend, cleanup)` to BACKENDS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _embedded(tmp_path: Path) -> tuple[Any, Callable[[], None]]:
    from search_index.embedded import EmbeddedBackend

    backend = EmbeddedBackend(tmp_path / "search", writer=True, heap_bytes=15_000_000)
    return backend, backend.close


BACKENDS: dict[str, Callable[[Path], tuple[Any, Callable[[], None]]]] = {
    "embedded": _embedded,
}


@pytest.fixture(params=sorted(BACKENDS))
def empty_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    backend, cleanup = BACKENDS[request.param](tmp_path)
    try:
        yield backend
    finally:
        cleanup()
