"""The e-contract as a signed document: a PDF made from the order, signed by each party with its own
certificate (PAdES), verified on the page, the API and the command line; filed only once both
signed; and its 合同公告 published to the public list of notices."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from mall import notices, orders, oversight
from mall.cli import cmd_contract_verify
from mall.contracts import keys, pdf, signing
from mall.contracts import service as contracts
from mall.contracts.models import CA_HOLDER, SigningCertificate
from mall.core import clock, files, pdf_fonts
from mall.core.errors import Conflict
from mall.core.money import money_str, yuan_uppercase
from mall.orders.models import Order
from tests.factories import World, sign_both
from tests.security.login_helpers import assert_problem


async def confirmed_order(world: World, listing: str = "laptop") -> uuid.UUID:
    buyer = world.who["buyer_a"]
    supplier = world.who["supplier_x" if listing in ("laptop", "printer") else "supplier_y"]
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        buyer,
        orders.CheckoutRequest(
            world.lines["a1"].id,
            uuid.uuid4().hex,
            ((world.listings[listing].id, "2"),),
            delivery_address="行政楼 3 层 张三 13800138000",
        ),
    )
    await orders.confirm(world.db, supplier, placed[0].id)
    return placed[0].id


def store(world: World) -> files.FileStore:
    return files.store_for(world.settings, world.db)


async def sign(world: World, who: str, order_id: uuid.UUID) -> Order:
    return await contracts.sign_contract(world.db, world.settings, store(world), world.who[who], order_id)


async def roots(world: World) -> list[bytes]:
    return await signing.LocalSigner(world.db).trust_roots()


async def stored_pdf(world: World, order_id: uuid.UUID) -> bytes:
    async with world.db.read() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        data = await contracts.current_pdf(store(world), order)
    assert data is not None
    return data


# ---------------------------------------------------------------- the document


def test_payment_terms_name_the_30_days_for_small_and_medium_suppliers() -> None:
    terms, planned = contracts.planned_payment(True, 30)
    assert "中小企业" in terms and "30 日内" in terms and "第 30 日" in planned
    terms, planned = contracts.planned_payment(False, 30)
    assert "中小企业" not in terms and "30 日内" in planned


async def test_the_pdf_embeds_a_cjk_font_and_says_what_the_contract_says(world: World) -> None:
    order_id = await confirmed_order(world)
    async with world.db.read() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        doc = contracts.document_of(order, world.settings)
    assert doc.buyer.credit_code == order.buyer.credit_code
    assert doc.supplier.credit_code == order.supplier.credit_code
    assert doc.total == money_str(order.total_amount) and doc.total_upper == yuan_uppercase(
        order.total_amount
    )
    assert "元" in doc.total_upper and len(doc.lines) == 1 and doc.lines[0].quantity == "2"
    assert "30 日" in doc.payment_terms + doc.planned_payment and "人民法院" in pdf.DISPUTES
    data = pdf.render(doc)
    assert data.startswith(b"%PDF") and data == pdf.render(doc)  # deterministic
    if pdf_fonts.font_name() == pdf_fonts.FALLBACK_FONT:
        pytest.fail("no CJK TrueType font: apt-get install fonts-wqy-microhei (./dev prepare installs it)")
    assert b"/FontFile2" in data  # the TrueType font is embedded (a subset), not only named
    # No personal data: the delivery place by reference to the order, no contact phone.
    assert "13800138000" not in str(doc.to_dict()) and order.order_no in doc.delivery_place
    assert not doc.buyer.phone and not doc.supplier.phone


# ---------------------------------------------------------------- signing and filing


async def test_both_parties_sign_with_their_own_keys_then_the_buyer_files(world: World) -> None:
    order_id = await confirmed_order(world)
    # Filing before both signed is refused.
    with pytest.raises(Conflict) as refused:
        await orders.file_contract(world.db, world.who["buyer_a"], order_id)
    assert refused.value.code == "contract_not_signed"

    order = await sign(world, "supplier_x", order_id)
    assert order.status == "confirmed" and order.supplier_signed_at and not order.buyer_signed_at
    # One party cannot sign twice.
    with pytest.raises(Conflict) as twice:
        await sign(world, "supplier_x", order_id)
    assert twice.value.code == "already_signed"
    order = await sign(world, "buyer_a", order_id)
    assert order.status == "signed" and order.signed_at is not None

    data = await stored_pdf(world, order_id)
    assert hashlib.sha256(data).hexdigest() == order.contract_sha256
    checked = await signing.verify(data, await roots(world))
    assert checked.signed_by_both, checked
    by_code = {s.credit_code: s for s in checked.signatures}
    async with world.db.read() as s:
        o = await s.get(Order, order_id)
        assert o is not None
        assert by_code[o.buyer.credit_code].org_name == o.buyer.name
        assert by_code[o.supplier.credit_code].org_name == o.supplier.name
        # One certificate per organization, each issued by the mall's CA; never one key for both.
        certs = list((await s.execute(select(SigningCertificate))).scalars())
    holders = {c.holder for c in certs}
    assert {CA_HOLDER, str(o.buyer_org_id), str(o.supplier_org_id)} <= holders
    assert len({c.cert_pem for c in certs}) == len(certs)

    filed = await orders.file_contract(world.db, world.who["buyer_a"], order_id)
    assert filed.status == "contracted"


async def test_a_changed_byte_is_detected(world: World) -> None:
    order_id = await confirmed_order(world)
    await sign_both(world.db, world.settings, world.who["buyer_a"], order_id)
    data = await stored_pdf(world, order_id)
    # Change one byte inside the first revision's page content (a number in a content stream).
    at = data.index(b"stream", data.index(b"/Length")) + 40
    tampered = bytearray(data)
    tampered[at] = tampered[at] ^ 0x01
    checked = await signing.verify(bytes(tampered), await roots(world))
    assert not checked.signed_by_both and not checked.all_valid
    assert all(not s.intact for s in checked.signatures) or checked.problem
    # And a file that is not a PDF at all is a clear "cannot verify", never an exception.
    junk = await signing.verify(b"not a pdf", await roots(world))
    assert junk.problem and not junk.signed_by_both


async def test_nothing_may_be_added_after_both_signed(world: World) -> None:
    """A field whose appearance is drawn over the page, added after the last signature, changes what
    a reader sees without touching a signed byte: the contract no longer counts as signed."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields as sig_fields

    order_id = await confirmed_order(world)
    await sign_both(world.db, world.settings, world.who["buyer_a"], order_id)
    data = await stored_pdf(world, order_id)
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    sig_fields.append_signature_field(writer, sig_fields.SigFieldSpec("Overlay", box=(0, 0, 595, 842)))
    out = io.BytesIO()
    writer.write(out)
    checked = await signing.verify(out.getvalue(), await roots(world))
    assert all(s.intact and s.trusted for s in checked.signatures)  # every signed byte is as signed
    assert not checked.signed_by_both and not checked.all_valid


async def test_a_contract_signed_twice_by_one_party_is_not_signed_by_both(world: World) -> None:
    order_id = await confirmed_order(world)
    await sign(world, "supplier_x", order_id)
    once = await stored_pdf(world, order_id)
    async with world.db.read() as s:
        o = await s.get(Order, order_id)
        assert o is not None
        supplier_org = o.supplier
    # The supplier's key signs the buyer's field too: two valid signatures, one party.
    pair = await keys.of_organization(world.db, supplier_org)
    ca = await keys.authority(world.db)
    ca_der = ca.certificate().public_bytes(serialization.Encoding.DER)
    twice = await signing.sign_with(once, pair, [ca_der], signing.FIELDS["buyer"])
    checked = await signing.verify(twice, await roots(world))
    assert checked.all_valid and len(checked.signatures) == 2
    assert not checked.signed_by_both
    # A certificate from another CA is not trusted.
    stranger_ca = keys.make_pair("某某外部机构", "X" * 18)
    stranger = keys.make_pair(supplier_org.name, supplier_org.credit_code, issuer=stranger_ca)
    forged = await signing.sign_with(
        once, stranger, [stranger_ca.certificate().public_bytes(serialization.Encoding.DER)], "Other"
    )
    assert not (await signing.verify(forged, await roots(world))).all_valid


async def test_only_the_parties_sign_and_a_cancel_request_stops_signing(client: Any, world: World) -> None:
    order_id = await confirmed_order(world)
    url = f"/api/orders/{order_id}/sign"
    assert_problem(await client.post(url, headers=world.h("supplier_y")), 404, "order_not_found")
    assert_problem(await client.post(url, headers=world.h("buyer_b")), 404, "order_not_found")
    assert_problem(await client.post(url, headers=world.h("regulator")), 403, "forbidden")
    r = await client.post(
        f"/api/orders/{order_id}/cancel-request", json={"reason": "预算调整"}, headers=world.h("buyer_a")
    )
    assert r.status_code == 200, r.text
    assert_problem(await client.post(url, headers=world.h("supplier_x")), 409, "cancel_request_pending")


async def test_the_api_signs_verifies_and_serves_the_pdf(client: Any, world: World) -> None:
    order_id = await confirmed_order(world)
    sup, buy = world.h("supplier_x"), world.h("buyer_a")
    r = await client.get(f"/api/orders/{order_id}/contract/verification", headers=buy)
    assert r.status_code == 200 and r.json()["signatures"] == [] and not r.json()["signed_by_both"]
    # Before anyone signs, the PDF is the text to be signed.
    r = await client.get(f"/api/orders/{order_id}/contract.pdf", headers=sup)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and b"/Sig" not in r.content
    for who, status in ((sup, "confirmed"), (buy, "signed")):
        r = await client.post(f"/api/orders/{order_id}/sign", headers=who)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    assert_problem(await client.post(f"/api/orders/{order_id}/sign", headers=buy), 409, "invalid_state")
    r = await client.get(f"/api/orders/{order_id}/contract/verification", headers=world.h("regulator"))
    body = r.json()
    assert (
        body["signed_by_both"]
        and len(body["signatures"]) == 2
        and all(s["valid"] for s in body["signatures"])
    )
    r = await client.get(f"/api/orders/{order_id}/contract.pdf", headers=buy)
    assert hashlib.sha256(r.content).hexdigest() == body["sha256"]
    # Someone else's contract is not there.
    assert (
        await client.get(f"/api/orders/{order_id}/contract.pdf", headers=world.h("buyer_b"))
    ).status_code == 404
    r = await client.post(f"/api/orders/{order_id}/contract", headers=buy)
    assert r.status_code == 200 and r.json()["status"] == "contracted"


async def test_the_command_line_verifies_a_file(world: World, tmp_path: Any, capsys: Any) -> None:
    order_id = await confirmed_order(world)
    await sign_both(world.db, world.settings, world.who["buyer_a"], order_id)
    data = await stored_pdf(world, order_id)
    good, bad = tmp_path / "good.pdf", tmp_path / "bad.pdf"
    good.write_bytes(data)
    tampered = bytearray(data)
    at = data.index(b"stream", data.index(b"/Length")) + 40
    tampered[at] ^= 1
    bad.write_bytes(bytes(tampered))
    ca = tmp_path / "ca.pem"
    ca.write_text((await keys.authority(world.db)).cert_pem)
    # (the command runs its own event loop: in a thread of its own here)
    verify = asyncio.to_thread
    assert (
        await verify(cmd_contract_verify, world.settings, argparse.Namespace(file=str(good), root=[str(ca)]))
        == 0
    )
    out = capsys.readouterr().out
    assert "双方签名均有效" in out and "乙方" in out
    assert (
        await verify(cmd_contract_verify, world.settings, argparse.Namespace(file=str(bad), root=[str(ca)]))
        == 1
    )
    assert "无效" in capsys.readouterr().out


# ---------------------------------------------------------------- 合同公告


async def test_signing_publishes_a_contract_notice_once_without_personal_data(
    client: Any, world: World
) -> None:
    order_id = await confirmed_order(world)
    await sign_both(world.db, world.settings, world.who["buyer_a"], order_id)
    assert await notices.publish_pending(world.db) == 1
    assert await notices.publish_pending(world.db) == 0  # once
    r = await client.get("/api/notices")
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 1
    notice = page["items"][0]
    assert notice["kind"] == "contract" and notice["kind_label"] == "合同公告" and not notice["late"]
    async with world.db.read() as s:
        o = await s.get(Order, order_id)
        assert o is not None
    assert notice["body"]["contract_no"] == o.contract_no
    assert notice["body"]["signed_pdf_sha256"] == o.contract_sha256
    text = r.text
    assert "13800138000" not in text and "张三" not in text
    # The signed PDF itself, which anyone may verify: it holds no personal data.
    r1 = await client.get(notice["pdf_url"])
    assert r1.status_code == 200 and r1.content == await stored_pdf(world, order_id)
    assert hashlib.sha256(r1.content).hexdigest() == notice["body"]["signed_pdf_sha256"]
    assert (await signing.verify(r1.content, await roots(world))).signed_by_both
    assert b"13800138000" not in r1.content and "张三".encode("utf-16-be") not in r1.content
    # The page lists it; one notice; bad parameters are clear refusals.
    r = await client.get("/notices")
    assert r.status_code == 200 and o.contract_no in (await client.get(f"/notices/{notice['seq']}")).text
    assert_problem(await client.get("/api/notices?kind=deal"), 400, "invalid_parameter")
    assert_problem(await client.get("/api/notices?limit=0"), 400, "invalid_parameter")
    assert_problem(await client.get("/api/notices/999"), 404, "notice_not_found")
    # Digits Python's isdigit() takes but int() does not, and numbers past any column: refused.
    assert_problem(await client.get("/api/notices?before=²"), 400, "invalid_parameter")
    assert_problem(await client.get("/api/notices?limit=¹"), 400, "invalid_parameter")
    assert_problem(await client.get("/api/notices/99999999999999999999"), 404, "notice_not_found")
    assert (await client.get("/notices/99999999999999999999")).status_code == 404
    assert (await client.get("/notices/99999999999999999999/contract.pdf")).status_code == 404
    assert (await client.get("/notices?before=²")).status_code == 200


async def test_notices_are_never_edited(world: World) -> None:
    order_id = await confirmed_order(world)
    await sign_both(world.db, world.settings, world.who["buyer_a"], order_id)
    await notices.publish_pending(world.db)
    from sqlalchemy import update

    from mall.notices.models import Notice

    with pytest.raises(Exception, match="依法保存的记录不可删除或改写"):
        async with world.db.write() as tx:
            await tx.session.execute(update(Notice).values(title="改过的标题"))


async def test_a_late_contract_notice_is_a_case_for_the_regulator(client: Any, world: World) -> None:
    order_id = await confirmed_order(world)
    await sign_both(world.db, world.settings, world.who["buyer_a"], order_id)
    # The publisher did not run (a worker outage); a week later the notice is overdue.
    later = clock.now() + timedelta(days=7)
    async with world.db.read() as s:
        found = await oversight.late_contract_notices(s, world.settings, later)
    assert [n.order.id for n in found] == [order_id] and found[0].seq is None
    clock.clock.freeze(later)
    try:
        assert await notices.publish_pending(world.db) == 1
        async with world.db.read() as s:
            found = await oversight.late_contract_notices(s, world.settings, later)
            published = (await notices.page(s))[0]
    finally:
        clock.clock.unfreeze()
    assert published[0].late and [n.seq for n in found] == [published[0].seq]
    from tests.mall.test_pages import HTML, login_ok

    await login_ok(client, "regulator")
    r = await client.get("/oversight", headers=HTML)
    assert r.status_code == 200 and "合同公告逾期" in r.text


async def test_the_contract_page_shows_both_signatures_and_a_sign_button_for_the_party(
    client: Any, world: World
) -> None:
    from tests.mall.test_pages import HTML, login_ok

    order_id = await confirmed_order(world)
    await sign(world, "supplier_x", order_id)
    await login_ok(client, "buyer_a")
    text = (await client.get(f"/orders/{order_id}/contract", headers=HTML)).text
    assert "防篡改签名" in text and "以本单位证书签署合同" in text and "待对方签署" in text
    await sign(world, "buyer_a", order_id)
    text = (await client.get(f"/orders/{order_id}/contract", headers=HTML)).text
    assert "核验通过" in text and "以本单位证书签署合同" not in text


async def test_a_cancelled_signed_contract_gets_a_termination_notice_naming_its_notice(
    client: Any, world: World
) -> None:
    order_id = await confirmed_order(world)
    await sign_both(world.db, world.settings, world.who["buyer_a"], order_id)
    await notices.publish_pending(world.db)
    sup, buy = world.h("supplier_x"), world.h("buyer_a")
    r = await client.post(
        f"/api/orders/{order_id}/cancel-request", json={"reason": "张三 13800138000 说不要了"}, headers=buy
    )
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/orders/{order_id}/cancel-answer", json={"agree": True}, headers=sup)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await notices.publish_pending(world.db) == 1
    items = (await client.get("/api/notices")).json()["items"]
    termination, contract = items
    assert (termination["kind"], contract["kind"]) == ("termination", "contract")
    assert (
        termination["corrects_seq"] == contract["seq"] and termination["body"]["result"] == "双方协商解除合同"
    )
    assert "13800138000" not in str(termination) and "张三" not in str(
        termination
    )  # the reason stays private
    page = (await client.get(f"/notices/{contract['seq']}")).text
    assert "合同终止公告" in page and f"/notices/{termination['seq']}" in page


async def test_a_correction_after_the_first_signature_leaves_the_signed_contract_as_signed(
    client: Any, world: World
) -> None:
    order_id = await confirmed_order(world)
    await sign(world, "supplier_x", order_id)
    r = await client.post(
        f"/api/orders/{order_id}/correction",
        json={"reason": "规格更正", "lines": [{"line_no": 1, "item_name": "更正后的品名"}]},
        headers=world.h("buyer_a"),
    )
    assert r.status_code == 200, r.text
    await sign(world, "buyer_a", order_id)
    await notices.publish_pending(world.db)
    notice = (await client.get("/api/notices")).json()["items"][0]
    async with world.db.read() as s:
        o = await s.get(Order, order_id)
        assert o is not None and o.lines[0].item_name == "更正后的品名"
        assert o.contract_document is not None
    # The contract both signed, its notice and its page say what was signed.
    assert notice["body"]["document"]["lines"][0]["item_name"] == o.contract_document["lines"][0]["item_name"]
    assert notice["body"]["document"]["lines"][0]["item_name"] != "更正后的品名"
    assert notice["body"]["signed_pdf_sha256"] == o.contract_sha256
