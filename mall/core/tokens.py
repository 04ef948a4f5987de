"""API tokens: issued after a login, listed, revoked, and turned back into the caller they stand for.

Only a token's SHA-256 digest is stored; a token lives `TOKEN_TTL` unless the settings say otherwise,
and a user holds at most `MAX_LIVE_TOKENS` live ones."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from mall.core import audit, clock, fields
from mall.core.auth import Principal, principal_of
from mall.core.db import Database, retried
from mall.core.errors import NotFound
from mall.core.models import ApiToken, User

# Defaults; the app passes settings.token_ttl_days and settings.max_live_tokens.
TOKEN_TTL = timedelta(days=7)


MAX_LIVE_TOKENS = 20


# A token's last use is written when the stored one is older than this: one write per token per
# few minutes instead of one per request.
LAST_USE_EVERY = timedelta(minutes=5)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    db: Database,
    principal: Principal,
    name: str = "",
    *,
    ttl: timedelta = TOKEN_TTL,
    max_live: int = MAX_LIVE_TOKENS,
) -> tuple[str, ApiToken]:
    """A new token. Beyond `max_live` live tokens the oldest are revoked (audited): whoever asks has
    just proven the password, and scripts that log in on every run keep working; with a fixed
    lifetime the oldest token is also the one closest to expiring anyway."""
    name = fields.text(name, "令牌名称", fields.SHORT_MAX, field="name")
    token = "mall_" + secrets.token_urlsafe(32)
    now = clock.now()
    row = ApiToken(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        token_hash=_token_digest(token),
        name=name,
        created_at=now,
        expires_at=now + ttl,
    )
    async with db.write() as tx:
        s = tx.session
        # One issue at a time per user, so two logins at once cannot both take the last free place.
        await s.execute(select(User.id).where(User.id == principal.user_id).with_for_update())
        live = list(
            (
                await s.execute(
                    select(ApiToken)
                    .where(*_live(principal.user_id, now))
                    .order_by(ApiToken.created_at, ApiToken.id)
                )
            ).scalars()
        )
        for old in live[: max(0, len(live) - max_live + 1)]:
            old.revoked_at = now
            audit.record(
                tx,
                principal,
                "token_revoked",
                target_kind="token",
                target=old.name,
                detail=f"有效令牌已达上限（{max_live} 个），自动吊销最早签发的令牌",
                after={"token_id": old.id, "owner": principal.username},
            )
        s.add(row)
        audit.record(
            tx,
            principal,
            "token_issued",
            target_kind="token",
            target=name,
            after={"token_id": row.id, "owner": principal.username, "expires_at": row.expires_at},
        )
    return token, row


def _live(user_id: uuid.UUID, now: datetime) -> tuple[Any, ...]:
    return (ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)


async def tokens_of(db: Database, user_id: uuid.UUID) -> list[ApiToken]:
    """The user's live tokens, newest first."""
    async with db.read() as s:
        rows = await s.execute(
            select(ApiToken)
            .where(*_live(user_id, clock.now()))
            .order_by(ApiToken.created_at.desc(), ApiToken.id)
        )
        return list(rows.scalars())


async def revoke_token(db: Database, who: Principal, token_id: uuid.UUID, *, anyones: bool = False) -> None:
    """The owner revokes one of their tokens; anyone else's is "not found". With `anyones`, the
    security administrator revokes any user's token (a leaked one)."""
    async with db.write() as tx:
        stmt = (
            select(ApiToken, User.username)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.id == token_id)
        )
        if not anyones:
            stmt = stmt.where(ApiToken.user_id == who.user_id)
        found = (await tx.session.execute(stmt)).first()
        if found is None:
            raise NotFound("令牌不存在", code="token_not_found")
        row, owner = found
        if row.revoked_at is None:
            row.revoked_at = clock.now()
            audit.record(
                tx,
                who,
                "token_revoked",
                target_kind="token",
                target=row.name,
                detail="" if owner == who.username else f"吊销用户 {owner} 的令牌",
                after={"token_id": row.id, "owner": owner},
            )


async def live_tokens(db: Database, limit: int = 500) -> list[tuple[ApiToken, str]]:
    """Every live token with its owner's username, newest first (the security administrator's list)."""
    now = clock.now()
    async with db.read() as s:
        rows = await s.execute(
            select(ApiToken, User.username)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)
            .order_by(ApiToken.created_at.desc(), ApiToken.id)
            .limit(limit)
        )
        return [(t, u) for t, u in rows.all()]


@retried
async def principal_from_token(db: Database, token: str) -> Principal | None:
    now = clock.now()
    async with db.read() as s:
        row = (
            await s.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == _token_digest(token))
            )
        ).first()
        if row is None:
            return None
        tok, user = row
        if tok.revoked_at is not None or tok.expires_at <= now or not user.is_active:
            return None
        principal = principal_of(user, via_token=True, token_id=tok.id)
    if tok.last_used_at is None or tok.last_used_at <= now - LAST_USE_EVERY:
        async with db.write() as tx:
            await tx.session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == tok.id,
                    or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USE_EVERY),
                )
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
    return principal
