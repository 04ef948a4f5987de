"""Personal data encrypted at rest: the data keys and the `EncryptedText` column type.

A column of type `EncryptedText` holds, for every non-empty value, `enc1:` followed by a Fernet token
(AES-128-CBC with an HMAC-SHA256 over it, from the `cryptography` library) of the value's UTF-8
bytes; an empty string stays empty (there is nothing to protect, and the models' defaults need no
key). The ORM encrypts on the way in and decrypts on the way out, so code reads and writes plain
strings; the database, its backups and its dumps hold only ciphertext. Such a column can never be
searched or compared in SQL (each encryption of a value differs): it is for what is only shown.

The keys (`DataKeys`) are a list, newest first: values are encrypted with the first and decrypted
with whichever matches, so a new key can be put first everywhere, then `mall rotate-data-key`
re-encrypts every value with it (`rotate`), then the old key can be dropped. They come from the
setting `MALL_DATA_KEY` (required with a server database), or, for a SQLite database, from the file
`data_key` beside the database file, generated on first use: the key goes with the database it
encrypts, so processes sharing a SQLite file share its key whatever their data directories.

A `Database` binds its keys to its engine's dialect (`bind`); the column type finds them there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from mall.core.db import Database

PREFIX = "enc1:"
KEY_FILE = "data_key"  # beside a SQLite database file
KEY_BYTES = 32


class DataKeyError(RuntimeError):
    """A data key that is malformed or missing, or a stored value none of the keys decrypts
    (English: for operators' logs; nothing of the value is in the message)."""


def _raw_key(text: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_").encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DataKeyError("a data key must be 32 bytes in base64") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(f"a data key must be 32 bytes in base64, not {len(raw)} bytes")
    return raw


def new_key() -> str:
    """A fresh key as `MALL_DATA_KEY` takes it (URL-safe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class DataKeys:
    """The keys, newest first: the first encrypts, any of them decrypts."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise DataKeyError("no data key")
        self._fernets = [Fernet(base64.urlsafe_b64encode(k)) for k in keys]
        self._all = MultiFernet(self._fernets)
        # Short fingerprints, to tell keys apart in messages without showing them.
        self.fingerprints = [hashlib.sha256(k).hexdigest()[:8] for k in keys]

    @classmethod
    def parse(cls, text: str) -> DataKeys:
        """Keys separated by commas, spaces or new lines, newest first."""
        parts = [p for p in re.split(r"[\s,]+", text) if p]
        if not parts:
            raise DataKeyError("no data key")
        return cls([_raw_key(p) for p in parts])

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernets[0].encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise DataKeyError("a personal-data column holds a value that is not encrypted")
        try:
            return self._all.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise DataKeyError(
                "a personal-data value cannot be decrypted with the configured data keys "
                f"(MALL_DATA_KEY, fingerprints {', '.join(self.fingerprints)})"
            ) from None

    def is_current(self, stored: str) -> bool:
        """Whether the value is encrypted with the first (newest) key."""
        if not stored.startswith(PREFIX):
            return False
        try:
            self._fernets[0].decrypt(stored[len(PREFIX) :].encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, stored: str) -> str:
        """The value encrypted again with the first key (unchanged when it already is)."""
        return stored if self.is_current(stored) else self.encrypt(self.decrypt(stored))


# -------------------------------------------------------------------- the key file of a SQLite database

_file_lock = threading.Lock()


def key_file(path: Path) -> DataKeys:
    """The keys kept in a file (one a line, newest first); the file is made, readable by its owner
    only, with one new key when it does not exist yet."""
    with _file_lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(new_key() + "\n")
        return DataKeys.parse(path.read_text())


def sqlite_key_path(url: str) -> Path | None:
    """Where the key file of a SQLite database is: beside its file (None: an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).resolve().parent / KEY_FILE


def keys_beside(url: str) -> DataKeys:
    """The keys of a SQLite database when no MALL_DATA_KEY is given: its key file (made on first
    use); an in-memory database lives and dies with this process, and so does its key."""
    path = sqlite_key_path(url)
    if path is None:
        return DataKeys.parse(new_key())
    return key_file(path)


def prepend_key(path: Path) -> DataKeys:
    """A new key written first in a key file (the older ones stay, to decrypt what they encrypted)."""
    with _file_lock:
        old = path.read_text() if path.exists() else ""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key() + "\n" + old)
        tmp.replace(path)
    return DataKeys.parse(path.read_text())


# -------------------------------------------------------------------- keys bound to a database engine


@dataclass
class _Binding:
    keys: DataKeys | None
    resolve: Callable[[], DataKeys] | None  # resolved on first use (a SQLite key file)


_bound: weakref.WeakKeyDictionary[Dialect, _Binding] = weakref.WeakKeyDictionary()


def bind(dialect: Dialect, keys: DataKeys | Callable[[], DataKeys] | None) -> None:
    """The keys the engine of this dialect encrypts and decrypts with: keys, a function giving them
    on first use, or None (a value to encrypt or decrypt is then refused)."""
    _bound[dialect] = _Binding(None, keys) if callable(keys) else _Binding(keys, None)


def keys_for(dialect: Dialect) -> DataKeys:
    binding = _bound.get(dialect)
    if binding is not None and binding.keys is None and binding.resolve is not None:
        binding.keys, binding.resolve = binding.resolve(), None
    if binding is None or binding.keys is None:
        raise DataKeyError(
            "no data key for this database: set MALL_DATA_KEY (every process sharing the database needs the same)"
        )
    return binding.keys


class EncryptedText(TypeDecorator[str]):
    """A string encrypted at rest with the database's data keys (see the module's docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if not value:
            return value
        return keys_for(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if not value:
            return value
        return keys_for(dialect).decrypt(value)


# -------------------------------------------------------------------- re-encrypting with the newest key


def encrypted_columns(metadata: MetaData) -> list[tuple[str, list[str]]]:
    """(table, [columns]) of every `EncryptedText` column of the schema, tables in dependency order."""
    out = []
    for table in metadata.sorted_tables:
        names = [c.name for c in table.columns if isinstance(c.type, EncryptedText)]
        if names:
            out.append((table.name, names))
    return out


@dataclass
class Rotated:
    values: int = 0  # non-empty encrypted values seen
    rewritten: int = 0  # of those, encrypted again with the newest key


async def rotate(
    db: Database,
    metadata: MetaData,
    *,
    batch: int = 500,
    progress: Callable[[str, Rotated], None] | None = None,
) -> dict[str, Rotated]:
    """Every encrypted value of the schema encrypted again with the first of the database's keys,
    table by table in batches of rows (one transaction each, by primary key), so the older keys can
    then be dropped. Values already under the first key are left alone: running it again after an
    interruption finishes the work."""
    keys = keys_for(db.engine.sync_engine.dialect)
    done: dict[str, Rotated] = {}
    for table_name, columns in encrypted_columns(metadata):
        pk = [c.name for c in metadata.tables[table_name].primary_key.columns]
        if len(pk) != 1:
            raise DataKeyError(f"{table_name}: rotation needs a single-column primary key")
        # The stored text itself, not through EncryptedText.
        table = sa.table(table_name, sa.column(pk[0], sa.Uuid()), *(sa.column(c, sa.Text()) for c in columns))
        key_col = table.c[pk[0]]
        tally = done[table_name] = Rotated()
        after: Any = None
        while True:
            async with db.write() as tx:
                stmt = sa.select(key_col, *(table.c[c] for c in columns)).order_by(key_col).limit(batch)
                if after is not None:
                    stmt = stmt.where(key_col > after)
                rows = (await tx.session.execute(stmt)).all()
                for row in rows:
                    changes = {}
                    for name, value in zip(columns, row[1:], strict=True):
                        if value:
                            tally.values += 1
                            if not keys.is_current(value):
                                changes[name] = keys.rotate(value)
                    if changes:
                        tally.rewritten += len(changes)
                        await tx.session.execute(table.update().where(key_col == row[0]).values(**changes))
            if progress is not None:
                progress(table_name, tally)
            if len(rows) < batch:
                break
            after = rows[-1][0]
    return done
