"""Notices of the catalogue and of inquiries and auctions, staged by the code that makes the change
(catalog.service, bidding.publish, bidding.offers) in its transaction. They say only what the
recipient may see on the page they link to: an invitation names the procedure, never the others
invited; being outbid says neither by whom nor by how much."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.notify.models import Kind
from mall.notify.stage import for_org, stage

PROCEDURE_KINDS = {"inquiry": "询价", "auction": "竞价"}


def listing_returned(
    session: AsyncSession, supplier_org_id: uuid.UUID, listing_id: uuid.UUID, name: str, reason: str
) -> None:
    """The center returned a submitted listing: the supplier edits and submits it again."""
    stage(
        session,
        [
            for_org(
                supplier_org_id,
                Kind.LISTING_RETURNED,
                f"商品审核未通过：{name}",
                f"退回原因：{reason}。请修改后重新提交审核。",
                f"/supplier/listings/{listing_id}/edit",
                ref=f"listing:{listing_id}",
            )
        ],
    )


def invited(
    session: AsyncSession,
    supplier_org_ids: Iterable[uuid.UUID],
    procedure_id: uuid.UUID,
    kind: str,
    title: str,
    ends_at: datetime,
) -> None:
    """Each invited supplier is asked to quote (or bid) before the end."""
    word = PROCEDURE_KINDS.get(kind, "采购")
    stage(
        session,
        [
            for_org(
                org_id,
                Kind.INVITED,
                f"{word}邀请：{title}",
                f"采购人邀请贵单位参加本次{word}，截止时间 {clock.local_display(ends_at)}。",
                f"/procedures/{procedure_id}",
                ref=f"procedure:{procedure_id}",
            )
            for org_id in sorted(set(supplier_org_ids))
        ],
    )


def outbid(
    session: AsyncSession, supplier_org_ids: Iterable[uuid.UUID], procedure_id: uuid.UUID, title: str
) -> None:
    """Suppliers whose lowest bid was the room's lowest and has just been beaten. At most one unread
    such notice per supplier and room (`collapse`): a busy room does not flood anyone."""
    stage(
        session,
        [
            for_org(
                org_id,
                Kind.OUTBID,
                f"您的报价已不是最低：{title}",
                "竞价室中出现了更低的报价，如需继续竞争请进入竞价室出价。",
                f"/procedures/{procedure_id}",
                ref=f"procedure:{procedure_id}",
                collapse=True,
            )
            for org_id in sorted(set(supplier_org_ids))
        ],
    )


def sanction_decided(
    session: AsyncSession,
    supplier_org_id: uuid.UUID,
    listing_id: uuid.UUID,
    name: str,
    decision: str,
    by: str,
    reason: str,
) -> None:
    """The center or the regulator froze or delisted a supplier's listing: the decision and its
    reason, as the supplier's own listing page shows them."""
    who = "财政监管部门" if by == "regulator" else "集中采购机构"
    stage(
        session,
        [
            for_org(
                supplier_org_id,
                Kind.SANCTION_DECIDED,
                f"处理决定：商品「{name}」已{decision}",
                f"{who}{decision}了该商品。原因：{reason}",
                f"/supplier/listings/{listing_id}/edit",
                ref=f"listing:{listing_id}",
            )
        ],
    )


def case_opened(
    session: AsyncSession, org_id: uuid.UUID, order_id: uuid.UUID, order_no: str, what: str, key: str
) -> None:
    """An order entered the regulator's watch list (a contract not filed in time, a payment overdue):
    the party that must act is told, once per order and cause (`key`)."""
    stage(
        session,
        [
            for_org(
                org_id,
                Kind.CASE_OPENED,
                f"监管关注：订单 {order_no} {what}",
                f"该订单因「{what}」已列入财政监管部门的监管清单，请尽快办理。",
                f"/orders/{order_id}",
                ref=f"order:{order_id}",
                key=key,
            )
        ],
    )
