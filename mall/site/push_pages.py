"""Push subscription pages (推送订阅): the list with a form to add one, and a detail page with the log."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from mall.core.auth import allow
from mall.core.errors import DomainError, InvalidInput
from mall.core.models import Organization
from mall.ledger import push
from mall.ledger.disclosure import MODE_LABELS
from mall.web.deps import DB, Config
from mall.web.helpers import act, current_user, flash, keep_form, page_no, pages_of, pop_form, render

MANAGERS = allow("center", "regulator", "admin")
LOG_PER_PAGE = 30


def _remember_secret(request: Request[Any, Any, Any], sub_id: uuid.UUID, secret: str) -> None:
    # Shown once on the next page view (the session cookie is encrypted), never stored for display.
    request.session["push_secret"] = [str(sub_id), secret]


@get("/push", opt=MANAGERS, include_in_schema=False)
async def subscriptions_page(request: Request[Any, Any, Any], db: DB) -> Template:
    async with db.read() as s:
        subs = await push.list_of(s, current_user(request))
        head = await push.ledger_head(s)
        rows = [(sub, push.state_of(sub), await push.backlog(s, sub)) for sub in subs]
        # the platform admin sees every organization's subscriptions: say whose each one is
        from sqlalchemy import select

        owner_ids = {sub.org_id for sub in subs}
        owners = (
            dict(
                (
                    await s.execute(
                        select(Organization.id, Organization.name).where(Organization.id.in_(owner_ids))
                    )
                ).all()
            )
            if owner_ids
            else {}
        )
    me = current_user(request)
    return render(
        request,
        "push_subscriptions.html",
        rows=rows,
        owners=owners,
        show_owner=me is not None and me.role == "admin",
        head=head,
        modes=MODE_LABELS,
        state_labels=push.STATE_LABELS,
        form=pop_form(request),
    )


@post("/push", opt=MANAGERS, include_in_schema=False)
async def subscription_create(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    fields = ("name", "url", "mode", "start")
    form = {f: (data.get(f) or "").strip() for f in fields}
    try:
        from_seq = 0 if form["start"] == "all" else None
        if form["start"] not in ("", "new", "all"):
            raise InvalidInput("请选择从何处开始推送", code="invalid_from_seq")
        sub, secret = await push.create(
            db,
            settings,
            current_user(request),
            name=form["name"],
            url=form["url"],
            mode=form["mode"] or None,
            from_seq=from_seq,
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, form)
        return Redirect("/push", status_code=303)
    flash(request, f"已登记推送订阅：{sub.name}")
    _remember_secret(request, sub.id, secret)
    return Redirect(f"/push/{sub.id}", status_code=303)


@get("/push/{subscription_id:uuid}", opt=MANAGERS, include_in_schema=False)
async def subscription_page(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID], db: DB, page: FromQuery[str] = "1"
) -> Template:
    p = page_no(page)
    async with db.read() as s:
        sub = await push.get(s, current_user(request), subscription_id)
        head = await push.ledger_head(s)
        backlog = await push.backlog(s, sub)
        total, log = await push.deliveries(s, sub, p, LOG_PER_PAGE)
    shown = request.session.pop("push_secret", None) if request.session else None
    secret = shown[1] if shown and shown[0] == str(sub.id) else None
    return render(
        request,
        "push_subscription.html",
        sub=sub,
        state=push.state_of(sub),
        state_labels=push.STATE_LABELS,
        head=head,
        backlog=backlog,
        log=log,
        total=total,
        page=p,
        pages=pages_of(total, LOG_PER_PAGE),
        modes=MODE_LABELS,
        error_label=push.error_label,
        secret=secret,
        secret_hint=push.secret_hint(sub),
    )


@post("/push/{subscription_id:uuid}/pause", opt=MANAGERS, include_in_schema=False)
async def subscription_pause(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID], db: DB
) -> Redirect:
    return await act(
        request,
        lambda: push.pause(db, current_user(request), subscription_id),
        "已暂停推送",
        f"/push/{subscription_id}",
    )


@post("/push/{subscription_id:uuid}/resume", opt=MANAGERS, include_in_schema=False)
async def subscription_resume(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID], db: DB
) -> Redirect:
    return await act(
        request,
        lambda: push.resume(db, current_user(request), subscription_id),
        "已恢复推送，将立即尝试投递",
        f"/push/{subscription_id}",
    )


@post("/push/{subscription_id:uuid}/rotate-secret", opt=MANAGERS, include_in_schema=False)
async def subscription_rotate(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID], db: DB
) -> Redirect:
    async def go() -> None:
        sub, secret = await push.rotate_secret(db, current_user(request), subscription_id)
        _remember_secret(request, sub.id, secret)

    return await act(request, go, "已更换签名密钥，旧密钥立即失效", f"/push/{subscription_id}")


@post("/push/{subscription_id:uuid}/delete", opt=MANAGERS, include_in_schema=False)
async def subscription_delete(
    request: Request[Any, Any, Any], subscription_id: FromPath[uuid.UUID], db: DB
) -> Redirect:
    return await act(
        request, lambda: push.remove(db, current_user(request), subscription_id), "已删除推送订阅", "/push"
    )


ROUTES = [
    subscriptions_page,
    subscription_create,
    subscription_page,
    subscription_pause,
    subscription_resume,
    subscription_rotate,
    subscription_delete,
]
