"""The file store: uploads and export files (attachments, images and contract PDFs later) in one place
that every process on every host reaches — never only on one host's disk.

`store_for(settings, db)` gives the backend `file_store` names:

- `database` (the default): the application database itself, SQLite embedded or PostgreSQL in
  production. A file is a `stored_files` row plus its content in `stored_file_chunks`, pieces of
  CHUNK_BYTES. It is written piece by piece, each piece in a short transaction of its own (so a
  long export never holds SQLite's write lock for long), and is visible only once its row is marked
  complete. It is read back piece by piece, each in a read of its own: memory stays flat whatever
  the size, and no transaction stays open while a slow client downloads.
- `s3`: an S3-compatible object store (MinIO, Alibaba OSS, Tencent COS, Amazon S3) through boto3;
  one PUT for a small file, a multipart upload in PART_BYTES parts for a large one (aborted when
  the writer fails, so nothing half-written appears); reads stream the object's body.

Keys are paths that the caller makes unique, e.g. `imports/<uuid>.xlsx`, `exports/<uuid>.csv`.
Writing a key again replaces the file.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.db import Database, retried
from mall.core.models import StoredFile, StoredFileChunk
from mall.core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

CHUNK_BYTES = 1024 * 1024
PART_BYTES = 8 * 1024 * 1024  # S3 parts must be at least 5 MiB, the last one excepted
DEFAULT_TYPE = "application/octet-stream"

Data = bytes | AsyncIterable[bytes]


class FileMissing(Exception):
    """No complete file under this key (never written, deleted, or still being written)."""


class FileTooLarge(Exception):
    """The file is larger than the caller is willing to hold in memory."""


@dataclass(frozen=True)
class FileInfo:
    key: str
    size: int
    content_type: str


async def _pieces(data: Data) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        yield data
        return
    async for piece in data:
        yield piece


async def _sized(data: Data, size: int) -> AsyncIterator[bytes]:
    """The same bytes in pieces of exactly `size` (the last one shorter), holding about one piece."""
    buf = bytearray()
    async for piece in _pieces(data):
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


async def path_chunks(path: Path, size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """A local file's content in pieces, read off the event loop."""
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while piece := await asyncio.to_thread(fh.read, size):
            yield piece
    finally:
        fh.close()


class FileStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, key: str, data: Data, *, content_type: str = DEFAULT_TYPE) -> int:
        """Store `data` (bytes, or pieces as they come) under `key`; returns its size. The file
        appears only once complete: a writer that fails leaves nothing behind."""

    @abc.abstractmethod
    async def stat(self, key: str) -> FileInfo | None:
        """The complete file under `key`, or None."""

    @abc.abstractmethod
    def chunks(self, key: str) -> AsyncIterator[bytes]:
        """The file's content, piece by piece; raises FileMissing when there is none."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the file; nothing happens when there is none."""

    async def read(self, key: str, *, max_bytes: int) -> bytes:
        """A small file whole (an upload): FileTooLarge past `max_bytes`, whatever the store says."""
        info = await self.stat(key)
        if info is None:
            raise FileMissing(key)
        if info.size > max_bytes:
            raise FileTooLarge(key)
        out = bytearray()
        async for piece in self.chunks(key):
            out += piece
            if len(out) > max_bytes:
                raise FileTooLarge(key)
        return bytes(out)

    async def prune_unfinished(self, older_than: timedelta) -> int:
        """Remove what writers that died left half-written; returns how many files."""
        return 0


class DatabaseStore(FileStore):
    """Files in the application database, in chunks (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, key: str, data: Data, *, content_type: str = DEFAULT_TYPE) -> int:
        async with self.db.write() as tx:
            await self._remove(tx.session, key)
            tx.session.add(StoredFile(key=key, content_type=content_type, created_at=clock.now()))
        size = count = 0
        digest = hashlib.sha256()
        try:
            async for piece in _sized(data, CHUNK_BYTES):
                async with self.db.write() as tx:
                    await tx.session.execute(
                        insert(StoredFileChunk).values(file_key=key, n=count, data=piece)
                    )
                count, size = count + 1, size + len(piece)
                digest.update(piece)
            async with self.db.write() as tx:
                await tx.session.execute(
                    update(StoredFile)
                    .where(StoredFile.key == key)
                    .values(size=size, chunks=count, sha256=digest.hexdigest(), complete=True)
                )
        except BaseException:
            # What could not be removed now is removed by prune_unfinished.
            with contextlib.suppress(Exception):
                await self.delete(key)
            raise
        return size

    async def _row(self, key: str) -> StoredFile | None:
        async with self.db.read() as s:
            return await s.scalar(select(StoredFile).where(StoredFile.key == key, StoredFile.complete))

    async def stat(self, key: str) -> FileInfo | None:
        row = await self._row(key)
        return None if row is None else FileInfo(row.key, row.size, row.content_type)

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        row = await self._row(key)
        if row is None:
            raise FileMissing(key)
        for n in range(row.chunks):
            # each chunk a read of its own, run again if its connection was cut (a failover): a
            # download whose headers went out cannot answer an error any more, only break off
            piece = await _chunk(self.db, key, n)
            if piece is None:  # deleted while being read
                raise FileMissing(key)
            yield piece

    @staticmethod
    async def _remove(session: AsyncSession, key: str) -> None:
        await session.execute(delete(StoredFileChunk).where(StoredFileChunk.file_key == key))
        await session.execute(delete(StoredFile).where(StoredFile.key == key))

    async def delete(self, key: str) -> None:
        async with self.db.write() as tx:
            await self._remove(tx.session, key)

    async def prune_unfinished(self, older_than: timedelta) -> int:
        async with self.db.read() as s:
            keys = list(
                (
                    await s.execute(
                        select(StoredFile.key).where(
                            ~StoredFile.complete, StoredFile.created_at < clock.now() - older_than
                        )
                    )
                ).scalars()
            )
        for key in keys:
            await self.delete(key)
        return len(keys)


@functools.lru_cache(maxsize=8)
def _s3_client(endpoint_url: str, region: str, access_key: str, secret_key: str) -> S3Client:
    import boto3
    from botocore.config import Config

    # Empty keys: boto3's own chain (environment, instance role). Addressing style and the like
    # come from the standard AWS configuration file when a provider needs them.
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        config=Config(
            signature_version="s3v4",
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def _not_found(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
        "404",
        "NoSuchKey",
        "NotFound",
    )


class S3Store(FileStore):
    """Files as objects of one bucket of an S3-compatible store (boto3, its calls off the event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.client = _s3_client(
            settings.s3_endpoint_url, settings.s3_region, settings.s3_access_key, settings.s3_secret_key
        )

    async def put(self, key: str, data: Data, *, content_type: str = DEFAULT_TYPE) -> int:
        parts = _sized(data, PART_BYTES)
        first = await anext(parts, b"")
        second = await anext(parts, None) if len(first) == PART_BYTES else None
        if second is None:
            await asyncio.to_thread(
                self.client.put_object, Bucket=self.bucket, Key=key, Body=first, ContentType=content_type
            )
            return len(first)
        upload = await asyncio.to_thread(
            self.client.create_multipart_upload, Bucket=self.bucket, Key=key, ContentType=content_type
        )
        upload_id = upload["UploadId"]
        done: list[CompletedPartTypeDef] = []
        size = 0

        async def rest() -> AsyncIterator[bytes]:
            yield first
            yield second
            async for piece in parts:
                yield piece

        try:
            async for piece in rest():
                number = len(done) + 1
                answer = await asyncio.to_thread(
                    self.client.upload_part,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=piece,
                )
                done.append({"ETag": answer["ETag"], "PartNumber": number})
                size += len(piece)
            await asyncio.to_thread(
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self.client.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            raise
        return size

    async def stat(self, key: str) -> FileInfo | None:
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return FileInfo(key, int(head["ContentLength"]), head.get("ContentType") or DEFAULT_TYPE)

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        try:
            answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _not_found(exc):
                raise FileMissing(key) from None
            raise
        body = answer["Body"]
        try:
            while piece := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield piece
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)


def store_for(settings: Settings, db: Database) -> FileStore:
    """The store `settings.file_store` names ("database" or "s3")."""
    if settings.file_store == "database":
        return DatabaseStore(db)
    if settings.file_store == "s3":
        if not settings.s3_bucket:
            raise ValueError("file_store = s3 needs s3_bucket (MALL_S3_BUCKET)")
        return S3Store(settings)
    raise ValueError(f"file_store should be database or s3, not {settings.file_store!r}")


@retried
async def _chunk(db: Database, key: str, n: int) -> bytes | None:
    """One chunk of a stored file (a read: safe to run again)."""
    async with db.read() as s:
        return await s.scalar(
            select(StoredFileChunk.data).where(StoredFileChunk.file_key == key, StoredFileChunk.n == n)
        )
