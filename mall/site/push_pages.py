"""Push subscription pages (推送订阅): the list with a form to add one, and a detail page with the log."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall import accounts
from mall.core.auth import allow
from mall.core.errors import InvalidInput
from mall.core.fields import Choice
from mall.ledger import push
from mall.ledger.disclosure import MODE_LABELS
from mall.site.push_routes import SubscriptionIn, register
from mall.web import forms
from mall.web.deps import DB, Config, Me
from mall.web.helpers import AnyRequest, Form, act, page_no, paging, pop_form, render

MANAGERS = allow(*push.MANAGERS)
LOG_PER_PAGE = 30


def _remember_secret(request: AnyRequest, sub_id: uuid.UUID, secret: str) -> None:
    # Shown once on the next page view (the session cookie is encrypted), never stored for display.
    request.session["push_secret"] = [str(sub_id), secret]


class SubscriptionForm(SubscriptionIn, forbid_unknown_fields=True):
    """The page's form: the API's fields, with where to start said in words."""

    start: Choice = ""  # "" or "new": from the current head; "all": from the first record


START_FROM = {"": None, "new": None, "all": 0}


class SubscriptionPages(Controller):
    path = "/push"
    opt = MANAGERS
    include_in_schema = False

    @get("/")
    async def subscriptions_page(self, request: AnyRequest, me: Me, db: DB) -> Template:
        async with db.read() as s:
            subs = await push.list_of(s, me)
            head = await push.ledger_head(s)
            rows = [(sub, push.state_of(sub), await push.backlog(s, sub)) for sub in subs]
            # the platform admin sees every organization's subscriptions: say whose each one is
            owner_ids = {sub.org_id for sub in subs}
            owners = await accounts.names_of(s, owner_ids)
        return render(
            request,
            "push_subscriptions.html",
            rows=rows,
            owners=owners,
            show_owner=me.role == push.SEES_ALL,
            head=head,
            modes=MODE_LABELS,
            state_labels=push.STATE_LABELS,
            form=pop_form(request),
        )

    @post("/")
    async def subscription_create(
        self, request: AnyRequest, me: Me, db: DB, settings: Config, data: Form
    ) -> Redirect:
        async def go() -> Any:
            form = forms.decode(SubscriptionForm, data)
            if form.start not in START_FROM:
                raise InvalidInput("请选择从何处开始推送", code="invalid_from_seq")
            sub, secret = await register(
                db, settings, me, msgspec.structs.replace(form, from_seq=START_FROM[form.start])
            )
            _remember_secret(request, sub.id, secret)
            return sub

        return await act(
            request,
            go,
            lambda sub: f"已登记推送订阅：{sub.name}",
            "/push",
            keep=data,
            to=lambda sub: f"/push/{sub.id}",
        )

    @get("/{subscription_id:uuid}")
    async def subscription_page(
        self,
        request: AnyRequest,
        me: Me,
        subscription_id: FromPath[uuid.UUID],
        db: DB,
        page: FromQuery[str] = "1",
    ) -> Template:
        p = page_no(page)
        async with db.read() as s:
            sub = await push.get(s, me, subscription_id)
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
            **paging(total, p, LOG_PER_PAGE),
            modes=MODE_LABELS,
            error_label=push.error_label,
            secret=secret,
            secret_hint=push.secret_hint(sub),
        )

    @post("/{subscription_id:uuid}/pause")
    async def subscription_pause(
        self, request: AnyRequest, me: Me, subscription_id: FromPath[uuid.UUID], db: DB
    ) -> Redirect:
        return await act(
            request, lambda: push.pause(db, me, subscription_id), "已暂停推送", f"/push/{subscription_id}"
        )

    @post("/{subscription_id:uuid}/resume")
    async def subscription_resume(
        self, request: AnyRequest, me: Me, subscription_id: FromPath[uuid.UUID], db: DB
    ) -> Redirect:
        return await act(
            request,
            lambda: push.resume(db, me, subscription_id),
            "已恢复推送，将立即尝试投递",
            f"/push/{subscription_id}",
        )

    @post("/{subscription_id:uuid}/rotate-secret")
    async def subscription_rotate(
        self, request: AnyRequest, me: Me, subscription_id: FromPath[uuid.UUID], db: DB
    ) -> Redirect:
        async def go() -> None:
            sub, secret = await push.rotate_secret(db, me, subscription_id)
            _remember_secret(request, sub.id, secret)

        return await act(request, go, "已更换签名密钥，旧密钥立即失效", f"/push/{subscription_id}")

    @post("/{subscription_id:uuid}/delete")
    async def subscription_delete(
        self, request: AnyRequest, me: Me, subscription_id: FromPath[uuid.UUID], db: DB
    ) -> Redirect:
        return await act(request, lambda: push.remove(db, me, subscription_id), "已删除推送订阅", "/push")


ROUTES = [SubscriptionPages]
