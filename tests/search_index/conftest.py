"""Search backends under test: every backend in BACKENDS runs the same behavioural suite.

To add a backend (e.g. Meilisearch), add a factory `(tmp_path) -> (backend, cleanup)` to BACKENDS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _embedded(tmp_path: Path) -> tuple[Any, Callable[[], None]]:
    from search_index.embedded import EmbeddedBackend

    backend = EmbeddedBackend(tmp_path / "search", writer=True, heap_bytes=15_000_000)
    return backend, backend.close


def _meili(tmp_path: Path) -> tuple[Any, Callable[[], None]]:
    """A real Meilisearch server, when MEILI_URL names one: a fresh index per test, deleted after."""
    import uuid

    import httpx

    from search_index.meili import MeiliBackend

    url, key = os.environ["MEILI_URL"], os.environ.get("MEILI_KEY", "")
    uid = f"test_{uuid.uuid4().hex[:12]}"
    backend = MeiliBackend(url, key, index=uid)

    def cleanup() -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        httpx.delete(f"{url.rstrip('/')}/indexes/{uid}", headers=headers, timeout=10)

    return backend, cleanup


BACKENDS: dict[str, Callable[[Path], tuple[Any, Callable[[], None]]]] = {
    "embedded": _embedded,
}
if os.environ.get("MEILI_URL"):
    # Without a server the adapter's requests are checked in test_meili_requests.py instead.
    BACKENDS["meilisearch"] = _meili


@pytest.fixture(params=sorted(BACKENDS))
def empty_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    backend, cleanup = BACKENDS[request.param](tmp_path)
    try:
        yield backend
    finally:
        cleanup()
