"""Catalogue pages: browse goods, a product's page, a supplier's own listings."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, MultipartBody, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import select

from catalog import categories, imports, prices, service
from catalog import search as catalog_search
from catalog.models import LISTING_STATUS_LABELS, Listing, ListingStatus, PriceRequest
from catalog.search import Search
from catalog.service import ListingDraft, ListingQuery
from mall.core import files
from mall.core.auth import PUBLIC, allow
from mall.core.errors import DomainError, NotFound
from mall.core.models import JobStatus
from mall.web.deps import DB, Config
from mall.web.helpers import (
    act,
    came_from,
    current_user,
    flash,
    keep_form,
    page_no,
    pages_of,
    pop_form,
    render,
)
from search_index.backend import SearchQuery, SearchResult

# The top-level goods classes shown as quick filters on the goods page.
QUICK_CATEGORIES = [
    ("A02010105", "台式计算机"),
    ("A02010108", "便携式计算机"),
    ("A02010104", "服务器"),
    ("A02021000", "打印机"),
    ("A02020000", "办公设备"),
    ("A05010000", "家具"),
    ("A02091000", "电视设备"),
]


@get("/goods", opt=PUBLIC, include_in_schema=False)
async def goods_page(request: Request[Any, Any, Any], db: DB, search: Search) -> Template:
    """The mall's search: words, filters, facets and sorting from the search engine; the cards'
    prices and stock read fresh from the database."""
    p = {k: str(v) for k, v in request.query_params.items()}
    raw = catalog_search.RawParams(
        **{
            k: p.get(k, "")
            for k in ("q", "category", "brand", "supplier", "price_min", "price_max", "in_stock")
        },
        sort=p.get("sort") or "relevance",
        page=p.get("page") or "1",
        per_page="24",
    )
    errors: list[str] = []
    status_code = 200
    try:
        query = catalog_search.parse(raw)
    except DomainError as exc:
        errors.append(exc.detail)
        if exc.extra.get("parameter") == "q":
            # Refused as the API refuses it (400): nothing is searched with a shortened query.
            status_code = 400
            query = SearchQuery(per_page=24)
        else:  # a bad filter is dropped; the words (already checked) are still searched
            query = SearchQuery(q=unicodedata.normalize("NFKC", raw.q).strip(), per_page=24)
    unavailable = False
    result = SearchResult(total=0, hits=[], facets={})
    if status_code == 200:
        try:
            result = await catalog_search.run(search, query)
        except DomainError as exc:
            errors.append(exc.detail)
            unavailable = True
    async with db.read() as s:
        ids = [uuid.UUID(h.id) for h in result.hits]
        fresh = (
            {x.id: x for x in (await s.execute(select(Listing).where(Listing.id.in_(ids)))).scalars()}
            if ids
            else {}
        )
        supplier_names = await catalog_search.supplier_names(s, list(result.facets.get("supplier", {})))
    # the index follows the catalogue within a moment; a listing taken off sale meanwhile is not shown
    cards = [
        (h, fresh[uuid.UUID(h.id)])
        for h in result.hits
        if uuid.UUID(h.id) in fresh and fresh[uuid.UUID(h.id)].status == ListingStatus.LIVE
    ]
    keep = {k: v for k, v in p.items() if v and k != "page"}

    def link(**change: str | None) -> str:
        params = {**keep, **{k: v for k, v in change.items() if v is not None}}
        for k, v in change.items():
            if v is None:
                params.pop(k, None)
        return "/goods" + ("?" + urlencode(params) if params else "")

    category_facet = [
        (code, categories.name_of(code) or code, n)
        for code, n in sorted(result.facets.get("category", {}).items(), key=lambda kv: -kv[1])[:12]
    ]
    brand_facet = sorted(result.facets.get("brand", {}).items(), key=lambda kv: -kv[1])[:15]
    supplier_facet = [
        (sid, supplier_names.get(sid, "供应商"), n)
        for sid, n in sorted(result.facets.get("supplier", {}).items(), key=lambda kv: -kv[1])[:10]
    ]
    band_facet = [
        (band, catalog_search.PRICE_BAND_LABELS[band], result.facets.get("price_band", {}).get(band, 0))
        for band in catalog_search.PRICE_BAND_LABELS
        if result.facets.get("price_band", {}).get(band)
    ]
    return render(
        request,
        "goods.html",
        status_code=status_code,
        cards=cards,
        total=result.total,
        query=query,
        raw=raw,
        qs=urlencode(keep),
        pages=min(pages_of(result.total, query.per_page), catalog_search.MAX_WINDOW // query.per_page),
        quick=QUICK_CATEGORIES,
        errors=errors,
        unavailable=unavailable,
        link=link,
        sorts=catalog_search.SORT_LABELS,
        category_facet=category_facet,
        brand_facet=brand_facet,
        supplier_facet=supplier_facet,
        supplier_label=supplier_names.get(query.supplier, "") if query.supplier else "",
        band_facet=band_facet,
        band_ranges=catalog_search.PRICE_BAND_RANGES,
        category_label=categories.name_of(query.category),
    )


@get("/goods/{listing_id:uuid}", opt=PUBLIC, include_in_schema=False)
async def goods_detail(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> Template:
    """A product: its details, the same model from other suppliers side by side (比价), and its
    price history. The center, the regulator and the listing's supplier also see it when not on sale."""
    me = current_user(request)
    async with db.read() as s:
        listing = await service.get_listing(s, listing_id, live_only=False)
        insider = me is not None and (
            me.role in ("center", "regulator") or me.org_id == listing.supplier_org_id
        )
        if listing.status != ListingStatus.LIVE and not insider:
            raise NotFound("商品不存在或已下架", code="listing_not_found")
        offers = await service.same_model_offers(s, listing)
        history = await service.price_history(s, listing.id)
        # A waiting price change is the supplier's and the reviewers' business, not the public's.
        price_request = (
            (await prices.current_price_requests(s, [listing.id])).get(listing.id) if insider else None
        )
        _, same_category = await service.browse(
            s, ListingQuery(category=listing.category_code, per_page=6, sort="sales")
        )
    others = [x for x in same_category if x.id != listing.id and x.model_key != listing.model_key][:5]
    return render(
        request,
        "goods_detail.html",
        listing=listing,
        offers=offers,
        history=history,
        others=others,
        insider=insider,
        price_request=price_request,
        status_labels=LISTING_STATUS_LABELS,
        category_label=categories.name_of(listing.category_code),
    )


@post("/goods/{listing_id:uuid}/moderation", opt=allow("center", "regulator"), include_in_schema=False)
async def moderation(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    action = data.get("action", "")
    label = service.MODERATION.get(action, ((), "处理"))[1]
    return await act(
        request,
        lambda: service.moderate(
            db, who, listing_id, action, data.get("reason", ""), margin=settings.price_margin
        ),
        f"已{label}",
        f"/goods/{listing_id}",
    )


LISTING_FIELDS = (
    "name",
    "brand",
    "spec_model",
    "category_code",
    "unit",
    "price",
    "reference_price",
    "stock",
    "reference_source",
    "description",
)


@get("/supplier/listings", opt=allow("supplier"), include_in_schema=False)
async def my_listings(
    request: Request[Any, Any, Any],
    db: DB,
    settings: Config,
    page: FromQuery[str] = "1",
    status: FromQuery[str] = "",
) -> Template:
    who = current_user(request)
    assert who and who.org_id
    pg = page_no(page)
    status = status if status in LISTING_STATUS_LABELS else ""
    async with db.read() as s:
        total, rows = await service.listings_of_supplier(s, who.org_id, pg, 30, status=status)
        counts = await service.status_counts(s, who.org_id)
        requests = await prices.current_price_requests(s, [x.id for x in rows])
    recent = await imports.imports_of(db, who, limit=5)
    return render(
        request,
        "supplier_listings.html",
        rows=rows,
        total=total,
        page=pg,
        pages=pages_of(total, 30),
        status=status,
        counts=counts,
        status_labels=LISTING_STATUS_LABELS,
        margin=settings.price_margin,
        form=pop_form(request),
        requests=requests,
        imports=recent,
        import_labels=imports.STATUS_LABELS,
    )


def _draft_of(data: dict[str, str]) -> ListingDraft:
    return ListingDraft(**{f: (data.get(f) or "").strip() for f in LISTING_FIELDS})


@post("/supplier/listings", opt=allow("supplier"), include_in_schema=False)
async def create_listing(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    assert who
    draft = _draft_of(data)
    submit = data.get("submit", "1") != "0"
    try:
        listing = await service.create_listing(
            db,
            who,
            draft,
            margin=settings.price_margin,
            ceiling=settings.decentralized_threshold,
            submit=submit,
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, {f: getattr(draft, f) for f in LISTING_FIELDS})
        return Redirect("/supplier/listings", status_code=303)
    if submit:
        flash(request, f"商品「{listing.name}」已提交审核，采购中心审核通过后上架")
    else:
        flash(request, f"商品「{listing.name}」已存为草稿")
    return Redirect("/supplier/listings", status_code=303)


@get("/supplier/listings/{listing_id:uuid}/edit", opt=allow("supplier"), include_in_schema=False)
async def edit_listing_page(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> Template:
    who = current_user(request)
    assert who
    async with db.read() as s:
        listing = await service.get_listing(s, listing_id, live_only=False)
    if listing.supplier_org_id != who.org_id:
        raise NotFound("商品不存在", code="listing_not_found")
    form = pop_form(request) or {
        f: (str(getattr(listing, f)) if f != "stock" else str(int(listing.stock))) for f in LISTING_FIELDS
    }
    return render(
        request,
        "supplier_listing_edit.html",
        listing=listing,
        form=form,
        status_labels=LISTING_STATUS_LABELS,
        margin=settings.price_margin,
    )


@post("/supplier/listings/{listing_id:uuid}/edit", opt=allow("supplier"), include_in_schema=False)
async def edit_listing(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    draft = _draft_of(data)
    submit = data.get("submit", "1") != "0"
    try:
        await service.update_listing(
            db,
            who,
            listing_id,
            draft,
            margin=settings.price_margin,
            ceiling=settings.decentralized_threshold,
            submit=submit,
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, {f: getattr(draft, f) for f in LISTING_FIELDS})
        return Redirect(f"/supplier/listings/{listing_id}/edit", status_code=303)
    flash(request, "已重新提交审核" if submit else "草稿已保存")
    return Redirect("/supplier/listings", status_code=303)


@post("/supplier/listings/{listing_id:uuid}/price", opt=allow("supplier"), include_in_schema=False)
async def change_price(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    source = data.get("reference_source")
    try:
        listing, waiting = await prices.change_price(
            db,
            who,
            listing_id,
            data.get("price", ""),
            data.get("reference_price", ""),
            margin=settings.price_margin,
            ceiling=settings.decentralized_threshold,
            note=data.get("note", ""),
            reference_source=source,
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        return Redirect(came_from(request, "/supplier/listings"), status_code=303)
    if waiting is not None:
        flash(
            request,
            f"调价（售价 {waiting.price:,.2f} 元，参考价 {waiting.reference_price:,.2f} 元）已提交采购中心审核；"
            f"审核通过前仍按原价 {listing.price:,.2f} 元销售",
        )
    else:
        flash(request, "价格已调整，已记入价格历史")
    return Redirect("/supplier/listings", status_code=303)


@post(
    "/supplier/listings/{listing_id:uuid}/price-request/withdraw",
    opt=allow("supplier"),
    include_in_schema=False,
)
async def withdraw_price_request(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB
) -> Redirect:
    who = current_user(request)
    assert who
    return await act(
        request,
        lambda: prices.withdraw_price_request(db, who, listing_id),
        "已撤回待审核的调价，商品价格不变",
        "/supplier/listings",
    )


@post("/supplier/listings/{listing_id:uuid}/status", opt=allow("supplier"), include_in_schema=False)
async def listing_status(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    status = data.get("status", "")
    ok = "商品已下架" if status == ListingStatus.DELISTED else "商品已重新上架"
    return await act(
        request,
        lambda: service.set_listing_status(db, who, listing_id, status, margin=settings.price_margin),
        ok,
        "/supplier/listings",
    )


@post("/supplier/imports", opt=allow("supplier"), include_in_schema=False)
async def upload_import(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: MultipartBody[dict[str, Any]]
) -> Redirect:
    who = current_user(request)
    assert who
    upload = data.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        flash(request, "请选择要上传的 CSV 或 XLSX 文件", "error")
        return Redirect("/supplier/listings", status_code=303)

    # Stored, not parsed: the job reads it (one byte past the cap is enough to refuse it).
    content = await upload.read(imports.MAX_BYTES + 1)
    try:
        batch = await imports.start_import(
            db,
            files.store_for(settings, db),
            who,
            upload.filename,
            content,
            strict=str(data.get("strict", "")) in ("1", "on"),
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        return Redirect("/supplier/listings", status_code=303)
    flash(request, f"文件「{batch.filename}」已上传，正在后台读取和校验")
    return Redirect(f"/supplier/imports/{batch.id}", status_code=303)


@get("/supplier/imports/{import_id:uuid}", opt=allow("supplier"), include_in_schema=False)
async def import_page(request: Request[Any, Any, Any], import_id: FromPath[uuid.UUID], db: DB) -> Template:
    who = current_user(request)
    assert who
    batch = await imports.get_import(db, who, import_id)
    percent = (
        100
        if batch.status in (JobStatus.DONE, JobStatus.FAILED)
        else (100 * batch.processed // max(batch.total, 1))
    )
    refused = [r for r in batch.report or [] if r[1] == imports.REFUSED][:200]
    return render(
        request,
        "supplier_import.html",
        batch=batch,
        percent=percent,
        refused=refused,
        labels=imports.STATUS_LABELS,
    )


@get("/supplier/imports/{import_id:uuid}/report.csv", opt=allow("supplier"), include_in_schema=False)
async def import_report(
    request: Request[Any, Any, Any], import_id: FromPath[uuid.UUID], db: DB
) -> Response[bytes]:
    who = current_user(request)
    assert who
    batch = await imports.get_import(db, who, import_id)
    return Response(
        imports.report_bytes(batch),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="import-report.csv"'},
    )


@get("/center/listings", opt=allow("center", "regulator"), include_in_schema=False)
async def review_page(
    request: Request[Any, Any, Any],
    db: DB,
    settings: Config,
    page: FromQuery[str] = "1",
    status: FromQuery[str] = "submitted",
) -> Template:
    """The center's review queue (oldest first), the price changes waiting for review, and the
    frozen / delisted listings to follow up."""
    status = status if status in ("submitted", "prices", "frozen", "delisted", "rejected") else "submitted"
    pg = page_no(page)
    price_requests: list[PriceRequest] = []
    rows: list[Listing] = []
    async with db.read() as s:
        if status == ListingStatus.SUBMITTED:
            total, rows = await service.review_queue(s, pg, 20)
        elif status == "prices":
            total, price_requests = await prices.price_review_queue(s, pg, 20)
        else:
            total, rows = await service.listings_by_status(s, status, pg, 20)
        counts = await service.status_counts(s, None)
        waiting_prices, _ = await prices.price_review_queue(s, 1, 1)
    return render(
        request,
        "center_listings.html",
        rows=rows,
        price_requests=price_requests,
        total=total,
        page=pg,
        pages=pages_of(total, 20),
        status=status,
        counts=counts,
        waiting_prices=waiting_prices,
        status_labels=LISTING_STATUS_LABELS,
        margin=settings.price_margin,
    )


@post("/center/prices/{request_id:uuid}", opt=allow("center"), include_in_schema=False)
async def review_price(
    request: Request[Any, Any, Any],
    request_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    approve = data.get("decision") == "approve"
    return await act(
        request,
        lambda: prices.review_price_request(
            db, who, request_id, approve=approve, reason=data.get("reason", ""), margin=settings.price_margin
        ),
        "调价已审核通过，新价格已生效" if approve else "已驳回调价，供应商将看到驳回原因，原价不变",
        "/center/listings?status=prices",
    )


@post("/center/listings/{listing_id:uuid}/review", opt=allow("center"), include_in_schema=False)
async def review_listing(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    approve = data.get("decision") == "approve"
    return await act(
        request,
        lambda: service.review_listing(
            db,
            who,
            listing_id,
            approve=approve,
            reason=data.get("reason", ""),
            margin=settings.price_margin,
            seen_price=data.get("price"),
            seen_reference=data.get("reference_price"),
        ),
        "已审核通过，商品已上架" if approve else "已驳回，供应商将看到驳回原因",
        "/center/listings",
    )


ROUTES = [
    goods_page,
    goods_detail,
    moderation,
    my_listings,
    create_listing,
    edit_listing_page,
    edit_listing,
    change_price,
    withdraw_price_request,
    listing_status,
    upload_import,
    import_page,
    import_report,
    review_page,
    review_price,
    review_listing,
]
