"""E-mail of notifications through SMTP (and SMS through the adapter): at least once, each with a
stable Message-ID made from the notification's id, so a mail client drops a repeat.

A notification waiting to be sent is sent, then marked sent in a transaction of its own: a worker
that dies in between sends it again on the next run (the same Message-ID). A user who chose the
daily digest gets one mail a day, from `notify_digest_hour` on, listing what came since the last one;
its Message-ID is made from the ids it lists."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import smtplib
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from sqlalchemy import select, update

from mall.core import clock
from mall.core.db import Database
from mall.core.settings import Settings
from mall.notify import sms
from mall.notify.models import MailState, Notification, Preferences

log = logging.getLogger("mall.notify")
SUBJECT_PREFIX = "【阳光卖场】"
BATCH = 100


def pushing(settings: Settings) -> bool:
    """E-mail or SMS is configured: notices are marked for sending as they are delivered."""
    return bool(settings.smtp_host or settings.sms_adapter)


def message_id(settings: Settings, *ids: uuid.UUID) -> str:
    """The same notice (or the same digest) always has the same Message-ID."""
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "sunshine-mall.invalid"
    if len(ids) == 1:
        return f"<n.{ids[0].hex}@{domain}>"
    digest = hashlib.sha256(",".join(sorted(str(i) for i in ids)).encode()).hexdigest()[:32]
    return f"<d.{digest}@{domain}>"


def _absolute(settings: Settings, link: str) -> str:
    return settings.public_base_url.rstrip("/") + link


def compose(settings: Settings, to: str, notices: list[Notification]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    if len(notices) == 1:
        n = notices[0]
        msg["Subject"] = SUBJECT_PREFIX + n.title
        body = f"{n.title}\n\n{n.body}\n\n前往办理：{_absolute(settings, n.link)}\n"
    else:
        msg["Subject"] = f"{SUBJECT_PREFIX}消息汇总（{len(notices)} 条）"
        body = "".join(f"· {n.title}\n  {n.body}\n  {_absolute(settings, n.link)}\n\n" for n in notices)
    body += f"\n全部消息：{_absolute(settings, '/messages')}\n（本邮件由系统发送，请勿回复。在“我的账户”中可关闭邮件提醒或改为每日汇总。）\n"
    msg["Message-ID"] = message_id(settings, *(n.id for n in notices))
    msg["Date"] = formatdate(localtime=False)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


# What the server refuses of one message (its address, its content): that message fails for good;
# the session goes on with the next one. Anything else (a lost connection) fails the whole batch,
# which is sent again later.
REFUSALS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def _send(settings: Settings, messages: list[EmailMessage]) -> list[bool]:
    """One SMTP session for the batch; for each message, whether the server took it."""
    taken: list[bool] = []
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_uses_starttls:
            smtp.starttls()
        if settings.smtp_user and settings.smtp_password:
            smtp.login(settings.smtp_user, settings.smtp_password)
        for m in messages:
            try:
                smtp.send_message(m)
                taken.append(True)
            except REFUSALS as exc:
                log.warning("mail %s refused by the server: %s", m["Message-ID"], exc)
                taken.append(False)
    return taken


def _text(sender: sms.SmsSender, phone: str, text: str) -> None:
    """One SMS; a failure is logged and never holds up the mail or the other messages."""
    try:
        sender.send(phone, text)
    except Exception:
        log.exception("SMS not sent")


async def _mark(db: Database, ids: list[uuid.UUID], state: str) -> None:
    async with db.write() as tx:
        await tx.session.execute(
            update(Notification)
            .where(Notification.id.in_(ids))
            .values(mail_state=state, mailed_at=clock.now() if state == MailState.SENT else None)
        )


async def send_waiting(db: Database, settings: Settings) -> int:
    """Send the notices waiting to go out now (oldest first, in batches); returns how many were sent."""
    sender = sms.load(settings)
    sent = 0
    while True:
        async with db.read() as s:
            rows = list(
                (
                    await s.execute(
                        select(Notification, Preferences)
                        .join(Preferences, Preferences.user_id == Notification.user_id, isouter=True)
                        .where(Notification.mail_state == MailState.WAITING)
                        .order_by(Notification.created_at, Notification.id)
                        .limit(BATCH)
                    )
                ).all()
            )
        if not rows:
            return sent
        mails: list[tuple[uuid.UUID, EmailMessage]] = []
        texts: list[tuple[str, str]] = []
        done, dropped, later = [], [], []
        for n, p in rows:
            if p is not None and p.digest and p.email_on and p.email and settings.smtp_host:
                later.append(n.id)  # the user chose the digest since
                continue
            wants_mail = settings.smtp_host and p is not None and p.email_on and p.email and not p.digest
            wants_sms = sender is not None and p is not None and p.sms_on and p.phone and not p.digest
            if not wants_mail and not wants_sms:
                dropped.append(n.id)  # turned off since, or nothing to send with
                continue
            if wants_mail:
                mails.append((n.id, compose(settings, p.email, [n])))
            if wants_sms:
                texts.append((p.phone, f"{SUBJECT_PREFIX}{n.title} {_absolute(settings, n.link)}"))
            done.append(n.id)
        if dropped:
            await _mark(db, dropped, MailState.NONE)
        if later:
            await _mark(db, later, MailState.DIGEST)
        refused: list[uuid.UUID] = []
        if mails:
            taken = await asyncio.to_thread(_send, settings, [m for _, m in mails])
            refused = [nid for (nid, _), ok in zip(mails, taken, strict=True) if not ok]
        for phone, text in texts:
            assert sender is not None
            await asyncio.to_thread(_text, sender, phone, text)
        if refused:
            await _mark(db, refused, MailState.REFUSED)
        done = [nid for nid in done if nid not in set(refused)]
        if done:
            await _mark(db, done, MailState.SENT)
            sent += len(done)


def digest_cutoff(settings: Settings, now: datetime) -> datetime:
    """The latest digest moment not after `now`: today's `notify_digest_hour` in China, or yesterday's."""
    local = now.astimezone(clock.SHANGHAI)
    at = local.replace(hour=settings.notify_digest_hour, minute=0, second=0, microsecond=0)
    return at if at <= local else at - timedelta(days=1)


async def send_digests(db: Database, settings: Settings) -> int:
    """One mail per user with notices kept for the digest from before the latest digest moment;
    returns how many mails were sent. Run it as often as you like: what is sent is marked."""
    cutoff = digest_cutoff(settings, clock.now())
    async with db.read() as s:
        rows = (
            await s.execute(
                select(Notification, Preferences)
                .join(Preferences, Preferences.user_id == Notification.user_id, isouter=True)
                .where(Notification.mail_state == MailState.DIGEST, Notification.created_at <= cutoff)
                .order_by(Notification.user_id, Notification.created_at, Notification.id)
            )
        ).all()
    by_user: dict[uuid.UUID, list[Notification]] = defaultdict(list)
    prefs: dict[uuid.UUID, Preferences | None] = {}
    for n, p in rows:
        by_user[n.user_id].append(n)
        prefs[n.user_id] = p
    mails = 0
    for user_id, notices in by_user.items():
        want = prefs[user_id]
        ids = [n.id for n in notices]
        if not settings.smtp_host or want is None or not (want.email_on and want.email):
            await _mark(db, ids, MailState.NONE)
            continue
        [taken] = await asyncio.to_thread(_send, settings, [compose(settings, want.email, notices)])
        await _mark(db, ids, MailState.SENT if taken else MailState.REFUSED)
        mails += int(taken)
    return mails


async def waiting(db: Database, older_than: datetime) -> bool:
    async with db.read() as s:
        found = await s.scalar(
            select(Notification.id)
            .where(Notification.mail_state == MailState.WAITING, Notification.created_at <= older_than)
            .limit(1)
        )
    return found is not None
