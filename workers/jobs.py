"""RQ jobs. They take ids, not objects, and are idempotent: running one twice changes nothing more."""

from __future__ import annotations

import logging

from bidding import award, close
from bidding.models import Procedure
from catalog import agreement_setup as agreements
from catalog import imports
from catalog import service as catalog_service
from mall import notices, orders
from mall.core import clock, files, partitions
from mall.core.db import Database
from mall.core.errors import Conflict
from mall.core.settings import Settings
from mall.credit import service as credit
from mall.ledger import disclosure, exports, push, witness
from mall.notify import deliver as notify_delivery
from mall.notify import mail as notify_mail
from mall.notify import scans as notify_scans
from mall.sanctions import service as sanctions
from search_index import sync
from search_index.factory import backend_for
from workers import queues, runtime

log = logging.getLogger("mall.jobs")


def publish(outbox_id: str) -> int:
    """Publish pending disclosure records (this one and any older ones), in outbox order."""

    queues.publisher_started()

    async def go(db: Database, s: Settings) -> int:
        total = 0
        while True:
            n = await disclosure.publish_pending(db, pause=s.publish_pause_seconds)
            total += n
            if n == 0:
                break
        # Public notices (合同公告, 履约验收公告) ride the same topic: one list, numbered in commit order.
        while (n := await notices.publish_pending(db)) > 0:
            log.info("published %d notice(s)", n)
        if total:
            log.info("published %d disclosure record(s)", total)
            # Receivers are told by their own jobs: publishing never waits for them.
            try:
                await push.kick(db)
            except Exception:
                log.exception("push subscriptions not kicked; the cron will")
        return total

    return runtime.run(go)


def deliver_notifications() -> dict[str, int]:
    """Pending notices become message-centre rows (idempotent: each is keyed), then the ones to be
    sent now go out by e-mail or SMS (at least once, with a stable Message-ID)."""

    queues.notifier_started()

    async def go(db: Database, s: Settings) -> dict[str, int]:
        rows = 0
        while n := await notify_delivery.deliver_pending(db, pushing=notify_mail.pushing(s)):
            rows += n
        sent = await notify_mail.send_waiting(db, s) if notify_mail.pushing(s) else 0
        return {"outbox_rows": rows, "sent": sent}

    return runtime.run(go)


def notify_periodic() -> dict[str, int]:
    """The periodic notices: payments falling due (staged, then delivered here), and the daily digests
    of those who chose one. A party is told of an oversight case when the risk rules open it
    (mall.supervision.engine)."""

    async def go(db: Database, s: Settings) -> dict[str, int]:
        staged = await notify_scans.stage_payment_due(db, s.payment_due_days)
        while await notify_delivery.deliver_pending(db, pushing=notify_mail.pushing(s)):
            pass
        digests = await notify_mail.send_digests(db, s) if s.smtp_host else 0
        return {"payment_due": staged, "digests": digests}

    return runtime.run(go)


def cancel_overdue() -> int:
    async def go(db: Database, s: Settings) -> int:
        return await orders.cancel_overdue(db)

    return runtime.run(go)


def sync_search() -> int:
    """Apply pending listing changes to the search index (under the sync lock)."""

    queues.indexer_started()

    async def go(db: Database, s: Settings) -> int:
        backend = backend_for(s, writer=True)
        with queues.search_sync_lock(s):
            return await sync.drain(db, backend)

    return runtime.run(go)


def run_import(import_id: str) -> dict[str, int]:
    """Process a supplier's spreadsheet upload (idempotent: a finished import is skipped)."""
    import uuid

    async def go(db: Database, s: Settings) -> dict[str, int]:
        return await imports.process_import(
            db,
            files.store_for(s, db),
            uuid.UUID(import_id),
            margin=s.price_margin,
            ceiling=s.decentralized_threshold,
        )

    return runtime.run(go)


def close_procedure(procedure_id: str) -> str:
    """Close an inquiry or auction at its end (idempotent). Ran early (the end moved), it schedules
    itself again for the new end."""
    import uuid

    async def go(db: Database, s: Settings) -> str:
        try:
            p = await close.close(db, uuid.UUID(procedure_id), pause=s.close_pause_seconds)
        except Conflict:
            async with db.read() as session:
                row = await session.get(Procedure, uuid.UUID(procedure_id))
            if row is not None:
                queues.schedule_close(row.id, row.ends_at)
            return "rescheduled"
        return p.status

    return runtime.run(go)


def close_due_procedures() -> int:
    async def go(db: Database, s: Settings) -> int:
        return len(await award.close_due(db, pause=s.close_pause_seconds))

    return runtime.run(go)


def lapse_award(procedure_id: str) -> str:
    """The winner did not confirm in time: the award passes to the next in rank (idempotent)."""
    import uuid

    async def go(db: Database, s: Settings) -> str:
        return (await award.decline_award(db, None, uuid.UUID(procedure_id), lapsed=True)).status

    return runtime.run(go)


def expire_agreements() -> int:
    """Framework agreements whose term has ended become expired (idempotent)."""

    async def go(db: Database, s: Settings) -> int:
        return len(await agreements.expire_due(db))

    return runtime.run(go)


def refresh_credit() -> int:
    """Late deliveries found by time alone become credit events; then every supplier's score is
    computed again (mall.credit). At most once in ten minutes (the cron asks on every slow tick), and
    idempotent: a fact is recorded once. Certificates that expired go back through the search index
    once a day (catalog.policy: the 节能 / 环保 badge and filter)."""

    async def go(db: Database, s: Settings) -> int:
        now = clock.now().astimezone(clock.SHANGHAI)
        day = now.date().isoformat()
        if not queues.done_today("restage-certificates", day):
            await catalog_service.restage_expired_certificates(db)
            queues.mark_done_today("restage-certificates", day)
        slot = f"{day}T{now.hour:02d}{now.minute // 10}"
        if queues.done_today("credit-refresh", slot):
            return 0
        await credit.scan_late_deliveries(db, s)
        scored = await credit.refresh(db)
        queues.mark_done_today("credit-refresh", slot)
        return scored

    return runtime.run(go)


def expire_sanctions() -> int:
    """Sanctions whose term has ended are marked expired; their suppliers' listings return to search
    (idempotent; the end bound every path already)."""

    async def go(db: Database, s: Settings) -> int:
        return await sanctions.expire_due(db)

    return runtime.run(go)


def deliver_push(subscription_id: str) -> int:
    """POST the records a push subscription has not acknowledged yet, in ledger order (see mall.push)."""
    import uuid

    queues.push_started(subscription_id)

    async def go(db: Database, s: Settings) -> int:
        return (await push.deliver(db, s, uuid.UUID(subscription_id))).delivered

    return runtime.run(go)


def run_export(export_id: str) -> str:
    """Write a ledger export file for its requester (idempotent: a finished export is skipped)."""
    import uuid

    async def go(db: Database, s: Settings) -> str:
        return await exports.run_job(db, s, uuid.UUID(export_id))

    return runtime.run(go)


def prune() -> dict[str, int]:
    """Housekeeping. Retention: export files past `export_keep_days` and uploads of ended imports (from the file
    store), files that a writer which died left half-written, push delivery-log rows past
    `push_log_keep_days`; and next year's partitions of the ledger, offers and audit log on PostgreSQL
    (mall.core.partitions) (idempotent)."""

    async def go(db: Database, s: Settings) -> dict[str, int]:
        from datetime import timedelta

        store = files.store_for(s, db)
        return {
            "export_files": await exports.prune_files(db, s),
            "import_uploads": await imports.prune_uploads(db, store),
            "unfinished_files": await store.prune_unfinished(timedelta(days=1)),
            "push_log_rows": await push.prune_log(db, s),
            "notifications": await notify_delivery.prune(db, s.notification_keep_days),
            # (not a deletion: next year's partitions of the kept logs, made a year ahead)
            "partitions_made": len(await partitions.ensure(db)),
        }

    return runtime.run(go)


def witness_ledger(day: str | None = None) -> int:
    """The daily witness: the ledger head to the operations log (`ledger.head`) and, with
    MALL_WITNESS_FILE, appended to the witness file (mall.ledger.witness); then `day` is marked
    done, so that a failed run is enqueued again. Returns the head's seq."""

    async def go(db: Database, s: Settings) -> int:
        return (await witness.witness(db, s, source="daily")).seq

    seq = runtime.run(go)
    if day is not None:
        queues.mark_witnessed(day)
    return seq
