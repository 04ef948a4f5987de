"""Names of the request dependencies that handlers declare (provided in mall.app)."""

from __future__ import annotations

from litestar.di import NamedDependency

from mall.core.db import Database
from mall.core.settings import Settings
from search_index.backend import SearchBackend

DB = NamedDependency[Database]
Config = NamedDependency[Settings]
Search = NamedDependency[SearchBackend]
