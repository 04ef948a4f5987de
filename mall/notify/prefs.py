"""Each user's notification preferences: e-mail on or off (to the address given), one mail per
notice or a daily digest, SMS on or off (to the number given; used only with an SMS adapter)."""

from __future__ import annotations

import re
import uuid

import msgspec

from mall.core import clock, fields
from mall.core.db import Database, retried
from mall.core.errors import InvalidInput
from mall.notify.models import Preferences

EMAIL_MAX = 254
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


class PrefsForm(msgspec.Struct, forbid_unknown_fields=True):
    """The account page's form. Checkboxes send "on" when ticked and nothing otherwise."""

    email: str = ""
    phone: str = ""
    email_on: str = ""
    digest: str = ""
    sms_on: str = ""


def _ticked(value: str) -> bool:
    return value.strip().lower() in ("on", "true", "1", "yes")


async def of(db: Database, user_id: uuid.UUID) -> Preferences:
    """The user's preferences; defaults (nothing sent) when never saved."""
    async with db.read() as s:
        row = await s.get(Preferences, user_id)
    return row or Preferences(
        user_id=user_id,
        email="",
        email_on=False,
        digest=False,
        phone="",
        sms_on=False,
        updated_at=clock.now(),
    )


@retried
async def save(db: Database, user_id: uuid.UUID, form: PrefsForm) -> Preferences:
    email = fields.text(form.email, "电子邮箱", EMAIL_MAX, field="email")
    phone = fields.text(form.phone, "手机号码", fields.PHONE_MAX, field="phone").replace(" ", "")
    email_on, digest, sms_on = _ticked(form.email_on), _ticked(form.digest), _ticked(form.sms_on)
    if email and not EMAIL.match(email):
        raise InvalidInput("电子邮箱格式不正确，如 zhang@example.gov.cn", code="email_invalid", field="email")
    if email_on and not email:
        raise InvalidInput("开启邮件提醒须填写电子邮箱", code="email_required", field="email")
    if phone and not MOBILE.match(phone):
        raise InvalidInput("手机号码应为11位中国大陆手机号", code="phone_invalid", field="phone")
    if sms_on and not phone:
        raise InvalidInput("开启短信提醒须填写手机号码", code="phone_required", field="phone")
    async with db.write() as tx:
        row = await tx.session.get(Preferences, user_id)
        if row is None:
            row = Preferences(user_id=user_id)
            tx.session.add(row)
        row.email, row.email_on, row.digest = email, email_on, digest
        row.phone, row.sms_on = phone, sms_on
        row.updated_at = clock.now()
    return row
