"""Passwords: how they are hashed (argon2id) and checked, and the policy a new one must meet."""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mall.core import fields
from mall.core.errors import InvalidInput

# Cheap enough for a 2-core machine under a checkout benchmark, still memory-hard.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@functools.lru_cache(maxsize=1)
def dummy_hash() -> str:
    return _hasher.hash("no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


PASSWORD_MIN = 10


COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords, lowercased (see mall/data/README.md for the source)."""
    return frozenset(COMMON_PASSWORDS.read_text(encoding="utf-8").split())


# Passwords printed where anyone can read them: the demo accounts' password (README, demo login
# page). The demo seed sets it; nobody else may choose it.
PUBLISHED_PASSWORDS = frozenset({"sunshine-demo-2026"})


def _comparable(text: str) -> str:
    """A password or name as the rules compare it: width folded (ＰＡＳＳ = PASS), trimmed, caseless."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def password_problem(password: str, username: str, *, published_ok: bool = False) -> tuple[str, str] | None:
    """(rule, Chinese message) of the first rule a new password breaks, or None. The one policy for
    every password that is set: accounts the admin opens, password changes, the demo seed (the only
    caller with `published_ok`). Spaces around a password do not count towards its length, and
    full-width letters and digits count as their ASCII forms when it is compared with the username
    and the common list."""
    if len(password) > fields.PASSWORD_MAX:
        return "too_long", f"密码不能超过 {fields.PASSWORD_MAX} 个字符"
    if fields.bad_character(password) is not None:
        return "bad_character", "密码不能含换行、控制字符、文字方向控制字符或不可见字符"
    if not password.strip():
        return "blank", "密码不能只由空白字符组成"
    length = len(password.strip())
    if length < PASSWORD_MIN:
        return "too_short", f"密码至少 {PASSWORD_MIN} 个字符，首尾空格不计（现为 {length} 个）"
    plain = _comparable(password)
    if plain == _comparable(username):
        return "same_as_username", "密码不能与用户名相同"
    if plain in common_passwords():
        return "too_common", "密码过于常见（属于最常用的 10,000 个密码），请换一个不易猜到的密码"
    if plain in PUBLISHED_PASSWORDS and not published_ok:
        return "published", "该密码是公开的演示密码，任何人都知道，请换一个"
    return None


def require_sound_password(password: str, username: str, *, published_ok: bool = False) -> None:
    problem = password_problem(password, username, published_ok=published_ok)
    if problem is not None:
        rule, message = problem
        raise InvalidInput(message, code="password_invalid", rule=rule)
