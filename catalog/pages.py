"""Catalogue pages: browse goods, a product's page, a supplier's own listings and imports, the center's
review; one Controller per surface."""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, MultipartBody
from litestar.response import Redirect, Template
from sqlalchemy import select

from catalog import browse, categories, imports, media, policy, prices, service, shopping, steps
from catalog import search as catalog_search
from catalog.models import (
    LISTING_STATUS_LABELS,
    Listing,
    ListingImport,
    ListingStatus,
    PriceRequest,
    PriceRequestStatus,
)
from catalog.routes import csv_download
from catalog.search import Search
from catalog.structs import (
    EcommerceIn,
    ListingCreate,
    ListingDraft,
    ModerationIn,
    PolicyIn,
    PriceIn,
    ReviewIn,
)
from mall.core import clock, files
from mall.core.errors import DomainError, InvalidInput, NotFound
from mall.core.fields import CategoryCodeText, Choice
from mall.core.guards import PUBLIC, allow
from mall.credit.record import scores_for as credit_scores
from mall.pricewatch import stats as pricewatch_stats
from mall.sme.current import declarations_on as sme_declarations_on
from mall.sme.rules import SIZES as SME_SIZE_LABELS
from mall.web import forms
from mall.web.deps import DB, Config, UserCall, Viewer
from mall.web.helpers import AnyRequest, Form, flash, page_no, pages_of, paging, pop_form, render
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
REVIEWERS = allow("center", "regulator")

# The center's 批量通过 takes at most this many listings at once (a page of the queue is 20).
BULK_MAX = 50


class ListingForm(ListingCreate, forbid_unknown_fields=True):
    """The listing form: the API's fields, with the button pressed (submit=0 keeps a draft) instead
    of `draft`, and the 品目 code as typed (its shape is checked by the service, like the amounts)."""

    category_code: CategoryCodeText
    submit: Choice = "1"

    def __post_init__(self) -> None:
        self.draft = self.submit == "0"


class StatusForm(msgspec.Struct, forbid_unknown_fields=True):
    status: Choice  # delisted: take off sale; live: put back on sale


def _green_of(x: Listing) -> str:
    """The certificates of a listing in force today (catalog.policy), for its badges."""
    return policy.green_of(
        x.energy_cert_no, x.energy_cert_until, x.eco_cert_no, x.eco_cert_until, clock.local_date(clock.now())
    )


class GoodsPages(Controller):
    """The goods anyone may see, and the center's and the regulator's moderation of them."""

    path = "/goods"
    opt = PUBLIC
    include_in_schema = False

    @get("/")
    async def goods_page(self, request: AnyRequest, db: DB, search: Search) -> Template:
        """The mall's search: words, filters, facets and sorting from the search engine; the cards'
        prices and stock read fresh from the database."""
        p = {k: str(v) for k, v in request.query_params.items()}
        raw = catalog_search.RawParams(
            **{
                k: p.get(k, "")
                for k in (
                    "q",
                    "category",
                    "brand",
                    "supplier",
                    "price_min",
                    "price_max",
                    "in_stock",
                    "green",
                    "origin",
                )
            },
            sort=p.get("sort") or "relevance",
            page=p.get("page") or "1",
            per_page="24",
        )
        errors: list[str] = []
        status_code = 200
        page_refused = False
        try:
            query = catalog_search.parse(raw)
        except DomainError as exc:
            errors.append(exc.detail)
            if exc.extra.get("parameter") == "page":
                # A bad page number: the first page of the same search (one out of reach is told
                # where the last one is, once the total is known).
                page_refused = exc.code == "page_too_deep"
                query = catalog_search.parse(dataclasses.replace(raw, page="1"))
            elif exc.extra.get("parameter") == "q":
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
        last = min(pages_of(result.total, query.per_page), catalog_search.MAX_WINDOW // query.per_page)
        asked = int(raw.page) if raw.page.isdigit() else 0
        beyond = not unavailable and (page_refused or query.page > max(last, 1))
        if beyond and query.page > 1:  # past the last page: the first one of the same search instead
            query = dataclasses.replace(query, page=1)
            result = await catalog_search.run(search, query)
        if beyond and result.total:  # (a refused page was the only error: the page is checked last)
            errors = [f"第 {asked} 页超出范围：共 {result.total} 条结果，{last} 页"]
        async with db.read() as s:
            ids = [uuid.UUID(h.id) for h in result.hits]
            fresh = (
                {x.id: x for x in (await s.execute(select(Listing).where(Listing.id.in_(ids)))).scalars()}
                if ids
                else {}
            )
            supplier_names = await catalog_search.supplier_names(s, list(result.facets.get("supplier", {})))
            credits = await credit_scores(s, (x.supplier_org_id for x in fresh.values()))
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
            pages=last,
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
            credits=credits,
            origin_labels=policy.ORIGINS,
            green_of=_green_of,
            category_label=categories.name_of(query.category),
        )

    @get("/{listing_id:uuid}")
    async def goods_detail(
        self, request: AnyRequest, viewer: Viewer, listing_id: FromPath[uuid.UUID], db: DB
    ) -> Template:
        """A product: its details, the same model from other suppliers side by side (比价), and its
        price history. The center, the regulator and the listing's supplier also see it when not on sale."""
        async with db.read() as s:
            listing = await browse.get_listing(s, listing_id, live_only=False)
            insider = viewer is not None and (
                viewer.role in ("center", "regulator") or viewer.org_id == listing.supplier_org_id
            )
            if listing.status != ListingStatus.LIVE and not insider:
                raise NotFound("商品不存在或已下架", code="listing_not_found")
            offers = await browse.same_model_offers(s, listing)
            history = await browse.price_history(s, listing.id)
            # A waiting price change is the supplier's and the reviewers' business, not the public's.
            price_request = (
                (await prices.current_price_requests(s, [listing.id])).get(listing.id) if insider else None
            )
            _, same_category = await browse.browse(
                s, browse.ListingQuery(category=listing.category_code, per_page=6, sort="sales")
            )
            images = (await shopping.images_of(s, [listing.id]))[listing.id]
            favourite = listing.id in await shopping.favourite_ids(s, viewer, [listing.id])
            # The mall's own deal prices of this brand and model (mall.pricewatch.stats)
            market = await pricewatch_stats.market_for(s, listing.brand_key, listing.model_key)
            credits = await credit_scores(s, [listing.supplier_org_id, *(o.supplier_org_id for o in offers)])
            supplier_size = (
                await sme_declarations_on(s, [listing.supplier_org_id], clock.local_date(clock.now()))
            ).get(listing.supplier_org_id)
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
            images=images,
            favourite=favourite,
            market=market,
            credits=credits,
            green=_green_of(listing),
            origin_labels=policy.ORIGINS,
            mandatory=policy.mandatory().get(listing.category_code),
            mandatory_source=policy.MANDATORY_SOURCE,
            supplier_size=supplier_size,
            size_labels=SME_SIZE_LABELS,
        )

    @post("/{listing_id:uuid}/moderation", opt=REVIEWERS)
    async def moderation(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> str:
            form = forms.decode(ModerationIn, data)
            await service.moderate(
                call.db, call.me, listing_id, form.action, form.reason, margin=call.settings.price_margin
            )
            return service.MODERATION[form.action][1]

        return await call.act(go, lambda label: f"已{label}", f"/goods/{listing_id}")


class SupplierPages(Controller):
    """A supplier's own listings, their prices, and its bulk imports."""

    path = "/supplier"
    opt = allow("supplier")
    include_in_schema = False

    @get("/listings")
    async def my_listings(
        self, call: UserCall, page: FromQuery[str] = "1", status: FromQuery[str] = ""
    ) -> Template:
        org_id = service.supplier_org(call.me)
        pg = page_no(page)
        status = status if status in LISTING_STATUS_LABELS else ""
        async with call.db.read() as s:
            total, rows = await browse.listings_of_supplier(s, org_id, pg, 30, status=status)
            counts = await browse.status_counts(s, org_id)
            requests = await prices.current_price_requests(s, [x.id for x in rows])
        recent = await imports.imports_of(call.db, call.me, limit=5)
        return call.render(
            "supplier_listings.html",
            rows=rows,
            **paging(total, pg, 30),
            status=status,
            counts=counts,
            status_labels=LISTING_STATUS_LABELS,
            margin=call.settings.price_margin,
            form=pop_form(call.request),
            requests=requests,
            imports=recent,
            import_labels=imports.STATUS_LABELS,
        )

    @post("/listings")
    async def create_listing(self, call: UserCall, data: Form) -> Redirect:
        return await call.act(
            lambda: service.save_listing(call.db, call.settings, call.me, forms.decode(ListingForm, data)),
            lambda listing: (
                f"商品「{listing.name}」已存为草稿"
                if listing.status == ListingStatus.DRAFT
                else f"商品「{listing.name}」已提交审核，采购中心审核通过后上架"
            ),
            "/supplier/listings",
            keep=data,
        )

    @get("/listings/{listing_id:uuid}/edit")
    async def edit_listing_page(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            listing = await browse.get_listing(s, listing_id, live_only=False)
        if listing.supplier_org_id != call.me.org_id:
            raise NotFound("商品不存在", code="listing_not_found")
        form = pop_form(call.request) or {
            f.name: (
                str(int(listing.stock))
                if f.name == "stock"
                else media.params_text(listing.params)
                if f.name == "params"
                else ""
                if getattr(listing, f.name) is None
                else str(getattr(listing, f.name))
            )
            for f in msgspec.structs.fields(ListingDraft)
        }
        async with call.db.read() as s:
            images = (await shopping.images_of(s, [listing.id]))[listing.id]
        declared = {
            "energy_cert_no": listing.energy_cert_no,
            "energy_cert_until": listing.energy_cert_until.isoformat() if listing.energy_cert_until else "",
            "eco_cert_no": listing.eco_cert_no,
            "eco_cert_until": listing.eco_cert_until.isoformat() if listing.eco_cert_until else "",
            "origin": listing.origin,
            "import_approval_ref": listing.import_approval_ref,
        }
        form = {**declared, **form}
        return call.render(
            "supplier_listing_edit.html",
            listing=listing,
            images=images,
            images_max=shopping.IMAGES_MAX,
            step=steps.listing_step(listing, call.settings.work_calendar),
            form=form,
            status_labels=LISTING_STATUS_LABELS,
            margin=call.settings.price_margin,
            mandatory=policy.mandatory().get(listing.category_code),
            mandatory_source=policy.MANDATORY_SOURCE,
            origins=list(policy.ORIGINS.items()),
        )

    @post("/listings/{listing_id:uuid}/edit")
    async def edit_listing(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: service.save_listing(
                call.db, call.settings, call.me, forms.decode(ListingForm, data), listing_id
            ),
            lambda listing: "已重新提交审核" if listing.status == ListingStatus.SUBMITTED else "草稿已保存",
            f"/supplier/listings/{listing_id}/edit",
            keep=data,
            to=lambda _: "/supplier/listings",
        )

    @post("/listings/{listing_id:uuid}/price")
    async def change_price(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> tuple[Listing, PriceRequest | None]:
            form = forms.decode(PriceIn, data)
            if "reference_source" in data and not data["reference_source"].strip():
                # The page's source field emptied: the source is cleared (omitted, it is kept).
                form = msgspec.structs.replace(form, reference_source="")
            return await prices.reprice(call.db, call.settings, call.me, listing_id, form)

        def done(result: tuple[Listing, PriceRequest | None]) -> str:
            listing, waiting = result
            if waiting is None:
                return "价格已调整，已记入价格历史"
            return (
                f"调价（售价 {waiting.price:,.2f} 元，参考价 {waiting.reference_price:,.2f} 元）已提交采购中心审核；"
                f"审核通过前仍按原价 {listing.price:,.2f} 元销售"
            )

        return await call.act(go, done, "/supplier/listings")

    @post("/listings/{listing_id:uuid}/ecommerce")
    async def set_ecommerce(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: service.set_ecommerce(call.db, call.me, listing_id, forms.decode(EcommerceIn, data)),
            lambda listing: "电商比价已更新" if listing.ecommerce_price is not None else "电商比价已清除",
            f"/supplier/listings/{listing_id}/edit",
            keep=data,
        )

    @post("/listings/{listing_id:uuid}/policy")
    async def set_policy(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: service.set_policy(call.db, call.me, listing_id, forms.decode(PolicyIn, data)),
            "政策属性已更新",
            f"/supplier/listings/{listing_id}/edit#policy",
            keep=data,
        )

    @post("/listings/{listing_id:uuid}/price-request/withdraw")
    async def withdraw_price_request(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: prices.withdraw_price_request(call.db, call.me, listing_id),
            "已撤回待审核的调价，商品价格不变",
            "/supplier/listings",
        )

    @post("/listings/{listing_id:uuid}/status")
    async def listing_status(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Listing:
            status = forms.decode(StatusForm, data).status
            return await service.set_listing_status(
                call.db, call.me, listing_id, status, margin=call.settings.price_margin
            )

        return await call.act(
            go,
            lambda listing: "商品已下架" if listing.status == ListingStatus.DELISTED else "商品已重新上架",
            "/supplier/listings",
        )

    @post("/imports")
    async def upload_import(self, call: UserCall, data: MultipartBody[dict[str, Any]]) -> Redirect:
        async def go() -> ListingImport:
            file = data.get("file")
            if not isinstance(file, UploadFile) or not file.filename:
                raise InvalidInput("请选择要上传的 CSV 或 XLSX 文件", code="file_required")
            strict = str(data.get("strict", "")) in ("1", "on")
            return await imports.upload(
                call.db, files.store_for(call.settings, call.db), call.me, file, strict=strict
            )

        return await call.act(
            go,
            lambda batch: f"文件「{batch.filename}」已上传，正在后台读取和校验",
            "/supplier/listings",
            to=lambda batch: f"/supplier/imports/{batch.id}",
        )

    @get("/imports/{import_id:uuid}")
    async def import_page(self, call: UserCall, import_id: FromPath[uuid.UUID]) -> Template:
        batch = await imports.get_import(call.db, call.me, import_id)
        refused = [r for r in batch.report or [] if r[1] == imports.REFUSED][:200]
        return call.render(
            "supplier_import.html",
            batch=batch,
            percent=imports.percent(batch),
            refused=refused,
            labels=imports.STATUS_LABELS,
        )

    @get("/imports/{import_id:uuid}/report.csv")
    async def import_report(self, call: UserCall, import_id: FromPath[uuid.UUID]) -> Response[bytes]:
        batch = await imports.get_import(call.db, call.me, import_id)
        return csv_download(imports.report_bytes(batch), "import-report.csv")


# The center's tabs: the listings waiting for review, the price changes waiting, and the listings
# frozen, delisted or rejected to follow up.
PRICES_TAB = "prices"
REVIEW_TABS = (
    ListingStatus.SUBMITTED,
    PRICES_TAB,
    ListingStatus.FROZEN,
    ListingStatus.DELISTED,
    ListingStatus.REJECTED,
)


class CenterPages(Controller):
    """The procurement center's review of listings and price changes (the regulator follows along)."""

    path = "/center"
    opt = allow("center")
    include_in_schema = False

    @get("/listings", opt=REVIEWERS)
    async def review_page(
        self,
        request: AnyRequest,
        db: DB,
        settings: Config,
        page: FromQuery[str] = "1",
        status: FromQuery[str] = "submitted",
    ) -> Template:
        """The center's review queue (oldest first), the price changes waiting for review, and the
        frozen / delisted listings to follow up."""
        status = status if status in REVIEW_TABS else ListingStatus.SUBMITTED
        pg = page_no(page)
        price_requests: list[PriceRequest] = []
        rows: list[Listing] = []
        async with db.read() as s:
            if status == ListingStatus.SUBMITTED:
                total, rows = await browse.review_queue(s, pg, 20)
            elif status == PRICES_TAB:
                total, price_requests = await prices.price_review_queue(s, pg, 20)
            else:
                total, rows = await browse.listings_by_status(s, ListingStatus(status), pg, 20)
            counts = await browse.status_counts(s, None)
            waiting_prices, _ = await prices.price_review_queue(s, 1, 1)
        return render(
            request,
            "center_listings.html",
            rows=rows,
            price_requests=price_requests,
            **paging(total, pg, 20),
            status=status,
            counts=counts,
            waiting_prices=waiting_prices,
            status_labels=LISTING_STATUS_LABELS,
            margin=settings.price_margin,
            review_steps={x.id: steps.listing_step(x, settings.work_calendar) for x in rows},
            now=clock.now(),
        )

    @post("/prices/{request_id:uuid}")
    async def review_price(self, call: UserCall, request_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: prices.review_price(
                call.db, call.settings, call.me, request_id, forms.decode(ReviewIn, data)
            ),
            lambda result: (
                "调价已审核通过，新价格已生效"
                if result[1].status == PriceRequestStatus.APPROVED
                else "已驳回调价，供应商将看到驳回原因，原价不变"
            ),
            "/center/listings?status=prices",
        )

    @post("/listings/approve-many")
    async def approve_many(self, call: UserCall, data: Form) -> Redirect:
        """批量通过: the ticked listings (`pick_<id>` = "price|reference" as the reviewer saw them),
        each approved on its own, as if one by one: one that fails (changed since, priced over its
        reference) is named with why and the others go through."""
        picks: list[tuple[uuid.UUID, str, str]] = []
        for key, value in data.items():
            if key.startswith("pick_"):
                try:
                    price, _, reference = value.partition("|")
                    picks.append((uuid.UUID(key[5:]), price, reference))
                except ValueError:
                    raise InvalidInput("勾选的商品无效", code="invalid_parameter") from None
        if not picks:
            flash(call.request, "请先勾选要通过的商品", "error")
            return Redirect("/center/listings", status_code=303)
        if len(picks) > BULK_MAX:
            flash(call.request, f"一次至多批量通过 {BULK_MAX} 件商品", "error")
            return Redirect("/center/listings", status_code=303)
        async with call.db.read() as s:
            names = dict(
                (
                    await s.execute(
                        select(Listing.id, Listing.name).where(Listing.id.in_([p[0] for p in picks]))
                    )
                ).all()
            )
        done, failed = 0, []
        for listing_id, price, reference in picks:
            review = ReviewIn(decision="approve", price=price or None, reference_price=reference or None)
            try:
                await service.review(call.db, call.settings, call.me, listing_id, review)
                done += 1
            except DomainError as exc:
                failed.append(f"「{names.get(listing_id, listing_id)}」{exc.detail}")
        flash(call.request, f"已批量通过 {done} 件商品，均已上架", "ok")
        if failed:
            flash(call.request, f"{len(failed)} 件未能通过：" + "；".join(failed[:5]), "error")
        return Redirect("/center/listings", status_code=303)

    @post("/listings/{listing_id:uuid}/review")
    async def review_listing(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: service.review(call.db, call.settings, call.me, listing_id, forms.decode(ReviewIn, data)),
            lambda listing: (
                "已审核通过，商品已上架"
                if listing.status == ListingStatus.LIVE
                else "已驳回，供应商将看到驳回原因"
            ),
            "/center/listings",
        )


ROUTES = [GoodsPages, SupplierPages, CenterPages]
