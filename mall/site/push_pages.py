"""Push subscription pages (推送订阅): the list with a form to add one, and a detail page with the log."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall import accounts
from mall.core.errors import InvalidInput
from mall.core.fields import Choice
from mall.core.guards import allow
from mall.ledger import push
from mall.ledger.disclosure import MODE_LABELS
from mall.site.push_routes import SubscriptionIn, register
from mall.web import forms
from mall.web.deps import UserCall
from mall.web.helpers import AnyRequest, Form, page_no, paging, pop_form

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
    async def subscriptions_page(self, call: UserCall) -> Template:
        async with call.db.read() as s:
            subs = await push.list_of(s, call.me)
            head = await push.ledger_head(s)
            rows = [(sub, push.state_of(sub), await push.backlog(s, sub)) for sub in subs]
            # the platform admin sees every organization's subscriptions: say whose each one is
            owner_ids = {sub.org_id for sub in subs}
            owners = await accounts.names_of(s, owner_ids)
        return call.render(
            "push_subscriptions.html",
            rows=rows,
            owners=owners,
            show_owner=call.me.role == push.SEES_ALL,
            head=head,
            modes=MODE_LABELS,
            state_labels=push.STATE_LABELS,
            form=pop_form(call.request),
        )

    @post("/")
    async def subscription_create(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> Any:
            form = forms.decode(SubscriptionForm, data)
            if form.start not in START_FROM:
                raise InvalidInput("请选择从何处开始推送", code="invalid_from_seq")
            sub, secret = await register(
                call.db,
                call.settings,
                call.me,
                msgspec.structs.replace(form, from_seq=START_FROM[form.start]),
            )
            _remember_secret(call.request, sub.id, secret)
            return sub

        return await call.act(
            go,
            lambda sub: f"已登记推送订阅：{sub.name}",
            "/push",
            keep=data,
            to=lambda sub: f"/push/{sub.id}",
        )

    @get("/{subscription_id:uuid}")
    async def subscription_page(
        self, call: UserCall, subscription_id: FromPath[uuid.UUID], page: FromQuery[str] = "1"
    ) -> Template:
        p = page_no(page)
        async with call.db.read() as s:
            sub = await push.get(s, call.me, subscription_id)
            head = await push.ledger_head(s)
            backlog = await push.backlog(s, sub)
            total, log = await push.deliveries(s, sub, p, LOG_PER_PAGE)
        shown = call.request.session.pop("push_secret", None) if call.request.session else None
        secret = shown[1] if shown and shown[0] == str(sub.id) else None
        return call.render(
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
    async def subscription_pause(self, call: UserCall, subscription_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: push.pause(call.db, call.me, subscription_id), "已暂停推送", f"/push/{subscription_id}"
        )

    @post("/{subscription_id:uuid}/resume")
    async def subscription_resume(self, call: UserCall, subscription_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: push.resume(call.db, call.me, subscription_id),
            "已恢复推送，将立即尝试投递",
            f"/push/{subscription_id}",
        )

    @post("/{subscription_id:uuid}/rotate-secret")
    async def subscription_rotate(self, call: UserCall, subscription_id: FromPath[uuid.UUID]) -> Redirect:
        async def go() -> None:
            sub, secret = await push.rotate_secret(call.db, call.me, subscription_id)
            _remember_secret(call.request, sub.id, secret)

        return await call.act(go, "已更换签名密钥，旧密钥立即失效", f"/push/{subscription_id}")

    @post("/{subscription_id:uuid}/delete")
    async def subscription_delete(self, call: UserCall, subscription_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: push.remove(call.db, call.me, subscription_id), "已删除推送订阅", "/push"
        )


ROUTES = [SubscriptionPages]
