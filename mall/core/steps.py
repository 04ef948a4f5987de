"""Where a piece of business stands and who acts next: the one shape every order, procedure, listing
and application page shows, and the 工作台 lists. Each area computes its own from its states
(mall.orders.steps, bidding.steps, catalog.steps); this module holds the shape and its wording."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from mall.core import clock

# Who acts: the business roles, the platform itself (a job at a deadline), or nobody (finished).
ACTOR_LABELS = {
    "buyer": "采购人",
    "supplier": "供应商",
    "center": "集中采购机构",
    "regulator": "财政监管",
    "platform": "平台（自动）",
}


@dataclass(frozen=True)
class NextStep:
    """The current step (当前环节), who acts next and what they do, and by when.

    `actor` is a key of ACTOR_LABELS, or None once nothing is left to do. `due` is the deadline, if
    a rule sets one; `at_due` says what happens when it passes (auto-cancel, award passed on...)."""

    step: str
    actor: str | None
    action: str
    due: datetime | None = None
    at_due: str = ""

    @property
    def actor_label(self) -> str:
        return ACTOR_LABELS.get(self.actor or "", "")

    @property
    def finished(self) -> bool:
        return self.actor is None

    def overdue(self, now: datetime | None = None) -> bool:
        return self.due is not None and (now or clock.now()) > self.due

    def stance(self, role: str, *, own: bool = True) -> str:
        """How the viewer stands to it: 'yours' to act ("轮到您"), 'waiting' on another, 'finished'.
        `own` is False when the viewer has the actor's role but is not the party meant (another
        supplier's order is not theirs to confirm)."""
        if self.actor is None:
            return "finished"
        if self.actor == role and own:
            return "yours"
        return "waiting"


def end_of_day(d: date) -> datetime:
    """The last instant of a China day: deadlines in days end at midnight in Beijing."""
    return datetime.combine(d, datetime.max.time(), clock.SHANGHAI)
