"""Signing the contract PDF (PAdES, with pyHanko) behind an adapter, and verifying it.

`Signer` is the adapter: `sign(pdf, org, field)` returns the PDF with one more signature, made with
that organization's own key, and `trust_roots()` the certificates a verifier trusts. The default,
`LocalSigner`, uses the mall's own certificate authority (mall.contracts.keys): tamper evidence
(防篡改签名) for the demo, the tests and any deployment without a licensed service. Production plugs
a licensed signing service (a CA under 电子签名法; SM2/SM3 for government seals) in through the
setting `contract_signer` ("module:factory", the factory taking (db, settings) and returning a Signer).

Verification (`verify`) checks every signature: the bytes it covers are intact, its certificate
chains to a trusted root, it sits in one of the two contract fields, and nothing but the next
signature was added after it; the last one covers the whole file, so nothing at all (say, a field
whose appearance is drawn over the page) was added after the parties signed. A contract counts
as signed by both only if one valid signature carries the buyer's credit code and another the
supplier's: two signatures by one party are not two parties.
"""

from __future__ import annotations

import asyncio
import importlib
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from asn1crypto import keys as akeys
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from mall.contracts import keys
from mall.contracts.pdf import parse_keywords
from mall.core.db import Database
from mall.core.models import Organization
from mall.core.settings import Settings

FIELDS = {"buyer": "BuyerSignature", "supplier": "SupplierSignature"}
KIND_LABEL = "防篡改签名"


class Signer(Protocol):
    label: str  # what pages call the signature (the default: 防篡改签名; a licensed service: 电子签章)

    async def sign(self, pdf: bytes, org: Organization, field_name: str) -> bytes: ...

    async def trust_roots(self) -> list[bytes]:
        """DER certificates a verifier trusts."""
        ...


def _der(pem: str) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


async def sign_with(pdf: bytes, pair: keys.KeyPair, chain: list[bytes], field_name: str) -> bytes:
    """Add one PAdES signature to `pdf` in an incremental update (earlier signatures stay valid)."""
    key = pair.private_key().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=ax509.Certificate.load(_der(pair.cert_pem)),
        signing_key=akeys.PrivateKeyInfo.load(key),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [ax509.Certificate.load(c) for c in chain]
        ),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )

    def run() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        return bytes(signers.sign_pdf(writer, meta, signer=signer).getvalue())

    # CPU work of some tens of milliseconds: in a thread, so the server's event loop goes on meanwhile.
    return await asyncio.to_thread(run)


class LocalSigner:
    """The default adapter: each organization's certificate from the mall's own CA."""

    label = KIND_LABEL

    def __init__(self, db: Database) -> None:
        self.db = db

    async def sign(self, pdf: bytes, org: Organization, field_name: str) -> bytes:
        pair = await keys.of_organization(self.db, org)
        ca = await keys.authority(self.db)
        return await sign_with(pdf, pair, [_der(ca.cert_pem)], field_name)

    async def trust_roots(self) -> list[bytes]:
        return [_der((await keys.authority(self.db)).cert_pem)]


def signer_for(settings: Settings, db: Database) -> Signer:
    spec = settings.contract_signer
    if spec in ("", "local"):
        return LocalSigner(db)
    module, _, name = spec.partition(":")
    factory = getattr(importlib.import_module(module), name)
    signer: Signer = factory(db, settings)
    return signer


@dataclass
class SignatureCheck:
    field_name: str
    org_name: str
    credit_code: str
    signed_at: datetime | None
    intact: bool
    trusted: bool
    unchanged_after: bool  # nothing but further signatures (form filling) was added after it

    @property
    def valid(self) -> bool:
        return self.intact and self.trusted and self.unchanged_after


@dataclass
class Verification:
    signatures: list[SignatureCheck] = field(default_factory=list)
    contract_no: str = ""
    buyer_code: str = ""
    supplier_code: str = ""
    problem: str = ""  # the file could not be read as a signed contract

    def signed_by(self, credit_code: str) -> SignatureCheck | None:
        for sig in self.signatures:
            if sig.valid and credit_code and sig.credit_code == credit_code:
                return sig
        return None

    @property
    def all_valid(self) -> bool:
        return not self.problem and bool(self.signatures) and all(s.valid for s in self.signatures)

    @property
    def signed_by_both(self) -> bool:
        """One valid signature by the buyer and one by the supplier, every signature valid."""
        return (
            self.all_valid
            and self.buyer_code != self.supplier_code
            and self.signed_by(self.buyer_code) is not None
            and self.signed_by(self.supplier_code) is not None
        )

    def summary(self) -> str:
        if self.problem:
            return f"无法核验：{self.problem}"
        if not self.signatures:
            return "文件未签署"
        if not self.all_valid:
            return "签名无效：文件在签署后被改动，或签名证书不受信任"
        if self.signed_by_both:
            return "双方签名均有效，文件签署后未被改动"
        return "签名有效，但尚未由甲乙双方分别签署"


def _first_revision_keywords(reader: PdfFileReader) -> dict[str, str]:
    resolver = reader.get_historical_resolver(0)
    info = resolver.trailer_view.get("/Info")
    if info is None:
        return {}
    value: Any = info.get_object().get("/Keywords", "")
    return parse_keywords(str(value))


async def verify(pdf: bytes, trust_roots: list[bytes]) -> Verification:
    """Check every signature of the PDF against the trusted roots. Never raises for a bad file.
    (CPU work: in a thread, so the server's event loop goes on meanwhile.)"""
    return await asyncio.to_thread(_verify, pdf, trust_roots)


def _verify(pdf: bytes, trust_roots: list[bytes]) -> Verification:
    out = Verification()
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        named = _first_revision_keywords(reader)
        out.contract_no = named.get("no", "")
        out.buyer_code = named.get("buyer", "")
        out.supplier_code = named.get("supplier", "")
        context = ValidationContext(
            trust_roots=[ax509.Certificate.load(r) for r in trust_roots], allow_fetching=False
        )
        signatures = sorted(reader.embedded_signatures, key=lambda x: x.signed_revision)
        for i, sig in enumerate(signatures):
            status = validate_pdf_signature(sig, context)
            subject = status.signing_cert.subject.native
            level = status.modification_level
            if i == len(signatures) - 1:
                # The last signature covers the whole file: nothing at all was added after it (a
                # field or an annotation drawn over the page would be, and is refused).
                unchanged = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
            else:
                # An earlier one: only form filling after it, the next signature (checked by the
                # signature that covers it).
                unchanged = level is not None and level <= ModificationLevel.FORM_FILLING
            out.signatures.append(
                SignatureCheck(
                    field_name=str(sig.field_name),
                    org_name=str(subject.get("organization_name", "")),
                    credit_code=str(subject.get("serial_number", "")),
                    signed_at=status.signer_reported_dt,
                    intact=bool(status.intact and status.valid),
                    trusted=bool(status.trusted),
                    unchanged_after=bool(
                        unchanged and status.docmdp_ok is not False and sig.field_name in FIELDS.values()
                    ),
                )
            )
    except Exception as exc:  # a damaged or foreign file: say so, never fail the page
        out.problem = f"文件已损坏或不是本卖场的合同（{type(exc).__name__}）"
    return out
