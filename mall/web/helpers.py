"""What the routes and pages of every area share: who is asking, form actions, messages, paging."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any
from urllib.parse import urlparse

from litestar import Controller, Request, Response
from litestar.handlers import BaseRouteHandler
from litestar.params import HeaderParameter, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from mall.core import fields
from mall.core.auth import Principal
from mall.core.errors import DomainError, InvalidInput
from mall.core.guards import ENROL_PAGE, PASSWORD_PAGE, EnrolmentRequired, PasswordChangeRequired

PageNo = Annotated[int, QueryParameter(ge=1, le=100000)]
PerPage = Annotated[int, QueryParameter(ge=1, le=100)]
IdemKey = Annotated[str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)]
AnyRequest = Request[Any, Any, Any]
Form = URLEncodedBody[dict[str, str]]  # a page form's fields, decoded into its Struct inside the action


def current_user(request: AnyRequest) -> Principal | None:
    """Who is looking at a page; None for an anonymous visitor."""
    user: Principal | None = request.scope.get("user")
    return user


def flash(request: AnyRequest, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", [])
    request.session["flash"] = [*request.session["flash"], [kind, message]][-3:]


def render(request: AnyRequest, name: str, status_code: int = 200, **ctx: Any) -> Template:
    try:
        messages = request.session.pop("flash", []) if request.session else []
    except Exception:  # no session in scope (e.g. a path no route matched)
        messages = []
    return Template(
        template_name=name,
        context={
            "me": current_user(request),
            "messages": messages,
            "request": request,
            "path": request.url.path,
            **ctx,
        },
        status_code=status_code,
    )


def error_page(
    request: AnyRequest,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    if code == EnrolmentRequired.code and request.method == "GET":
        # Sent to enrol a second factor before anything else (MALL_REQUIRE_TOTP).
        return Redirect(ENROL_PAGE, status_code=303)
    if code == PasswordChangeRequired.code and request.method == "GET":
        # A password the system administrator reset: to the account page to change it first.
        return Redirect(PASSWORD_PAGE, status_code=303)
    try:
        back = came_from(request, "")
        back = "" if back == request.url.path else back  # never back to the page that failed
        page = render(request, "error.html", status_code=status, code=code, detail=detail, back=back)
        page.headers.update(headers or {})
        return page
    except Exception:
        return Response(f"{status} {detail}", status_code=status, media_type="text/plain", headers=headers)


def came_from(request: AnyRequest, fallback: str) -> str:
    """The page of this site the request came from (its Referer), else `fallback`."""
    ref = request.headers.get("referer", "")
    parsed = urlparse(ref)
    if parsed.path.startswith("/") and (not parsed.netloc or parsed.netloc == request.url.netloc):
        return parsed.path + (f"?{parsed.query}" if parsed.query else "")
    return fallback


# Sessions are cookies: what a refused form keeps must stay small. No field may be longer than this,
# so a longer value is not kept (the page shows the message; the browser's field limit stops it anyway).
FORM_KEEP_MAX = fields.DESCRIPTION_MAX
NEVER_KEPT = {"_csrf_token", "password", "current_password", "new_password", "new_password2"}


def keep_form(request: AnyRequest, values: Mapping[str, str], *, omit: Iterable[str] = ()) -> None:
    """Keep what was typed into a refused form, to fill it in again (`pop_form`): never passwords or
    the CSRF token, nor a value longer than any field may be."""
    left_out = NEVER_KEPT | set(omit)
    request.session["form"] = {
        k: str(v) for k, v in values.items() if k not in left_out and len(str(v)) <= FORM_KEEP_MAX
    }


async def act(
    request: AnyRequest,
    action: Callable[[], Awaitable[Any]],
    ok: str | Callable[[Any], str],
    back: str,
    *,
    keep: Mapping[str, str] | None = None,
    to: Callable[[Any], str] | None = None,
) -> Redirect:
    """The one way a page form acts: run `action` (decoding the form into its Struct inside it, so a
    malformed field is refused like any rule); on success say `ok` (or `ok(result)`) and go to
    `to(result)` or `back`; a refusal goes back to the page it came from as a message, keeping what
    was typed (`keep`), and changes nothing."""
    try:
        result = await action()
    except DomainError as exc:
        flash(request, exc.detail, "error")
        if keep is not None:
            keep_form(request, keep)
        return Redirect(came_from(request, back), status_code=303)
    flash(request, ok(result) if callable(ok) else ok)
    return Redirect(to(result) if to is not None else back, status_code=303)


def page_no(raw: str | None) -> int:
    """A page number from a query string; anything that is not one is page 1."""
    try:
        return max(1, min(int(raw or 1), 100000))
    except ValueError:
        return 1


def pop_form(request: AnyRequest) -> dict[str, str]:
    """What the user typed into a form that was refused, to fill it in again."""
    try:
        form: dict[str, str] = request.session.pop("form", {}) or {}
    except Exception:
        form = {}
    return form


def pages_of(total: int, per_page: int) -> int:
    return max(1, (total + per_page - 1) // per_page)


def paging(total: int, page: int, per_page: int) -> dict[str, int]:
    """What a listing page gives its pager (`m.pager`): the rows in all, this page, how many pages."""
    return {"total": total, "page": page, "pages": pages_of(total, per_page)}


def route_handlers(routes: Iterable[Any]) -> list[tuple[set[str], Any]]:
    """Each handler a module's ROUTES holds, with its full paths: a Controller's handlers one by one."""
    out: list[tuple[set[str], Any]] = []
    for item in routes:
        if isinstance(item, type) and issubclass(item, Controller):
            base = "/" + str(vars(item)["path"]).strip("/")
            for value in vars(item).values():
                if isinstance(value, BaseRouteHandler):
                    out.append(
                        (
                            {(base.rstrip("/") + "/" + p.strip("/")).rstrip("/") or "/" for p in value.paths},
                            value,
                        )
                    )
        else:
            out.append((set(item.paths), item))
    return out


def first_value(value: Any) -> Any:
    """A multipart field's value: the first when the form sent it more than once."""
    return value[0] if isinstance(value, list) and value else value


def org_id_filter(raw: str) -> uuid.UUID | None:
    """An optional `org_id` query parameter: empty for none, else an organization id (400 otherwise)."""
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("单位编号格式不正确", code="invalid_org_id", field="org_id") from None
