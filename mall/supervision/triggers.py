"""What makes the risk rules look again, for the records whose code does not stage it itself:
a procedure that closes, is awarded, confirmed, failed or passed on, and a designation application.

Orders stage their buyer in `mall.orders.events.record_event`. Procedures and designations are
seen at the flush (as `mall.core.audit.watch` sees its models): whatever code changes their state,
the "risk" outbox row is written in the same transaction. Installed once per process by importing
this module (mall.supervision's package does).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from bidding.models import Procedure
from bidding.oversight import OPENED
from catalog.models import Designation
from mall.core import outbox

_WATCHED_PROCEDURE = ("status", "passed_over", "awarded_supplier_id")


def _changed(row: Any, names: tuple[str, ...]) -> bool:
    state = inspect(row)
    return any(state.attrs[n].history.has_changes() for n in names)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    procedures = []
    designations = []
    for row in list(session.new) + list(session.dirty):
        if isinstance(row, Procedure):
            if row.status in OPENED and (row in session.new or _changed(row, _WATCHED_PROCEDURE)):
                procedures.append(row)
        elif isinstance(row, Designation) and (row in session.new or _changed(row, ("status",))):
            designations.append(row)
    if procedures or designations:
        outbox.stage_risk(
            session,
            buyers=[p.buyer_org_id for p in procedures],
            procedures=[p.id for p in procedures],
            designations=[d.id for d in designations],
        )


_installed = False


def install() -> None:
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _before_flush)
        _installed = True


install()
