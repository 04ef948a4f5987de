"""Names of the request dependencies that handlers declare (provided by the app factory, mall.site.app).

A handler names what it needs as a parameter: `db: DB`, `settings: Config`, and the caller as
`me: Me` (a logged-in user: every route whose access rule is not public) or `viewer: Viewer` (a
page that anonymous visitors may also see: None for them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect, Template

from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.settings import Settings
from mall.web import helpers

DB = NamedDependency[Database]
Config = NamedDependency[Settings]
Me = NamedDependency[Principal]
Viewer = NamedDependency[Principal | None]


@dataclass(frozen=True)
class Call:
    """A page handler's caller in one parameter: the request (for its session, messages and form),
    the logged-in user, the database and the settings."""

    request: Request[Any, Any, Any]
    me: Principal
    db: Database
    settings: Settings

    async def act(
        self, action: Callable[[], Awaitable[Any]], ok: str | Callable[[Any], str], back: str, **kw: Any
    ) -> Redirect:
        """A page form's action for this caller: `mall.web.helpers.act` (`keep`, `to`)."""
        return await helpers.act(self.request, action, ok, back, **kw)

    def render(self, name: str, status_code: int = 200, **ctx: Any) -> Template:
        """A page for this caller (`mall.web.helpers.render`)."""
        return helpers.render(self.request, name, status_code, **ctx)


# A handler that acts for a logged-in user may take all of its call as `call: UserCall`.
UserCall = NamedDependency[Call]


def _me(request: Request[Any, Any, Any]) -> Principal:
    user: Principal | None = request.scope.get("user")
    if user is None:  # the access guard already refused: a route that forgot its rule stays closed
        raise NotAuthorizedException("login required")
    return user


def _viewer(request: Request[Any, Any, Any]) -> Principal | None:
    user: Principal | None = request.scope.get("user")
    return user


def _call(request: Request[Any, Any, Any], me: Me, db: DB, settings: Config) -> Call:
    return Call(request, me, db, settings)


CALLER = {
    "me": Provide(_me, sync_to_thread=False),
    "call": Provide(_call, sync_to_thread=False),
    "viewer": Provide(_viewer, sync_to_thread=False),
}
