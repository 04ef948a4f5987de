"""MALL_SEARCH_DIR: several processes with data directories of their own share one embedded index."""

from __future__ import annotations

from pathlib import Path

from mall.core.settings import load_settings
from search_index.factory import backend_for


def test_search_dir_defaults_to_the_data_dir(tmp_path: Path) -> None:
    s = load_settings({"MALL_DATA_DIR": str(tmp_path / "a")})
    assert s.resolved_search_dir == tmp_path / "a" / "search"


def test_search_dir_setting_is_used_by_the_embedded_backend(tmp_path: Path) -> None:
    shared = tmp_path / "shared-index"
    a = load_settings({"MALL_DATA_DIR": str(tmp_path / "a"), "MALL_SEARCH_DIR": str(shared)})
    b = load_settings({"MALL_DATA_DIR": str(tmp_path / "b"), "MALL_SEARCH_DIR": str(shared)})
    assert a.resolved_search_dir == b.resolved_search_dir == shared
    writer = backend_for(a, writer=True)
    assert writer.path == shared  # type: ignore[attr-defined]
    assert not (tmp_path / "a" / "search").exists()
    assert backend_for(b).path == shared  # type: ignore[attr-defined]
