"""What a buyer uses besides the search: product photos (the supplier's, in the shared file store),
favourites (收藏 / 常购清单), the comparison of a few products side by side and its 比价单 — the
comparison frozen as it stood, with the date and the price sources, printed or as PDF for the
purchase file."""

from __future__ import annotations

import asyncio
import io
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import media
from catalog.categories import name_of
from catalog.models import ComparisonSheet, Favourite, Listing, ListingImage, ListingStatus
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from mall.core.files import FileStore
from mall.core.money import money_str, quantity_str

IMAGES_MAX = 6  # photos per listing
COMPARE_MAX = 4  # products compared side by side
FAVOURITES_MAX = 500  # per user


# ------------------------------------------------------------------ photos


def image_key(image_id: uuid.UUID, size: str) -> str:
    return f"listing-images/{image_id}/{size}.jpg"


async def _own_listing(s: AsyncSession, who: Principal, listing_id: uuid.UUID) -> Listing:
    listing = await s.get(Listing, listing_id)
    if listing is None or who.role != "supplier" or listing.supplier_org_id != who.org_id:
        raise NotFound("商品不存在", code="listing_not_found")
    return listing


async def add_image(
    db: Database, store: FileStore, who: Principal, listing_id: uuid.UUID, data: bytes
) -> ListingImage:
    """The supplier adds a photo to its listing: checked and re-encoded (catalog.media), its three
    sizes put in the file store, then the row; at most IMAGES_MAX per listing."""
    async with db.read() as s:
        await _own_listing(s, who, listing_id)
        count = await s.scalar(select(func.count()).where(ListingImage.listing_id == listing_id)) or 0
    if count >= IMAGES_MAX:
        raise Conflict(f"每件商品至多 {IMAGES_MAX} 张图片，请先删除不用的图片", code="too_many_images")
    processed = await asyncio.to_thread(media.process_image, data)
    image_id = uuid.uuid4()
    for size, body in processed.sizes.items():
        await store.put(image_key(image_id, size), body, content_type="image/jpeg")
    async with db.write() as tx:
        s = tx.session
        await _own_listing(s, who, listing_id)
        last = await s.scalar(
            select(func.max(ListingImage.position)).where(ListingImage.listing_id == listing_id)
        )
        count = await s.scalar(select(func.count()).where(ListingImage.listing_id == listing_id)) or 0
        if count >= IMAGES_MAX:  # two uploads at once: the later one is refused (its files stay unused)
            raise Conflict(f"每件商品至多 {IMAGES_MAX} 张图片", code="too_many_images")
        image = ListingImage(
            id=image_id,
            listing_id=listing_id,
            position=(last or 0) + 1,
            original_key=image_key(image_id, "original"),
            display_key=image_key(image_id, "display"),
            thumb_key=image_key(image_id, "thumb"),
            width=processed.width,
            height=processed.height,
            uploaded_by=who.user_id,
            created_at=clock.now(),
        )
        s.add(image)
    return image


async def remove_image(db: Database, store: FileStore, who: Principal, image_id: uuid.UUID) -> None:
    async with db.write() as tx:
        image = await tx.session.get(ListingImage, image_id)
        if image is None:
            raise NotFound("图片不存在", code="image_not_found")
        await _own_listing(tx.session, who, image.listing_id)
        keys = [image.original_key, image.display_key, image.thumb_key]
        await tx.session.delete(image)
    for key in keys:
        await store.delete(key)


async def images_of(s: AsyncSession, listing_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[ListingImage]]:
    ids = list(listing_ids)
    out: dict[uuid.UUID, list[ListingImage]] = {i: [] for i in ids}
    if ids:
        rows = await s.execute(
            select(ListingImage)
            .where(ListingImage.listing_id.in_(ids))
            .order_by(ListingImage.listing_id, ListingImage.position)
        )
        for image in rows.scalars():
            out[image.listing_id].append(image)
    return out


async def image_for(
    s: AsyncSession, viewer: Principal | None, image_id: uuid.UUID, size: str
) -> tuple[str, bool]:
    """The file key of a photo `viewer` may see, and whether it is public: anyone sees a listing on
    sale's (public: a shared cache may keep it); its supplier, the center and the regulator any."""
    if size not in media.SIZES:
        raise NotFound("图片不存在", code="image_not_found")
    row = (
        await s.execute(
            select(ListingImage, Listing.status, Listing.supplier_org_id)
            .join(Listing, Listing.id == ListingImage.listing_id)
            .where(ListingImage.id == image_id)
        )
    ).first()
    if row is None:
        raise NotFound("图片不存在", code="image_not_found")
    image, status, supplier = row
    insider = viewer is not None and (viewer.role in ("center", "regulator") or viewer.org_id == supplier)
    if status != ListingStatus.LIVE and not insider:
        raise NotFound("图片不存在", code="image_not_found")
    return str(getattr(image, f"{size}_key")), status == ListingStatus.LIVE


# ------------------------------------------------------------------ favourites


def _buyer(who: Principal) -> None:
    if who.role != "buyer":
        raise Forbidden("只有采购人可以收藏商品", code="forbidden")


async def set_favourite(db: Database, who: Principal, listing_id: uuid.UUID, on: bool) -> bool:
    """收藏 or 取消收藏 (idempotent either way); the listing must exist. True if now a favourite."""
    _buyer(who)
    async with db.write() as tx:
        s = tx.session
        if await s.get(Listing, listing_id) is None:
            raise NotFound("商品不存在", code="listing_not_found")
        if not on:
            await s.execute(
                delete(Favourite).where(Favourite.user_id == who.user_id, Favourite.listing_id == listing_id)
            )
            return False
        if await s.scalar(
            select(Favourite.id).where(Favourite.user_id == who.user_id, Favourite.listing_id == listing_id)
        ):
            return True
        if (
            await s.scalar(select(func.count()).where(Favourite.user_id == who.user_id)) or 0
        ) >= FAVOURITES_MAX:
            raise Conflict(f"收藏至多 {FAVOURITES_MAX} 件商品", code="too_many_favourites")
        s.add(Favourite(user_id=who.user_id, listing_id=listing_id, created_at=clock.now()))
        try:
            await s.flush()
        except IntegrityError:  # the same click twice at once: already a favourite
            return True
    return True


async def favourites_of(s: AsyncSession, who: Principal) -> list[Listing]:
    """The user's favourites, the latest first, whatever their state now (a delisted one says so)."""
    rows = await s.execute(
        select(Listing)
        .join(Favourite, Favourite.listing_id == Listing.id)
        .where(Favourite.user_id == who.user_id)
        .order_by(Favourite.created_at.desc(), Favourite.id)
        .limit(FAVOURITES_MAX)
    )
    return list(rows.scalars().unique())


async def favourite_ids(
    s: AsyncSession, who: Principal | None, listing_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    ids = list(listing_ids)
    if who is None or who.role != "buyer" or not ids:
        return set()
    rows = await s.execute(
        select(Favourite.listing_id).where(Favourite.user_id == who.user_id, Favourite.listing_id.in_(ids))
    )
    return set(rows.scalars())


# ------------------------------------------------------------------ comparison and 比价单


def basket(raw: Any) -> list[uuid.UUID]:
    """The comparison basket as kept in the session: listing ids, at most COMPARE_MAX, once each."""
    out: list[uuid.UUID] = []
    for x in raw if isinstance(raw, list) else []:
        try:
            i = uuid.UUID(str(x))
        except ValueError:
            continue
        if i not in out:
            out.append(i)
    return out[:COMPARE_MAX]


async def compared(s: AsyncSession, ids: list[uuid.UUID]) -> list[Listing]:
    """The basket's listings on sale, in the basket's order."""
    if not ids:
        return []
    found = {
        x.id: x
        for x in (
            await s.execute(select(Listing).where(Listing.id.in_(ids), Listing.status == ListingStatus.LIVE))
        )
        .scalars()
        .unique()
    }
    return [found[i] for i in ids if i in found]


def snapshot(listings: list[Listing], at: datetime, who: Principal) -> dict[str, Any]:
    """The comparison as it stands now: what the 比价单 keeps and shows, never re-read."""
    lowest = min((x.price for x in listings), default=None)
    return {
        "made_at": clock.rfc3339(at),
        "made_at_local": clock.local_display(at),
        "buyer": {"name": who.org_name, "credit_code": who.org_credit_code},
        "made_by": who.display_name,
        "items": [
            {
                "listing_id": str(x.id),
                "name": x.name,
                "brand": x.brand,
                "spec_model": x.spec_model,
                "category_code": x.category_code,
                "category_name": name_of(x.category_code),
                "unit": x.unit,
                "supplier": x.supplier.name,
                "supplier_credit_code": x.supplier.credit_code,
                "price": money_str(x.price),
                "reference_price": money_str(x.reference_price),
                "reference_source": x.reference_source,
                "stock": quantity_str(x.stock),
                "sales_count": x.sales_count,
                "params": [list(p) for p in x.params or []],
                "lowest": x.price == lowest,
            }
            for x in listings
        ],
    }


async def make_sheet(db: Database, who: Principal, ids: list[uuid.UUID]) -> ComparisonSheet:
    """A buyer freezes the comparison into a numbered 比价单 (at least two products on sale)."""
    _buyer(who)
    assert who.org_id is not None
    async with db.write() as tx:
        listings = await compared(tx.session, ids)
        if len(listings) < 2:
            raise InvalidInput("比价单至少需要两件在售商品，请先加入对比", code="compare_too_few")
        now = clock.now()
        sheet = ComparisonSheet(
            id=uuid.uuid4(),
            number=f"BJ{clock.local_date(now):%Y%m%d}{secrets.randbelow(10**8):08d}",
            org_id=who.org_id,
            user_id=who.user_id,
            created_at=now,
            body=snapshot(listings, now, who),
        )
        tx.session.add(sheet)
    return sheet


async def get_sheet(s: AsyncSession, who: Principal, sheet_id: uuid.UUID) -> ComparisonSheet:
    """A 比价单 of the caller's unit; the center and the regulator read any (the purchase file)."""
    sheet = await s.get(ComparisonSheet, sheet_id)
    if sheet is None or not (who.role in ("center", "regulator") or who.org_id == sheet.org_id):
        raise NotFound("比价单不存在", code="sheet_not_found")
    return sheet


async def sheets_of(s: AsyncSession, who: Principal, limit: int = 50) -> list[ComparisonSheet]:
    rows = await s.execute(
        select(ComparisonSheet)
        .where(ComparisonSheet.org_id == who.org_id)
        .order_by(ComparisonSheet.created_at.desc(), ComparisonSheet.id)
        .limit(limit)
    )
    return list(rows.scalars())


def sheet_pdf(sheet: ComparisonSheet) -> bytes:
    """The 比价单 as an A4 landscape PDF, from its snapshot only. ReportLab's built-in CID font
    (STSong-Light) sets the Chinese: no font file is shipped or embedded."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    body = sheet.body
    base = ParagraphStyle("base", fontName="STSong-Light", fontSize=9, leading=12)
    title = ParagraphStyle("title", parent=base, fontSize=16, leading=22, alignment=1)

    def p(text: object) -> Paragraph:
        from xml.sax.saxutils import escape

        return Paragraph(escape(str(text)), base)

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"比价单 {sheet.number}",
    )
    rows: list[list[Any]] = [
        [
            p(h)
            for h in (
                "序号",
                "商品",
                "品牌 / 规格型号",
                "品目",
                "供应商",
                "卖场价（元）",
                "参考市场价（元）",
                "参考价来源",
                "库存",
                "成交笔数",
            )
        ]
    ]
    for n, it in enumerate(body["items"], start=1):
        rows.append(
            [
                p(n),
                p(it["name"] + ("（最低价）" if it["lowest"] else "")),
                p(f"{it['brand']} / {it['spec_model']}"),
                p(f"{it['category_code']} {it['category_name']}"),
                p(f"{it['supplier']}\n{it['supplier_credit_code']}"),
                p(f"{it['price']} / {it['unit']}"),
                p(it["reference_price"]),
                p(it["reference_source"] or "未注明"),
                p(it["stock"]),
                p(it["sales_count"]),
            ]
        )
    table = Table(
        rows,
        repeatRows=1,
        colWidths=[10 * mm, 48 * mm, 42 * mm, 30 * mm, 42 * mm, 24 * mm, 24 * mm, 38 * mm, 14 * mm, 14 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story: list[Any] = [
        Paragraph("政府采购电子卖场 比价单", title),
        Spacer(1, 4 * mm),
        p(f"编号：{sheet.number}    比价时间：{body['made_at_local']}（北京时间）"),
        p(
            f"采购单位：{body['buyer']['name']}（{body['buyer']['credit_code']}）    经办人：{body['made_by']}"
        ),
        Spacer(1, 3 * mm),
        table,
        Spacer(1, 4 * mm),
        p(
            "说明：以上为比价时电子卖场在售商品的挂牌价、供应商申报的参考市场价及其来源，由电子卖场按当时数据生成，供采购文件留存。"
        ),
    ]
    for it in body["items"]:
        if it["params"]:
            story.append(Spacer(1, 2 * mm))
            story.append(p(f"{it['name']} 规格参数：" + "；".join(f"{k}：{v}" for k, v in it["params"])))
    doc.build(story)
    return buf.getvalue()
