"""The audit log is append-only and tamper-evident (GB/T 22239-2019 安全审计: 应对审计记录进行保护，避免受到
未预期的删除、修改或覆盖): a hash chain over gap-free sequence numbers that `mall audit verify` recomputes,
naming the first bad entry when one is edited, deleted or moved; entries commit with their action or
not at all (a failed login's entry even though the login fails); concurrent appends on SQLite and
PostgreSQL never leave a gap or a fork; passwords, hashes, tokens and secrets are never recorded."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from mall import cli
from mall.core import audit, auth, clock, retention
from mall.core.db import Database
from mall.core.errors import Unauthenticated
from mall.core.models import AuditEntry, AuditHead, User
from mall.core.settings import Settings
from tests.factories import PASSWORD, World
from tests.security.login_helpers import assert_problem, client_from, served, token_request


async def _entries(db: Database) -> list[AuditEntry]:
    async with db.read() as s:
        return list((await s.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars())


async def _some_entries(world: World, n: int = 8) -> None:
    for i in range(n):
        await audit.record_now(
            world.db, world.who["secadmin"], "audit_verified", target="chain", detail=f"第 {i} 次"
        )


async def _sql(db: Database, sql: str, **params: Any) -> None:
    """Someone with the database's own rights rewrites the log (the guard opened, as only the schema's
    owner could; the chain must show it all the same)."""
    async with db.engine.begin() as conn, retention.opened(conn):
        await conn.execute(text(sql), params)


def _verify_command(db: Database, capsys: Any) -> tuple[int, str]:
    code = audit.verify_command(db.url)
    out = capsys.readouterr()
    return code, out.out + out.err


async def test_the_chain_verifies_and_every_entry_links_to_the_one_before(world: World) -> None:
    await _some_entries(world)
    entries = await _entries(world.db)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == audit.GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    for e in entries:
        assert e.hash == audit.chain_hash(audit.fields_of(e)) and len(e.hash) == 64
    async with world.db.read() as s:
        head = await s.get(AuditHead, 1)
    assert head is not None and (head.last_seq, head.last_hash) == (entries[-1].seq, entries[-1].hash)
    result = await audit.verify(world.db)
    assert result.ok and result.checked == len(entries)


async def test_verify_names_the_first_edited_deleted_or_moved_entry(world: World, capsys: Any) -> None:
    await _some_entries(world)
    db = world.db
    last = len(await _entries(db))
    assert last >= 8
    # The command is wired as `mall audit verify`.
    assert cli.build_parser().parse_args(["audit", "verify"]).fn is cli.cmd_audit_verify
    code, said = await asyncio.to_thread(_verify_command, db, capsys)
    assert code == 0 and f"共 {last} 条记录" in said

    async def broken_at() -> tuple[int | None, int, str]:
        result = await audit.verify(db)
        code, said = await asyncio.to_thread(_verify_command, db, capsys)
        assert not result.ok and code == 1 and f"第 {result.seq} 条" in said, said
        return result.seq, code, said

    # edited: one word of one entry's detail
    original = next(e for e in await _entries(db) if e.seq == 3).detail
    await _sql(db, "UPDATE audit_log SET detail = 'x' WHERE seq = 3")
    assert (await broken_at())[0] == 3
    await _sql(db, "UPDATE audit_log SET detail = :d WHERE seq = 3", d=original)
    assert (await audit.verify(db)).ok
    # edited, and its hash computed again to match: the next entry's link breaks
    role = next(e for e in await _entries(db) if e.seq == 4).actor_role
    await _sql(db, "UPDATE audit_log SET actor_role = 'auditor' WHERE seq = 4")
    e4 = next(e for e in await _entries(db) if e.seq == 4)
    await _sql(db, "UPDATE audit_log SET hash = :h WHERE seq = 4", h=audit.chain_hash(audit.fields_of(e4)))
    assert (await broken_at())[0] == 5
    await _sql(db, "UPDATE audit_log SET actor_role = :r WHERE seq = 4", r=role)
    e4 = next(e for e in await _entries(db) if e.seq == 4)
    await _sql(db, "UPDATE audit_log SET hash = :h WHERE seq = 4", h=audit.chain_hash(audit.fields_of(e4)))
    assert (await audit.verify(db)).ok

    # moved: two entries swap places
    await _sql(db, "UPDATE audit_log SET seq = -5 WHERE seq = 5")
    await _sql(db, "UPDATE audit_log SET seq = 5 WHERE seq = 6")
    await _sql(db, "UPDATE audit_log SET seq = 6 WHERE seq = -5")
    assert (await broken_at())[0] == 5
    await _sql(db, "UPDATE audit_log SET seq = -5 WHERE seq = 5")
    await _sql(db, "UPDATE audit_log SET seq = 5 WHERE seq = 6")
    await _sql(db, "UPDATE audit_log SET seq = 6 WHERE seq = -5")
    assert (await audit.verify(db)).ok

    # deleted: one in the middle, then the last one
    saved = {e.seq: e for e in await _entries(db)}
    await _sql(db, "DELETE FROM audit_log WHERE seq = 2")
    seq, _, said = await broken_at()
    assert seq == 2 and "缺少第 2 条" in said
    await _sql(db, "DELETE FROM audit_log WHERE seq > 2")
    async with db.write() as tx:  # put back what was deleted, as it was
        for n in range(2, last + 1):
            tx.session.add(_copy(saved[n]))
    assert (await audit.verify(db)).ok
    await _sql(db, "DELETE FROM audit_log WHERE seq = :n", n=last)
    assert (await broken_at())[0] == last


def _copy(e: AuditEntry) -> AuditEntry:
    return AuditEntry(**{c.key: getattr(e, c.key) for c in AuditEntry.__table__.columns})


async def test_an_entry_commits_with_its_action_or_not_at_all(world: World) -> None:
    before = len(await _entries(world.db))
    with pytest.raises(RuntimeError):
        async with world.db.write() as tx:
            audit.record(tx, world.who["secadmin"], "audit_verified", target="chain")
            raise RuntimeError("the action fails after its entry was queued")
    # A transaction that fails at its commit (a duplicate username) leaves no entry either.
    with pytest.raises(IntegrityError):
        async with world.db.write() as tx:
            audit.record(tx, world.who["sysadmin"], "user_created", target_kind="user", target="buyer_a")
            existing = await tx.session.scalar(select(User).where(User.username == "buyer_a"))
            assert existing is not None
            tx.session.add(
                User(
                    username="buyer_a",
                    display_name="重复",
                    password_hash="x",
                    org_id=existing.org_id,
                    created_at=clock.now(),
                )
            )
    assert len(await _entries(world.db)) == before
    assert (await audit.verify(world.db)).ok
    # Recording outside a write transaction is a programming error, never a silent loss.
    async with world.db.read() as s:
        with pytest.raises(RuntimeError):
            audit.record(s, None, "audit_verified")
    with pytest.raises(ValueError, match="unknown audit action"):
        async with world.db.write() as tx:
            audit.record(tx, None, "something_new")


async def test_a_failed_login_is_recorded_though_the_login_fails(world: World, settings: Settings) -> None:
    async with served(settings) as app, client_from(app, "203.0.113.77") as c:
        assert_problem(await token_request(c, "center", "wrong-password"), 401, "bad_credentials")
        assert_problem(await token_request(c, "nobody-here", "wrong-password"), 401, "bad_credentials")
        assert (await token_request(c, "center", PASSWORD)).status_code == 201
    async with world.db.read() as s:
        rows = list(
            (
                await s.execute(
                    select(AuditEntry)
                    .where(AuditEntry.action.in_(("login", "login_failed")))
                    .order_by(AuditEntry.seq)
                )
            ).scalars()
        )
    got = [(e.action, e.succeeded, e.target, e.actor_username, e.actor_role, e.ip) for e in rows]
    assert got == [
        ("login_failed", False, "center", "center", "", "203.0.113.77"),
        ("login_failed", False, "nobody-here", "nobody-here", "", "203.0.113.77"),
        ("login", True, "center", "center", "center", "203.0.113.77"),
    ]
    assert rows[0].actor_user_id == world.who["center"].user_id and rows[1].actor_user_id is None


async def test_concurrent_appends_leave_no_gap_and_no_fork(world: World, settings: Settings) -> None:
    """Logins, failures, token revocations and plain entries at once, from many connections: on
    PostgreSQL each append waits for the head's row lock; on SQLite writers queue."""
    start = len(await _entries(world.db))

    async def failing(i: int) -> None:
        with contextlib.suppress(Unauthenticated):  # the failure is the point; it is recorded all the same
            await auth.authenticate(world.db, "buyer_b", f"wrong-{i}", f"192.0.2.{i}")

    async def plain(i: int) -> None:
        await audit.record_now(world.db, world.who["auditor"], "audit_verified", detail=str(i))

    async def login(i: int) -> None:
        await auth.authenticate(world.db, "supplier_y", PASSWORD, f"198.51.100.{i}")

    await asyncio.gather(*(f(i) for i in range(8) for f in (failing, plain, login)))
    entries = await _entries(world.db)
    assert len(entries) == start + 24
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    result = await audit.verify(world.db)
    assert result.ok, result
    async with world.db.read() as s:
        prevs = await s.scalar(select(func.count(func.distinct(AuditEntry.prev_hash))))
    assert prevs == len(entries)  # every entry follows a different one: no fork


async def test_passwords_hashes_tokens_and_secrets_are_never_recorded(
    client: Any, world: World, settings: Settings
) -> None:
    org = world.who["buyer_b"].org_id
    new_password = "Songshan-lake-2026"
    r = await client.post(
        f"/api/admin/organizations/{org}/users",
        json={"username": "newclerk", "display_name": "新职员", "password": new_password},
        headers=world.h("sysadmin"),
    )
    assert r.status_code == 201, r.text
    r = await client.post("/api/auth/token", json={"username": "newclerk", "password": new_password})
    token = r.json()["token"]
    r = await client.post(
        "/api/auth/password",
        json={"current_password": new_password, "new_password": "Funiu-mountain-2026"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 204, r.text
    secret, _ = await auth.begin_enrolment(world.db, world.who["center"], b"k" * 32)
    async with world.db.read() as s:
        hashes = [u.password_hash for u in (await s.execute(select(User))).scalars()]
        sealed = await s.scalar(select(User.totp_secret).where(User.username == "center"))
    everything = json.dumps(
        [audit.fields_of(e) | {"hash": e.hash} for e in await _entries(world.db)], ensure_ascii=False
    )
    assert (
        "newclerk" in everything and "token_issued" in everything and "totp_enrolment_started" in everything
    )
    for secret_text in (new_password, "Funiu-mountain-2026", PASSWORD, token, secret, sealed, *hashes):
        assert secret_text and secret_text not in everything
    for token_text in world.tokens.values():
        assert token_text not in everything
    # Whatever a caller passes, keys that name secrets are dropped at any depth.
    assert audit.clean({"password": "p", "a": {"token": "t", "secret": "s", "b": 1}}) == {"a": {"b": 1}}
