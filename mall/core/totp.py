"""The second factor: time-based one-time passwords (TOTP, RFC 6238) from an authenticator app.

The shared secret is stored encrypted (AES-GCM, key derived from `MALL_SECRET_KEY`) and shown once,
at enrolment, as an otpauth URI and as text. A code is accepted for the time step before, at or after
the current one (30 s each, for clocks a little apart), and only for a step later than the last one
accepted for that user: a code seen once can never be used again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
from datetime import datetime

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ISSUER = "阳光卖场"
INTERVAL = 30
DIGITS = 6
WINDOW = 1  # steps accepted on either side of the current one
# Who may enrol (and whom MALL_REQUIRE_TOTP may oblige to): the three administrators, procurement
# centers and regulators — the accounts with the widest reach.
ROLES = ("sysadmin", "secadmin", "auditor", "center", "regulator")
_CODE = re.compile(r"^[0-9]{6}$")
_AAD = b"mall-totp-secret"


@functools.lru_cache(maxsize=4)
def key_for(secret_key: str) -> bytes:
    """The encryption key of stored TOTP secrets, derived from the app's secret key."""
    return hashlib.sha256(b"mall-totp-v1\x00" + secret_key.encode("utf-8")).digest()


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits, as RFC 4226 recommends


def seal(key: bytes, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode("ascii"), _AAD)
    return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(key: bytes, stored: str) -> str | None:
    """The secret, or None if it cannot be read with this key (MALL_SECRET_KEY changed)."""
    if not stored.startswith("v1."):
        return None
    try:
        raw = base64.urlsafe_b64decode(stored[3:].encode("ascii"))
        return AESGCM(key).decrypt(raw[:12], raw[12:], _AAD).decode("ascii")
    except (InvalidTag, ValueError):
        return None


def uri(secret: str, username: str) -> str:
    """What an authenticator app scans or is given: otpauth://totp/…"""
    return pyotp.TOTP(secret, interval=INTERVAL, digits=DIGITS).provisioning_uri(
        name=username, issuer_name=ISSUER
    )


def code_at(secret: str, at: datetime) -> str:
    """The code of the time step at `at` (the tests stand in for an authenticator app with it)."""
    return pyotp.TOTP(secret, interval=INTERVAL, digits=DIGITS).at(at)


def step_of(at: datetime) -> int:
    return int(at.timestamp()) // INTERVAL


def matching_step(secret: str, code: str, at: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to, if it is one of the accepted steps around `at` and later
    than `last_step`; None otherwise. Every candidate is compared, in constant time."""
    code = code.strip().replace(" ", "")
    if not _CODE.fullmatch(code):
        return None
    otp = pyotp.TOTP(secret, interval=INTERVAL, digits=DIGITS)
    now = step_of(at)
    found: int | None = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(otp.generate_otp(step), code) and (last_step is None or step > last_step):
            found = step
    return found
