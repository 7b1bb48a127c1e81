"""Where audit attachments are kept: a small async interface with two stores.

- ``LocalBlobStore``: a directory on this host (the embedded default). Replicas on other
  hosts cannot read it.
- ``S3BlobStore``: a bucket of any S3-compatible object store (Amazon S3, MinIO, Ceph RGW…),
  shared by every replica: what one replica stored, any other serves.

Keys are flat names (the attachment ids). The stores' calls block (file system, boto3), so
they run in worker threads and the event loop keeps serving.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from shared.errors import ApiError


class BlobNotFound(LookupError):
    """No blob under this key."""


class BlobStoreUnavailable(ApiError):
    """The object store did not answer or refused (503: the request can be tried again; a
    write that needed it was rolled back with its transaction)."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(503, "blob_store_unavailable", f"the attachment store is unavailable: {exc}")


class BlobStore(Protocol):
    async def put(self, key: str, content: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    if not key or "/" in key or "\\" in key or key.startswith("."):
        raise ValueError("blob keys are flat names")
    return key


class LocalBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _put(self, key: str, content: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._path(key).with_suffix(".part")
        tmp.write_bytes(content)
        os.replace(tmp, self._path(key))  # readers never see half a file

    def _get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    async def put(self, key: str, content: bytes) -> None:
        await asyncio.to_thread(self._put, key, content)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class S3BlobStore:
    """boto3 (the AWS SDK for Python: maintained by AWS, speaks the S3 protocol MinIO and the
    other S3-compatible stores implement). Its client is thread-safe, so one client serves
    every worker thread. ``prefix`` keeps the attachments apart from anything else in the
    bucket. Credentials: the ones given, else boto3's chain (AWS_* environment variables, a
    Kubernetes service account's web identity, an instance profile)."""

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str = "", region: str = "",
                 access_key_id: str = "", secret_access_key: str = "", addressing_style: str = "auto",
                 timeout_s: float = 10.0) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                connect_timeout=timeout_s, read_timeout=timeout_s,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": addressing_style},
                # a pool per store, sized for the worker threads that use it at once
                max_pool_connections=16,
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}{_check_key(key)}"

    def _put(self, key: str, content: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=content)

    def _get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFound(key) from None
            raise

    def _delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))  # absent: no error (S3 semantics)

    async def _call(self, fn, *args):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, *args)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreUnavailable(exc) from exc

    async def put(self, key: str, content: bytes) -> None:
        await self._call(self._put, key, content)

    async def get(self, key: str) -> bytes:
        return await self._call(self._get, key)

    async def delete(self, key: str) -> None:
        await self._call(self._delete, key)

    def check(self) -> None:
        """Raise unless the bucket is reachable with these credentials (``head_bucket``)."""
        self.client.head_bucket(Bucket=self.bucket)


def blob_store(settings) -> BlobStore:
    """The store the settings name (``BLOB_STORE``)."""
    if settings.blob_store == "s3":
        return S3BlobStore(
            bucket=settings.blob_s3_bucket, prefix=settings.blob_s3_prefix, endpoint_url=settings.blob_s3_endpoint_url,
            region=settings.blob_s3_region, access_key_id=settings.blob_s3_access_key_id,
            secret_access_key=settings.blob_s3_secret_access_key.get_secret_value(),
            addressing_style=settings.blob_s3_addressing_style, timeout_s=settings.blob_s3_timeout_s)
    return LocalBlobStore(settings.blob_dir or os.path.join(settings.data_dir, "orders-blobs"))
