"""Catalogue API: the 品目 tree and listings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter

from catalog import categories, imports, prices, service, spreadsheet
from catalog import search as catalog_search_service
from catalog.search import Search
from catalog.service import ListingDraft, ListingQuery
from catalog.structs import (
    ListingCreate,
    ListingOut,
    ListingPage,
    PriceIn,
    PriceRequestOut,
    PriceReviewItem,
    PriceReviewPage,
)
from mall.core import fields, files
from mall.core.auth import PUBLIC, allow
from mall.core.errors import InvalidInput, NotFound
from mall.core.fields import SEARCH_MAX, Amount
from mall.core.models import JobStatus
from mall.core.money import MoneyError, money, money_str
from mall.web.deps import DB, Config
from mall.web.helpers import PageNo, me_of


class CategoryOut(msgspec.Struct):
    code: str
    name: str
    parent_code: str | None
    level: int
    type: str
    version: str


@get("/api/categories", opt=PUBLIC, tags=["商品"], summary="品目目录（按上级编码逐级展开）")
async def list_categories(db: DB, parent: FromQuery[str | None] = None) -> list[CategoryOut]:
    async with db.read() as s:
        rows = await categories.children(s, parent)
    return [CategoryOut(c.code, c.name, c.parent_code, c.level, c.type, c.version) for c in rows]


def _price(raw: str | None, name: str) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        return money(raw)
    except MoneyError:
        raise InvalidInput(f"参数 {name} 应为金额", code="invalid_parameter") from None


@get("/api/listings", opt=PUBLIC, tags=["商品"], summary="在售商品（简单筛选）")
async def browse(
    db: DB,
    page: PageNo = 1,
    per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 24,
    # Searched with LIKE in the database, echoed in nothing: the text rules of the search page.
    q: Annotated[str, QueryParameter(max_length=SEARCH_MAX, pattern=fields.SINGLE_LINE_PATTERN)] = "",
    category: Annotated[
        str, QueryParameter(max_length=fields.CATEGORY_CODE_MAX, pattern=fields.SINGLE_LINE_PATTERN)
    ] = "",
    brand: Annotated[
        str, QueryParameter(max_length=fields.SHORT_MAX, pattern=fields.SINGLE_LINE_PATTERN)
    ] = "",
    price_min: FromQuery[str | None] = None,
    price_max: FromQuery[str | None] = None,
    sort: Annotated[str, QueryParameter(pattern="^(newest|price_asc|price_desc|sales)$")] = "newest",
) -> ListingPage:
    query = ListingQuery(
        q=q.strip(),
        category=category.strip(),
        brand=brand.strip(),
        price_min=_price(price_min, "price_min"),
        price_max=_price(price_max, "price_max"),
        sort=sort,
        page=page,
        per_page=per_page,
    )
    async with db.read() as s:
        total, rows = await service.browse(s, query)
    return ListingPage(total, page, per_page, [ListingOut.of(x) for x in rows])


@get("/api/listings/{listing_id:uuid}", opt=PUBLIC, tags=["商品"])
async def listing_detail(listing_id: FromPath[uuid.UUID], db: DB) -> ListingOut:
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing_id))


@post(
    "/api/listings",
    opt=allow("supplier"),
    status_code=201,
    tags=["商品"],
    summary="供应商新增商品（提交审核，或 draft=true 存为草稿）",
)
async def create_listing(
    request: Request[Any, Any, Any], data: JSONBody[ListingCreate], db: DB, settings: Config
) -> ListingOut:
    fields = msgspec.structs.asdict(data)
    as_draft = bool(fields.pop("draft"))
    listing = await service.create_listing(
        db,
        me_of(request),
        ListingDraft(**fields),
        margin=settings.price_margin,
        ceiling=settings.decentralized_threshold,
        submit=not as_draft,
    )
    return await _out(db, listing.id)


async def _out(db: Any, listing_id: uuid.UUID) -> ListingOut:
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing_id, live_only=False))


@put(
    "/api/listings/{listing_id:uuid}", opt=allow("supplier"), tags=["商品"], summary="修改草稿或被驳回的商品"
)
async def update_listing(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    data: JSONBody[ListingCreate],
    db: DB,
    settings: Config,
) -> ListingOut:
    fields = msgspec.structs.asdict(data)
    as_draft = bool(fields.pop("draft"))
    await service.update_listing(
        db,
        me_of(request),
        listing_id,
        ListingDraft(**fields),
        margin=settings.price_margin,
        ceiling=settings.decentralized_threshold,
        submit=not as_draft,
    )
    return await _out(db, listing_id)


@post("/api/listings/{listing_id:uuid}/submit", opt=allow("supplier"), status_code=200, tags=["商品"])
async def submit_listing(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> ListingOut:
    await service.submit_listing(db, me_of(request), listing_id, margin=settings.price_margin)
    return await _out(db, listing_id)


async def _owned_out(db: Any, listing_id: uuid.UUID) -> ListingOut:
    """The listing with what its supplier (or the center) should see about its price requests."""
    async with db.read() as s:
        listing = await service.get_listing(s, listing_id, live_only=False)
        requests = await prices.current_price_requests(s, [listing_id])
        return ListingOut.of(listing, requests.get(listing_id))


@post(
    "/api/listings/{listing_id:uuid}/price",
    opt=allow("supplier"),
    status_code=200,
    tags=["商品"],
    summary="调价：200 已生效；202 待采购中心审核（原价继续有效）",
    description=(
        "新售价按价格规则复核（高于参考市场价上浮比例的上限即拒绝，422 price_above_reference）。"
        "对已审核上架的商品（在售或已下架），变更参考市场价或参考价来源、或售价高于已审核参考价上浮上限的，"
        "不立即生效：应答 202，商品仍按原价销售，price_request 为待审核的调价（status=pending），"
        "由采购中心审核通过后生效、驳回时 reason 写明原因；同一商品新的待审核调价取代旧的。"
        "其余调价（如在已审核参考价内降价）立即生效，应答 200，记入价格历史。"
    ),
)
async def change_price(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    data: JSONBody[PriceIn],
    db: DB,
    settings: Config,
) -> Response[ListingOut]:
    _, waiting = await prices.change_price(
        db,
        me_of(request),
        listing_id,
        data.price,
        data.reference_price,
        margin=settings.price_margin,
        ceiling=settings.decentralized_threshold,
        note=data.note,
        reference_source=data.reference_source,
    )
    return Response(await _owned_out(db, listing_id), status_code=202 if waiting else 200)


@delete(
    "/api/listings/{listing_id:uuid}/price-request",
    opt=allow("supplier"),
    status_code=200,
    tags=["商品"],
    summary="撤回待审核的调价（商品价格不变）",
)
async def withdraw_price_request(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB
) -> ListingOut:
    await prices.withdraw_price_request(db, me_of(request), listing_id)
    return await _owned_out(db, listing_id)


@get(
    "/api/review/prices",
    opt=allow("center"),
    tags=["商品审核"],
    summary="待审核的调价（先提交的在前；listing 为现行价格）",
)
async def price_review_queue(
    db: DB,
    page: PageNo = 1,
    per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
) -> PriceReviewPage:
    async with db.read() as s:
        total, rows = await prices.price_review_queue(s, page, per_page)
    return PriceReviewPage(total, page, per_page, [PriceReviewItem.of(r) for r in rows])


@post(
    "/api/review/prices/{request_id:uuid}",
    opt=allow("center"),
    status_code=200,
    tags=["商品审核"],
    summary="审核调价：approve 生效（按价格规则复核），reject 驳回（须填原因，原价不变）",
)
async def review_price(
    request: Request[Any, Any, Any],
    request_id: FromPath[uuid.UUID],
    data: JSONBody[ReviewIn],
    db: DB,
    settings: Config,
) -> ListingOut:
    if data.decision not in ("approve", "reject"):
        raise InvalidInput("decision 应为 approve 或 reject", code="invalid_parameter")
    listing, decided = await prices.review_price_request(
        db,
        me_of(request),
        request_id,
        approve=data.decision == "approve",
        reason=data.reason,
        margin=settings.price_margin,
    )
    out = await _out(db, listing.id)
    return msgspec.structs.replace(out, price_request=PriceRequestOut.of(decided))


class PriceChangeOut(msgspec.Struct):
    at: str
    price: str
    reference_price: str
    previous_price: str | None
    note: str


@get("/api/listings/{listing_id:uuid}/prices", opt=PUBLIC, tags=["商品"], summary="在售商品的价格历史")
async def price_history(listing_id: FromPath[uuid.UUID], db: DB) -> list[PriceChangeOut]:
    async with db.read() as s:
        await service.get_listing(s, listing_id)
        rows = await service.price_history(s, listing_id)
    return [
        PriceChangeOut(
            r.at.isoformat(),
            money_str(r.price),
            money_str(r.reference_price),
            None if r.previous_price is None else money_str(r.previous_price),
            r.note,
        )
        for r in rows
    ]


@get(
    "/api/listings/{listing_id:uuid}/offers",
    opt=PUBLIC,
    tags=["商品"],
    summary="比价：同品牌同型号的在售商品",
)
async def offers(listing_id: FromPath[uuid.UUID], db: DB) -> list[ListingOut]:
    async with db.read() as s:
        listing = await service.get_listing(s, listing_id)
        return [ListingOut.of(x) for x in await service.same_model_offers(s, listing)]


@get("/api/review/listings", opt=allow("center"), tags=["商品审核"], summary="待审核商品（先提交的在前）")
async def review_queue(
    db: DB,
    page: PageNo = 1,
    per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
) -> ListingPage:
    async with db.read() as s:
        total, rows = await service.review_queue(s, page, per_page)
    return ListingPage(total, page, per_page, [ListingOut.of(x) for x in rows])


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: fields.Choice  # approve | reject
    reason: fields.Reason = ""  # required to reject (reason_required)
    # The price and reference the reviewer looked at (listing review only): approving is refused
    # with 409 listing_changed if the supplier changed them since.
    price: Amount | None = None
    reference_price: Amount | None = None


@post(
    "/api/review/listings/{listing_id:uuid}",
    opt=allow("center"),
    status_code=200,
    tags=["商品审核"],
    summary="审核商品：approve 上架，reject 驳回（须填原因）",
)
async def review(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    data: JSONBody[ReviewIn],
    db: DB,
    settings: Config,
) -> ListingOut:
    if data.decision not in ("approve", "reject"):
        raise InvalidInput("decision 应为 approve 或 reject", code="invalid_parameter")
    await service.review_listing(
        db,
        me_of(request),
        listing_id,
        approve=data.decision == "approve",
        reason=data.reason,
        margin=settings.price_margin,
        seen_price=data.price,
        seen_reference=data.reference_price,
    )
    return await _out(db, listing_id)


class ModerationIn(msgspec.Struct, forbid_unknown_fields=True):
    action: fields.Choice  # freeze | unfreeze | delist | relist
    reason: fields.Reason = ""  # required to freeze or delist (reason_required)


@post(
    "/api/listings/{listing_id:uuid}/moderation",
    opt=allow("center", "regulator"),
    status_code=200,
    tags=["商品审核"],
    summary="采购中心或财政部门冻结、解冻、下架、恢复上架商品",
)
async def moderation(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    data: JSONBody[ModerationIn],
    db: DB,
    settings: Config,
) -> ListingOut:
    await service.moderate(
        db, me_of(request), listing_id, data.action, data.reason, margin=settings.price_margin
    )
    return await _out(db, listing_id)


class HitOut(msgspec.Struct):
    id: str
    title: str
    brand: str
    spec_model: str
    category_code: str
    price: str
    supplier_name: str
    highlight: str


class SearchOut(msgspec.Struct):
    total: int
    page: int
    per_page: int
    hits: list[HitOut]
    facets: dict[str, dict[str, int]]
    supplier_names: dict[str, str]


@get(
    "/api/catalog/search",
    opt=PUBLIC,
    tags=["商品"],
    summary="商品搜索（中文分词、同义词、拼写容错、筛选、排序、分面统计）",
    description=(
        "只返回在售商品。q 搜索词；category 品目编码前缀；brand 品牌；supplier 供应商编号；region 行政区划前缀；"
        "price_min / price_max 价格区间（元）；in_stock=1 只看有货；sort 为 relevance | price_asc | price_desc | "
        "newest | sales；page、per_page（≤100）。facets 含 category、brand、supplier（供应商编号）、price_band。"
    ),
)
async def catalog_search(
    db: DB,
    search: Search,
    q: FromQuery[str] = "",
    category: FromQuery[str] = "",
    brand: FromQuery[str] = "",
    supplier: FromQuery[str] = "",
    region: FromQuery[str] = "",
    price_min: FromQuery[str] = "",
    price_max: FromQuery[str] = "",
    in_stock: FromQuery[str] = "",
    sort: FromQuery[str] = "relevance",
    page: FromQuery[str] = "1",
    per_page: FromQuery[str] = "20",
) -> SearchOut:
    query = catalog_search_service.parse(
        catalog_search_service.RawParams(
            q, category, brand, supplier, region, price_min, price_max, in_stock, sort, page, per_page
        )
    )
    result = await catalog_search_service.run(search, query)
    supplier_ids = list(result.facets.get("supplier", {}))
    names = catalog_search_service.cached_supplier_names(supplier_ids)
    if names is None:
        async with db.read() as s:
            names = await catalog_search_service.supplier_names(s, supplier_ids)
    return SearchOut(
        total=result.total,
        page=query.page,
        per_page=query.per_page,
        hits=[
            HitOut(
                h.id, h.title, h.brand, h.spec_model, h.category_code, h.price, h.supplier_name, h.highlight
            )
            for h in result.hits
        ],
        facets={
            "category": result.facets.get("category", {}),
            "brand": result.facets.get("brand", {}),
            "supplier": result.facets.get("supplier", {}),
            "price_band": result.facets.get("price_band", {}),
        },
        supplier_names=names,
    )


@get("/api/supplier/listings", opt=allow("supplier"), tags=["商品"], summary="本供应商的商品")
async def my_listings(
    request: Request[Any, Any, Any],
    db: DB,
    page: PageNo = 1,
    per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
) -> ListingPage:
    who = me_of(request)
    assert who.org_id
    async with db.read() as s:
        total, rows = await service.listings_of_supplier(s, who.org_id, page, per_page)
        requests = await prices.current_price_requests(s, [x.id for x in rows])
    return ListingPage(total, page, per_page, [ListingOut.of(x, requests.get(x.id)) for x in rows])


@post("/api/listings/{listing_id:uuid}/delist", opt=allow("supplier"), status_code=200, tags=["商品"])
async def delist(request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB) -> ListingOut:
    await service.set_listing_status(db, me_of(request), listing_id, "delisted")
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing_id, live_only=False))


@post("/api/listings/{listing_id:uuid}/relist", opt=allow("supplier"), status_code=200, tags=["商品"])
async def relist(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> ListingOut:
    await service.set_listing_status(db, me_of(request), listing_id, "live", margin=settings.price_margin)
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing_id, live_only=False))


@dataclass
class ImportForm:
    file: UploadFile
    strict: str = ""


class ImportOut(msgspec.Struct):
    id: uuid.UUID
    filename: str
    status: str
    status_label: str
    total: int
    processed: int
    accepted: int
    refused: int
    percent: int
    error: str
    strict: bool
    report_url: str | None

    @classmethod
    def of(cls, b: Any) -> ImportOut:
        done = b.status in (JobStatus.DONE, JobStatus.FAILED)
        percent = 100 if done else (100 * b.processed // b.total if b.total else 0)
        return cls(
            b.id,
            b.filename,
            b.status,
            imports.STATUS_LABELS.get(b.status, b.status),
            b.total,
            b.processed,
            b.accepted,
            b.refused,
            percent,
            b.error,
            b.strict,
            f"/api/supplier/imports/{b.id}/report.csv" if b.status == JobStatus.DONE else None,
        )


@post(
    "/api/supplier/imports",
    opt=allow("supplier"),
    status_code=202,
    tags=["商品"],
    summary="批量导入商品（CSV / XLSX，中文表头；后台处理，逐行报告）",
    description=(
        "multipart/form-data：file 为文件（至多 5 MB）；strict=1 时文件中有任何错误行则整份不导入。"
        "文件由后台任务读取和校验：total 在读取后才有值；文件超出导入限制（至多 10000 行数据、100 列，"
        "单元格至多 32767 个字符，XLSX 解压后的大小有上限）时导入以 failed 结束，error 为原因。"
    ),
)
async def start_import(
    request: Request[Any, Any, Any], data: MultipartBody[ImportForm], db: DB, settings: Config
) -> ImportOut:
    # Stored, not parsed: the job reads it (one byte past the cap is enough to refuse it).
    content = await data.file.read(imports.MAX_BYTES + 1)
    batch = await imports.start_import(
        db,
        files.store_for(settings, db),
        me_of(request),
        data.file.filename,
        content,
        strict=data.strict in ("1", "true", "on"),
    )
    return ImportOut.of(batch)


@get("/api/supplier/imports/{import_id:uuid}", opt=allow("supplier"), tags=["商品"], summary="导入进度与结果")
async def import_status(request: Request[Any, Any, Any], import_id: FromPath[uuid.UUID], db: DB) -> ImportOut:
    return ImportOut.of(await imports.get_import(db, me_of(request), import_id))


@get(
    "/api/supplier/imports/{import_id:uuid}/report.csv",
    opt=allow("supplier"),
    tags=["商品"],
    summary="逐行导入报告（CSV）",
)
async def import_report(
    request: Request[Any, Any, Any], import_id: FromPath[uuid.UUID], db: DB
) -> Response[bytes]:
    batch = await imports.get_import(db, me_of(request), import_id)
    return Response(
        imports.report_bytes(batch),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-report-{batch.id}.csv"'},
    )


@get(
    "/api/catalog/import-template/{fmt:str}",
    opt=PUBLIC,
    tags=["商品"],
    summary="商品导入模板（csv 或 xlsx）",
)
async def import_template(fmt: FromPath[str]) -> Response[bytes]:
    if fmt == "csv":
        return Response(
            spreadsheet.template_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="listing-template.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            spreadsheet.template_xlsx(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="listing-template.xlsx"'},
        )
    raise NotFound("模板格式应为 csv 或 xlsx", code="not_found")


ROUTES = [
    start_import,
    import_status,
    import_report,
    import_template,
    list_categories,
    browse,
    listing_detail,
    create_listing,
    update_listing,
    submit_listing,
    change_price,
    withdraw_price_request,
    price_review_queue,
    review_price,
    price_history,
    offers,
    review_queue,
    review,
    moderation,
    catalog_search,
    my_listings,
    delist,
    relist,
]
