"""Names of the request dependencies that handlers declare (provided by the app factory, mall.site.app)."""

from __future__ import annotations

from litestar.di import NamedDependency

from mall.core.db import Database
from mall.core.settings import Settings

DB = NamedDependency[Database]
Config = NamedDependency[Settings]
