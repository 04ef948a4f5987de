"""The mall's own certificate authority and one signing certificate per organization.

The CA is made on first use (the launcher makes it on first start) and signs each organization's
certificate when that organization first signs a contract. Keys are EC P-256, encrypted at rest
with the database's data keys. The subject names the organization and its 统一社会信用代码
(serialNumber), which is how a verifier knows which party a signature belongs to.

This is tamper evidence (防篡改签名), not a legally reliable electronic signature: that needs a
licensed CA (电子签名法) and, for government seals, SM2/SM3. Production plugs such a service into
the signer adapter (mall.contracts.signing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mall.contracts.models import CA_HOLDER, SigningCertificate
from mall.core import clock
from mall.core.db import Database
from mall.core.models import Organization

CA_NAME = "阳光卖场防篡改签名根证书"
CA_YEARS = 30
ORG_YEARS = 20  # beyond the fifteen years the contract is kept


@dataclass(frozen=True)
class KeyPair:
    cert_pem: str
    key_pem: str

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def _name(org_name: str, code: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name[:64]),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, code),
            x509.NameAttribute(NameOID.COMMON_NAME, org_name[:64]),
        ]
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_pair(org_name: str, code: str, *, issuer: KeyPair | None = None, years: int = ORG_YEARS) -> KeyPair:
    """Pure (but for the randomness): a new key and its certificate, issued by `issuer` (the CA) or,
    without one, a self-signed CA certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(org_name, code)
    now = clock.now()
    ca = issuer is None
    issuer_cert = issuer.certificate() if issuer else None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_usage(ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    signing_key = issuer.private_key() if issuer else key
    cert = builder.sign(signing_key, hashes.SHA256())
    return KeyPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


async def _stored(db: Database, holder: str) -> SigningCertificate | None:
    async with db.read() as s:
        return (
            await s.execute(select(SigningCertificate).where(SigningCertificate.holder == holder))
        ).scalar_one_or_none()


async def _keep(db: Database, holder: str, org_id: uuid.UUID | None, pair: KeyPair) -> KeyPair:
    """Store a new pair for `holder`, unless another process stored one first: then that one."""
    cert = pair.certificate()
    try:
        async with db.write() as tx:
            tx.session.add(
                SigningCertificate(
                    holder=holder,
                    org_id=org_id,
                    subject=cert.subject.rfc4514_string()[:400],
                    serial=format(cert.serial_number, "x"),
                    cert_pem=pair.cert_pem,
                    key_pem=pair.key_pem,
                    created_at=clock.now(),
                    not_after=cert.not_valid_after_utc,
                )
            )
    except IntegrityError:
        pass
    row = await _stored(db, holder)
    assert row is not None
    return KeyPair(row.cert_pem, row.key_pem)


async def authority(db: Database) -> KeyPair:
    """The mall's CA, made on first use."""
    row = await _stored(db, CA_HOLDER)
    if row is not None:
        return KeyPair(row.cert_pem, row.key_pem)
    return await _keep(db, CA_HOLDER, None, make_pair(CA_NAME, "SUNSHINE-MALL-CA", years=CA_YEARS))


async def of_organization(db: Database, org: Organization) -> KeyPair:
    """The organization's own signing certificate, issued by the mall's CA on its first signature."""
    row = await _stored(db, str(org.id))
    if row is not None:
        return KeyPair(row.cert_pem, row.key_pem)
    ca = await authority(db)
    return await _keep(db, str(org.id), org.id, make_pair(org.name, org.credit_code, issuer=ca))
