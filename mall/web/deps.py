"""Names of the request dependencies that handlers declare (provided by the app factory, mall.site.app).

A handler names what it needs as a parameter: `db: DB`, `settings: Config`, and the caller as
`me: Me` (a logged-in user: every route whose access rule is not public) or `viewer: Viewer` (a
page that anonymous visitors may also see: None for them)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException

from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.settings import Settings

DB = NamedDependency[Database]
Config = NamedDependency[Settings]
Me = NamedDependency[Principal]
Viewer = NamedDependency[Principal | None]


def _me(request: Request[Any, Any, Any]) -> Principal:
    user: Principal | None = request.scope.get("user")
    if user is None:  # the access guard already refused: a route that forgot its rule stays closed
        raise NotAuthorizedException("login required")
    return user


def _viewer(request: Request[Any, Any, Any]) -> Principal | None:
    user: Principal | None = request.scope.get("user")
    return user


CALLER = {
    "me": Provide(_me, sync_to_thread=False),
    "viewer": Provide(_viewer, sync_to_thread=False),
}
