"""Price changes of a listing after review: a new price within the reviewed limit sells at once; a new
reference price, or a price above the reviewed reference × (1 + margin), waits for the center as a price
request while the old price sells."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.agreement_queries import check_ceiling
from catalog.browse import paged
from catalog.models import (
    PRICE_REQUEST_STATUS_LABELS,
    Listing,
    ListingStatus,
    PriceChange,
    PriceRequest,
    PriceRequestStatus,
)
from catalog.service import (
    audit,
    check_price,
    locked_listing,
    parse_amount,
    reason_of,
    recheck_price,
    record_price,
)
from catalog.structs import PriceIn, ReviewIn
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried, retried_if_rolled_back
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from mall.core.fields import text
from mall.core.money import round_money
from mall.core.settings import Settings
from search_index import sync as search_sync


@retried_if_rolled_back
async def change_price(
    db: Database,
    who: Principal,
    listing_id: uuid.UUID,
    price_raw: str,
    reference_raw: str,
    *,
    margin: Decimal,
    ceiling: Decimal | None = None,
    note: str = "",
    reference_source: str | None = None,
) -> tuple[Listing, PriceRequest | None]:
    """A supplier changes the price of a listing. The new price is checked against the price rule like
    a new listing; a refused change leaves everything as it was.

    A listing the center has approved (on sale or taken off sale) keeps its reviewed price: a new
    reference price (or its source), or a price above the reviewed reference × (1 + margin), becomes
    a pending `PriceRequest` for the center (returned), replacing one that was pending, while the
    old price stays in force. Anything else applies at once (returned with None) and is kept in
    the history; a request already pending is left waiting."""
    errors: list[str] = []
    price = parse_amount(price_raw, "售价", errors)
    reference = parse_amount(reference_raw or "", "参考市场价", errors)
    if ceiling is not None and price >= ceiling:
        errors.append(f"售价应低于分散采购限额标准 {ceiling:,.0f} 元")
    if errors:
        raise InvalidInput("；".join(errors), code="price_invalid")
    note = text(note, "调价说明", fields.PRICE_NOTE_MAX, field="note")
    source = (
        None
        if reference_source is None
        else text(reference_source, "参考价来源", fields.SOURCE_MAX, field="reference_source")
    )
    check_price(price, reference, margin)
    async with db.write() as tx:
        listing = await locked_listing(tx, listing_id, owner=who)
        if listing.status == ListingStatus.FROZEN:
            raise Forbidden("商品已被冻结，不能调价", code="listing_frozen")
        source_changed = source is not None and source != listing.reference_source
        if price == listing.price and reference == listing.reference_price and not source_changed:
            raise Conflict("价格没有变化", code="price_unchanged")
        await check_ceiling(tx.session, listing.brand, listing.spec_model, price)
        now = clock.now()
        reviewed = listing.status in (ListingStatus.LIVE, ListingStatus.DELISTED)
        reviewed_limit = round_money(listing.reference_price * (1 + margin))
        if reviewed and (reference != listing.reference_price or source_changed or price > reviewed_limit):
            previous = await pending_request(tx.session, listing.id)
            if previous is not None:
                previous.status, previous.decided_at = PriceRequestStatus.SUPERSEDED, now
            request = PriceRequest(
                listing_id=listing.id,
                price=price,
                reference_price=reference,
                reference_source=listing.reference_source if source is None else source,
                note=note,
                requested_by=who.user_id,
                requested_at=now,
                status=PriceRequestStatus.PENDING,
                reason="",
            )
            tx.session.add(request)
            await tx.session.flush()
            audit(tx, who, "listing_price_requested", listing.id, f"{price} / {reference}")
            return listing, request
        old_price = listing.price
        listing.price, listing.reference_price, listing.updated_at = price, reference, now
        record_price(tx, listing, previous=old_price, at=now, by=who.user_id, note=note or "调价")
        if source is not None:
            listing.reference_source = source
        audit(tx, who, "listing_price_changed", listing.id, f"{price}")
        if listing.status == ListingStatus.LIVE:
            search_sync.stage(tx, [listing.id])
    return listing, None


async def reprice(
    db: Database, settings: Settings, who: Principal, listing_id: uuid.UUID, data: PriceIn
) -> tuple[Listing, PriceRequest | None]:
    """A price change as the API and the page send it (see `change_price`)."""
    return await change_price(
        db,
        who,
        listing_id,
        data.price,
        data.reference_price,
        margin=settings.price_margin,
        ceiling=settings.decentralized_threshold,
        note=data.note,
        reference_source=data.reference_source,
    )


async def pending_request(session: AsyncSession, listing_id: uuid.UUID) -> PriceRequest | None:
    """The listing's price request waiting for the center, if any (callers hold the listing's lock)."""
    return (
        await session.execute(
            select(PriceRequest).where(
                PriceRequest.listing_id == listing_id, PriceRequest.status == PriceRequestStatus.PENDING
            )
        )
    ).scalar_one_or_none()


@retried
async def review_price_request(
    db: Database, who: Principal, request_id: uuid.UUID, *, approve: bool, reason: str, margin: Decimal
) -> tuple[Listing, PriceRequest]:
    """The center approves a pending price change (it applies now, and is kept in the price history)
    or rejects it with a reason the supplier sees (the reviewed price stays). Approval re-checks the
    price rule and the agreement ceilings as they are now."""
    reason = reason_of(reason, "驳回原因", required=not approve, missing="驳回调价时请填写原因")
    async with db.write() as tx:
        request = await tx.session.get(PriceRequest, request_id)
        if request is None:
            raise NotFound("调价申请不存在", code="price_request_not_found")
        # The listing's lock first, as on every path that writes a listing's price; then the
        # request as it is now (a concurrent withdrawal or replacement held the same lock).
        listing = await tx.session.get(
            Listing,
            request.listing_id,
            with_for_update={"of": Listing, "key_share": True},
            populate_existing=True,
        )
        assert listing is not None
        await tx.session.refresh(request)
        if request.status != PriceRequestStatus.PENDING:
            raise Conflict(
                f"该调价申请{PRICE_REQUEST_STATUS_LABELS.get(request.status, request.status)}，不能再审核",
                code="price_request_closed",
                current_status=request.status,
            )
        now = clock.now()
        before = {"price": listing.price, "reference_price": listing.reference_price}
        if approve:
            await recheck_price(tx.session, listing, margin, request.price, request.reference_price)
            old_price = listing.price
            listing.price, listing.reference_price = request.price, request.reference_price
            note = request.note or "调价（经采购中心审核）"
            record_price(tx, listing, previous=old_price, at=now, by=request.requested_by, note=note)
            listing.reference_source, listing.updated_at = request.reference_source, now
            request.status = PriceRequestStatus.APPROVED
            if listing.status == ListingStatus.LIVE:
                search_sync.stage(tx, [listing.id])
        else:
            request.status, request.reason = PriceRequestStatus.REJECTED, reason
        request.decided_by, request.decided_at = who.user_id, now
        audit(
            tx,
            who,
            "listing_price_approved" if approve else "listing_price_rejected",
            listing.id,
            reason if not approve else f"{request.price}",
            before=before,
            after={
                "price": listing.price,
                "reference_price": listing.reference_price,
                "request": request.id,
                "requested_price": request.price,
                "decision": request.status,
            },
        )
    return listing, request


async def review_price(
    db: Database, settings: Settings, who: Principal, request_id: uuid.UUID, data: ReviewIn
) -> tuple[Listing, PriceRequest]:
    """The center's decision on a price change as the API and the page send it."""
    return await review_price_request(
        db, who, request_id, approve=data.approves(), reason=data.reason, margin=settings.price_margin
    )


@retried
async def withdraw_price_request(db: Database, who: Principal, listing_id: uuid.UUID) -> Listing:
    """The supplier takes back its pending price change; the listing stays as it is."""
    async with db.write() as tx:
        listing = await locked_listing(tx, listing_id, owner=who)
        request = await pending_request(tx.session, listing.id)
        if request is None:
            raise Conflict("该商品没有待审核的调价", code="no_price_request")
        request.status, request.decided_by, request.decided_at = (
            PriceRequestStatus.WITHDRAWN,
            who.user_id,
            clock.now(),
        )
        audit(tx, who, "listing_price_withdrawn", listing.id)
    return listing


async def price_review_queue(
    session: AsyncSession, page: int, per_page: int
) -> tuple[int, list[PriceRequest]]:
    """Pending price changes, oldest first, with their listings."""
    stmt = select(PriceRequest).where(PriceRequest.status == PriceRequestStatus.PENDING)
    return await paged(session, stmt, (PriceRequest.requested_at, PriceRequest.id), page, per_page)


async def current_price_requests(
    session: AsyncSession, listing_ids: list[uuid.UUID]
) -> dict[uuid.UUID, PriceRequest]:
    """What a supplier should see about each listing's latest price request: the pending one, or a
    rejection (with its reason) that no price change has followed since."""
    if not listing_ids:
        return {}
    newest = (
        select(PriceRequest.listing_id, func.max(PriceRequest.requested_at).label("at"))
        .where(PriceRequest.listing_id.in_(listing_ids))
        .group_by(PriceRequest.listing_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(PriceRequest).join(
                newest,
                (newest.c.listing_id == PriceRequest.listing_id) & (newest.c.at == PriceRequest.requested_at),
            )
        )
    ).scalars()
    last_change = dict(
        (
            await session.execute(
                select(PriceChange.listing_id, func.max(PriceChange.at))
                .where(PriceChange.listing_id.in_(listing_ids))
                .group_by(PriceChange.listing_id)
            )
        ).all()
    )
    out: dict[uuid.UUID, PriceRequest] = {}
    for r in rows.unique():
        changed = last_change.get(r.listing_id)
        if r.status == PriceRequestStatus.PENDING or (
            r.status == PriceRequestStatus.REJECTED
            and r.decided_at is not None
            and (changed is None or r.decided_at >= changed)
        ):
            out[r.listing_id] = r
    return out
