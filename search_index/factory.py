"""Which search backend the settings name: Meilisearch when MEILI_URL is set, else the embedded index."""

from __future__ import annotations

from mall.core.settings import Settings
from search_index.backend import SearchBackend


def backend_for(settings: Settings, *, writer: bool = False) -> SearchBackend:
    if settings.meili_url:
        from search_index.meili import MeiliBackend  # start-up: only the backend in use is loaded

        return MeiliBackend(settings.meili_url, settings.meili_key, index=settings.meili_index)
    from search_index.embedded import EmbeddedBackend  # start-up: tantivy only where it is used

    return EmbeddedBackend(settings.resolved_search_dir, writer=writer)
