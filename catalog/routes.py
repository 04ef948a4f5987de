"""Catalogue API: the 品目 tree and browsing, a supplier's listings and prices, the center's review, and
bulk imports; one Controller per area."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter

from catalog import browse, categories, imports, prices, service, spreadsheet
from catalog import search as catalog_search
from catalog.models import ListingImport, ListingStatus
from catalog.search import Search
from catalog.structs import (
    CategoryOut,
    EcommerceIn,
    ListingCreate,
    ListingOut,
    ListingPage,
    ModerationIn,
    PolicyIn,
    PriceChangeOut,
    PriceIn,
    PriceRequestOut,
    PriceReviewItem,
    PriceReviewPage,
    ReviewIn,
)
from mall.core import clock, fields, files
from mall.core.db import Database, retried
from mall.core.errors import InvalidInput, NotFound
from mall.core.fields import SEARCH_MAX
from mall.core.guards import PUBLIC, allow
from mall.core.models import JobStatus
from mall.core.money import MoneyError, money
from mall.sme.current import size_on as sme_size_on
from mall.web.deps import DB, UserCall
from mall.web.helpers import PageNo, PerPage

SUPPLIER = allow("supplier")
CENTER = allow("center")
GOODS = ["商品"]
REVIEW = ["商品审核"]


@retried  # a read: safe to run again (the write before it has committed)
async def listing_out(db: Database, listing_id: uuid.UUID, *, with_request: bool = False) -> ListingOut:
    """The listing as its supplier (or the center) sees it, whatever its status; `with_request`: with
    what they should see about its price requests."""
    async with db.read() as s:
        listing = await browse.get_listing(s, listing_id, live_only=False)
        requests = await prices.current_price_requests(s, [listing_id]) if with_request else {}
        scale = await sme_size_on(s, listing.supplier_org_id, clock.local_date(clock.now()))
        return ListingOut.of(listing, requests.get(listing_id), scale)


def csv_download(content: bytes, filename: str) -> Response[bytes]:
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _price(raw: str | None, name: str) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        return money(raw)
    except MoneyError:
        raise InvalidInput(f"参数 {name} 应为金额", code="invalid_parameter") from None


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


class CatalogApi(Controller):
    """What anyone may read besides the listings: the 品目 tree, search, the import template."""

    path = "/api"
    opt = PUBLIC
    tags = GOODS

    @get("/categories", summary="品目目录（按上级编码逐级展开）")
    async def list_categories(self, db: DB, parent: FromQuery[str | None] = None) -> list[CategoryOut]:
        async with db.read() as s:
            return [CategoryOut.of(c) for c in await categories.children(s, parent)]

    @get(
        "/catalog/search",
        summary="商品搜索（中文分词、同义词、拼写容错、筛选、排序、分面统计）",
        description=(
            "只返回在售商品。q 搜索词；category 品目编码前缀；brand 品牌；supplier 供应商编号；region 行政区划前缀；"
            "price_min / price_max 价格区间（元）；in_stock=1 只看有货；green=1 只看节能或环境标志认证有效的产品；"
            "origin 为 domestic（本国产品）| imported（进口产品）；sort 为 relevance | price_asc | price_desc | "
            "newest | sales；page、per_page（≤100）。facets 含 category、brand、supplier（供应商编号）、price_band。"
        ),
    )
    async def catalog_search(
        self,
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
        green: FromQuery[str] = "",
        origin: FromQuery[str] = "",
    ) -> SearchOut:
        query = catalog_search.parse(
            catalog_search.RawParams(
                q,
                category,
                brand,
                supplier,
                region,
                price_min,
                price_max,
                in_stock,
                sort,
                page,
                per_page,
                green,
                origin,
            )
        )
        result = await catalog_search.run(search, query)
        supplier_ids = list(result.facets.get("supplier", {}))
        names = catalog_search.cached_supplier_names(supplier_ids)
        if names is None:
            async with db.read() as s:
                names = await catalog_search.supplier_names(s, supplier_ids)
        return SearchOut(
            total=result.total,
            page=query.page,
            per_page=query.per_page,
            hits=[
                HitOut(
                    h.id,
                    h.title,
                    h.brand,
                    h.spec_model,
                    h.category_code,
                    h.price,
                    h.supplier_name,
                    h.highlight,
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

    @get("/catalog/import-template/{fmt:str}", summary="商品导入模板（csv 或 xlsx）")
    async def import_template(self, fmt: FromPath[str]) -> Response[bytes]:
        if fmt == "csv":
            return csv_download(spreadsheet.template_csv(), "listing-template.csv")
        if fmt == "xlsx":
            return Response(
                spreadsheet.template_xlsx(),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"Content-Disposition": 'attachment; filename="listing-template.xlsx"'},
            )
        raise NotFound("模板格式应为 csv 或 xlsx", code="not_found")


class ListingApi(Controller):
    """Listings: anyone reads those on sale; a supplier creates, edits, submits, takes off sale and
    back, and reprices its own."""

    path = "/api/listings"
    opt = SUPPLIER
    tags = GOODS

    @get("/", opt=PUBLIC, summary="在售商品（简单筛选）")
    async def browse(
        self,
        db: DB,
        page: PageNo = 1,
        per_page: PerPage = 24,
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
        query = browse.ListingQuery(
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
            total, rows = await browse.browse(s, query)
        return ListingPage(total, page, per_page, [ListingOut.of(x) for x in rows])

    @get("/{listing_id:uuid}", opt=PUBLIC)
    async def listing_detail(self, listing_id: FromPath[uuid.UUID], db: DB) -> ListingOut:
        async with db.read() as s:
            listing = await browse.get_listing(s, listing_id)
            scale = await sme_size_on(s, listing.supplier_org_id, clock.local_date(clock.now()))
            return ListingOut.of(listing, supplier_scale=scale)

    @get("/{listing_id:uuid}/prices", opt=PUBLIC, summary="在售商品的价格历史")
    async def price_history(self, listing_id: FromPath[uuid.UUID], db: DB) -> list[PriceChangeOut]:
        async with db.read() as s:
            await browse.get_listing(s, listing_id)
            return [PriceChangeOut.of(r) for r in await browse.price_history(s, listing_id)]

    @get("/{listing_id:uuid}/offers", opt=PUBLIC, summary="比价：同品牌同型号的在售商品")
    async def offers(self, listing_id: FromPath[uuid.UUID], db: DB) -> list[ListingOut]:
        async with db.read() as s:
            listing = await browse.get_listing(s, listing_id)
            return [ListingOut.of(x) for x in await browse.same_model_offers(s, listing)]

    @post("/", status_code=201, summary="供应商新增商品（提交审核，或 draft=true 存为草稿）")
    async def create_listing(self, call: UserCall, data: JSONBody[ListingCreate]) -> ListingOut:
        listing = await service.save_listing(call.db, call.settings, call.me, data)
        return await listing_out(call.db, listing.id)

    @put("/{listing_id:uuid}", summary="修改草稿或被驳回的商品")
    async def update_listing(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[ListingCreate]
    ) -> ListingOut:
        await service.save_listing(call.db, call.settings, call.me, data, listing_id)
        return await listing_out(call.db, listing_id)

    @post("/{listing_id:uuid}/submit", status_code=200)
    async def submit_listing(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> ListingOut:
        await service.submit_listing(call.db, call.me, listing_id, margin=call.settings.price_margin)
        return await listing_out(call.db, listing_id)

    @post("/{listing_id:uuid}/delist", status_code=200)
    async def delist(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> ListingOut:
        await service.set_listing_status(call.db, call.me, listing_id, ListingStatus.DELISTED)
        return await listing_out(call.db, listing_id)

    @post("/{listing_id:uuid}/relist", status_code=200)
    async def relist(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> ListingOut:
        await service.set_listing_status(
            call.db, call.me, listing_id, ListingStatus.LIVE, margin=call.settings.price_margin
        )
        return await listing_out(call.db, listing_id)

    @post(
        "/{listing_id:uuid}/price",
        status_code=200,
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
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[PriceIn]
    ) -> Response[ListingOut]:
        _, waiting = await prices.reprice(call.db, call.settings, call.me, listing_id, data)
        out = await listing_out(call.db, listing_id, with_request=True)
        return Response(out, status_code=202 if waiting else 200)

    @delete(
        "/{listing_id:uuid}/price-request",
        status_code=200,
        summary="撤回待审核的调价（商品价格不变）",
    )
    async def withdraw_price_request(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> ListingOut:
        await prices.withdraw_price_request(call.db, call.me, listing_id)
        return await listing_out(call.db, listing_id, with_request=True)

    @post(
        "/{listing_id:uuid}/ecommerce",
        status_code=200,
        summary="申报电商比价：同款商品在公开电商平台的价格、页面网址与采集日期（三项全空则清除；无需审核）",
        description=(
            "价格监测每日比对：售价高于自报电商价、或采集日期已超过90天的，列入采购中心的价格预警。"
            "网址须以 http:// 或 https:// 开头（至多500个字符）；采集日期不能晚于今天，填写价格时必填。"
            "不合规时 400 ecommerce_invalid；已冻结的商品 403 listing_frozen。"
        ),
    )
    async def set_ecommerce(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[EcommerceIn]
    ) -> ListingOut:
        await service.set_ecommerce(call.db, call.me, listing_id, data)
        return await listing_out(call.db, listing_id)

    @put(
        "/{listing_id:uuid}/policy",
        status_code=200,
        summary="申报政策属性：节能产品、环境标志产品认证证书（编号与有效期至），产地（本国产品或进口产品）及进口审核批复文号（无需审核，留痕）",
        description=(
            "证书编号与有效期成对填写，两项全空即无该证书；有效期届满的证书不再计为认证产品。"
            "进口产品须填写进口产品采购审核批复文号（财库〔2007〕119号）。"
            "强制采购节能产品品目（财库〔2019〕19号）中无有效节能认证的商品，在同品目有认证商品在售时不能下单。"
            "不合规时 400 policy_invalid；已冻结的商品 403 listing_frozen。"
        ),
    )
    async def set_policy(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[PolicyIn]
    ) -> ListingOut:
        await service.set_policy(call.db, call.me, listing_id, data)
        return await listing_out(call.db, listing_id)


class ReviewApi(Controller):
    """The procurement center's queues and decisions; the center's and the regulator's moderation."""

    path = "/api"
    opt = CENTER
    tags = REVIEW

    @get("/review/listings", summary="待审核商品（先提交的在前）")
    async def review_queue(self, db: DB, page: PageNo = 1, per_page: PerPage = 50) -> ListingPage:
        async with db.read() as s:
            total, rows = await browse.review_queue(s, page, per_page)
        return ListingPage(total, page, per_page, [ListingOut.of(x) for x in rows])

    @post(
        "/review/listings/{listing_id:uuid}",
        status_code=200,
        summary="审核商品：approve 上架，reject 驳回（须填原因）",
    )
    async def review(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[ReviewIn]
    ) -> ListingOut:
        await service.review(call.db, call.settings, call.me, listing_id, data)
        return await listing_out(call.db, listing_id)

    @post(
        "/listings/{listing_id:uuid}/moderation",
        opt=allow("center", "regulator"),
        status_code=200,
        summary="采购中心或财政部门冻结、解冻、下架、恢复上架商品",
    )
    async def moderation(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[ModerationIn]
    ) -> ListingOut:
        await service.moderate(
            call.db, call.me, listing_id, data.action, data.reason, margin=call.settings.price_margin
        )
        return await listing_out(call.db, listing_id)

    @get("/review/prices", summary="待审核的调价（先提交的在前；listing 为现行价格）")
    async def price_review_queue(self, db: DB, page: PageNo = 1, per_page: PerPage = 50) -> PriceReviewPage:
        async with db.read() as s:
            total, rows = await prices.price_review_queue(s, page, per_page)
        return PriceReviewPage(total, page, per_page, [PriceReviewItem.of(r) for r in rows])

    @post(
        "/review/prices/{request_id:uuid}",
        status_code=200,
        summary="审核调价：approve 生效（按价格规则复核），reject 驳回（须填原因，原价不变）",
    )
    async def review_price(
        self, call: UserCall, request_id: FromPath[uuid.UUID], data: JSONBody[ReviewIn]
    ) -> ListingOut:
        listing, decided = await prices.review_price(call.db, call.settings, call.me, request_id, data)
        out = await listing_out(call.db, listing.id)
        return msgspec.structs.replace(out, price_request=PriceRequestOut.of(decided))


@dataclass
class ImportForm:
    file: UploadFile
    strict: fields.Choice = ""  # "1", "true" or "on": a file with any bad row imports nothing


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
    def of(cls, b: ListingImport) -> ImportOut:
        done = b.status == JobStatus.DONE
        return cls(
            b.id,
            b.filename,
            b.status,
            imports.STATUS_LABELS.get(b.status, b.status),
            b.total,
            b.processed,
            b.accepted,
            b.refused,
            imports.percent(b),
            b.error,
            b.strict,
            f"/api/supplier/imports/{b.id}/report.csv" if done else None,
        )


class SupplierApi(Controller):
    """A supplier's own: its listings in every status, and its bulk imports."""

    path = "/api/supplier"
    opt = SUPPLIER
    tags = GOODS

    @get("/listings", summary="本供应商的商品")
    async def my_listings(self, call: UserCall, page: PageNo = 1, per_page: PerPage = 50) -> ListingPage:
        async with call.db.read() as s:
            total, rows = await browse.listings_of_supplier(s, service.supplier_org(call.me), page, per_page)
            requests = await prices.current_price_requests(s, [x.id for x in rows])
        return ListingPage(total, page, per_page, [ListingOut.of(x, requests.get(x.id)) for x in rows])

    @post(
        "/imports",
        status_code=202,
        summary="批量导入商品（CSV / XLSX，中文表头；后台处理，逐行报告）",
        description=(
            "multipart/form-data：file 为文件（至多 5 MB）；strict=1 时文件中有任何错误行则整份不导入。"
            "文件由后台任务读取和校验：total 在读取后才有值；文件超出导入限制（至多 10000 行数据、100 列，"
            "单元格至多 32767 个字符，XLSX 解压后的大小有上限）时导入以 failed 结束，error 为原因。"
        ),
    )
    async def start_import(self, call: UserCall, data: MultipartBody[ImportForm]) -> ImportOut:
        batch = await imports.upload(
            call.db,
            files.store_for(call.settings, call.db),
            call.me,
            data.file,
            strict=data.strict in ("1", "true", "on"),
        )
        return ImportOut.of(batch)

    @get("/imports/{import_id:uuid}", summary="导入进度与结果")
    async def import_status(self, call: UserCall, import_id: FromPath[uuid.UUID]) -> ImportOut:
        return ImportOut.of(await imports.get_import(call.db, call.me, import_id))

    @get("/imports/{import_id:uuid}/report.csv", summary="逐行导入报告（CSV）")
    async def import_report(self, call: UserCall, import_id: FromPath[uuid.UUID]) -> Response[bytes]:
        batch = await imports.get_import(call.db, call.me, import_id)
        return csv_download(imports.report_bytes(batch), f"import-report-{batch.id}.csv")


ROUTES = [SupplierApi, CatalogApi, ListingApi, ReviewApi]
