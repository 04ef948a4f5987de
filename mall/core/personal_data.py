"""Reads of personal data are logged: the one place such audit entries are written (docs/privacy.md).

A page or API answer that shows decrypted personal data (contact phones, addresses, people's names,
what people wrote on an order) to someone who is not that data's own organization calls `log_read`
before answering: an administrator, a procurement center or a regulator, and the supplier of an
order for the buyer's contact details. One entry per answer, in a transaction of its own (the read
itself writes nothing), with the action `READ`.
"""

from __future__ import annotations

from mall.core import audit
from mall.core.auth import Principal
from mall.core.db import Database, retried

READ = "personal_data_viewed"  # the audit action of a read of personal data
# Roles that read others' personal data without being a party to it.
OVERSIGHT = frozenset({"sysadmin", "secadmin", "auditor", "center", "regulator"})


@retried  # a retry may log the read twice, never not at all
async def log_read(
    db: Database, who: Principal, target: str, detail: str, ip: str | None = None, *, kind: str = "page"
) -> None:
    """The audit entry of one read: who, from where (`ip`, default the request's client address),
    what (`target`: the page or API path and the record, e.g. an order number) and which data
    (`detail`, in Chinese, names the fields, never their values); `kind`: what the target is."""
    await audit.record_now(db, who, READ, target_kind=kind, target=target[:200], detail=detail, ip=ip)
