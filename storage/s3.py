"""Blobs in an S3 bucket (AWS, MinIO, moto...) through boto3: `ATELIER_BLOBS=s3://bucket/prefix`.

The same content-addressed store as `LocalBlobStore`, for web processes and GPU workers on several
machines. Three choices make it safe and private:

- **Temporary key, then commit.** `put` uploads to `<prefix>/.tmp/<uuid>`, copies that object server
  side to its real key `<prefix>/<key[:2]>/<key>`, then deletes the temporary one. A reader never
  finds a blob under its real key before the whole of it is there, and a worker that dies mid-write
  leaves only a temporary object, which `purge_temporary` removes (it runs once, for objects older
  than a day, when a store is first used).
- **A local read-through cache.** `path(key)` downloads a blob once into `cache_dir` (`root`) and
  returns the file there, so Gradio serves it through the app (with the app's ownership checks) like
  any local blob. The cache holds only copies: it may be deleted at any time.
- **Never public.** Nothing is written with a public ACL; clients that want to fetch from the bucket
  directly get a short-lived presigned URL from `url(key)`.

Endpoint and credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, AWS_PROFILE; AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for MinIO or moto, which then
get path-style addressing).
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import os
import pathlib
import re
import uuid
from collections.abc import Mapping

from storage.blobs import BlobStore, check_key, write_whole

logger = logging.getLogger(__name__)

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                 ".gif": "image/gif", ".mp4": "video/mp4", ".json": "application/json"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TEMPORARY = ".tmp"
STALE_TEMPORARY_S = 86400.0


def parse_s3_url(url: str) -> tuple[str, str]:
    """("bucket", "prefix") from "s3://bucket/prefix" (the prefix may be empty or have several parts)."""
    example = "set ATELIER_BLOBS to s3://BUCKET/PREFIX, e.g. s3://atelier-artifacts/blobs"
    if not url.startswith("s3://"):
        raise ValueError(f"ATELIER_BLOBS={url!r} is not an S3 URL; {example}.")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"ATELIER_BLOBS={url!r} names no bucket; {example}.")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"ATELIER_BLOBS={url!r}: {bucket!r} is not a valid S3 bucket name (3-63 characters: "
                         f"lowercase letters, digits, '.' and '-'); {example}.")
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..", TEMPORARY) for part in prefix.split("/")):
        raise ValueError(f"ATELIER_BLOBS={url!r}: the prefix {prefix!r} has an empty, '.', '..' or "
                         f"{TEMPORARY!r} part; {example}.")
    return bucket, prefix


def endpoint_from(environ: Mapping[str, str]) -> str | None:
    """The S3 endpoint the AWS variables name (AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL), or None for AWS."""
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def make_client(endpoint_url: str | None = None):
    """A boto3 S3 client with SigV4; path-style addressing when `endpoint_url` is set (MinIO, moto and
    IP-address endpoints have no per-bucket host names). Credentials and region: boto3's usual chain."""
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4", retries={"mode": "standard"},
                    s3={"addressing_style": "path"} if endpoint_url else {})
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def _error_code(error) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3BlobStore(BlobStore):
    """Blobs as objects <prefix>/ab/ab12...ef.png in `bucket`, with a local read-through cache.

    Args:
        bucket: the bucket's name; it must exist (checked at first use, with a message saying what to set).
        prefix: folder inside the bucket ("" = the bucket's top level), without slashes at either end.
        cache_dir: local folder for `path()`'s copies; it is also `root`, the folder the web server may serve.
        client: a boto3 S3 client; None = `make_client()` with the endpoint from the AWS variables.
    """

    def __init__(self, bucket: str, prefix: str, cache_dir: str | os.PathLike, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = pathlib.Path(cache_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.client = client if client is not None else make_client(endpoint_from(os.environ))
        self._checked = False

    @classmethod
    def from_url(cls, url: str, cache_dir: str | os.PathLike, environ: Mapping[str, str] = os.environ):
        """The store for "s3://bucket/prefix", its endpoint from `environ`; raises ValueError on a bad URL."""
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, cache_dir, make_client(endpoint_from(environ)))

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix}, cache={self.root})"

    # -- keys ----------------------------------------------------------------------------------------

    def object_key(self, key: str) -> str:
        """The S3 object key of blob `key`."""
        check_key(key)
        return self._join(key[:2], key)

    def _join(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts) if self.prefix else parts)

    # -- the BlobStore interface -----------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        name = self.object_key(key)
        self.check()
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as e:
            if _error_code(e) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def get(self, key: str) -> bytes:
        """The blob's bytes; KeyError when it is not stored."""
        from botocore.exceptions import ClientError

        name = self.object_key(key)
        self.check()
        try:
            data = self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read()
        except ClientError as e:
            if _error_code(e) in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(key) from None
            raise
        if hashlib.sha256(data).hexdigest() != key[:64]:
            raise OSError(f"s3://{self.bucket}/{name} does not hold the bytes its name promises; "
                          "it was changed outside Atelier. Delete it and store the file again.")
        return data

    def path(self, key: str) -> pathlib.Path:
        """A local file with the blob's bytes, downloaded into the cache on first use; KeyError when the
        blob is not stored."""
        target = self.root / check_key(key)[:2] / key
        if target.is_file():
            return target
        write_whole(target, self.get(key))
        return target

    def delete(self, key: str) -> None:
        """Delete the object and its cached copy (S3 answers a delete of a missing key with success)."""
        name = self.object_key(key)
        self.check()
        self.client.delete_object(Bucket=self.bucket, Key=name)
        (self.root / key[:2] / key).unlink(missing_ok=True)

    def url(self, key: str, expires: int = 600) -> str:
        """A presigned GET URL for the blob, valid `expires` seconds; the bucket itself stays private.
        Signing needs no request, so this neither checks that the blob exists nor fails when it is absent."""
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket,
                                                                        "Key": self.object_key(key)},
                                                  ExpiresIn=int(expires))

    def _write(self, key: str, data: bytes) -> None:
        """Upload to a temporary key, commit by a server-side copy to the real key, drop the temporary one."""
        self.check()
        temporary = self._join(TEMPORARY, uuid.uuid4().hex)
        content_type = CONTENT_TYPES.get(pathlib.PurePath(key).suffix, "application/octet-stream")
        self.client.put_object(Bucket=self.bucket, Key=temporary, Body=data, ContentType=content_type,
                               CacheControl="max-age=31536000, immutable")
        try:
            self.client.copy_object(Bucket=self.bucket, Key=self.object_key(key),
                                    CopySource={"Bucket": self.bucket, "Key": temporary})
        finally:
            self._discard(temporary)

    def _discard(self, temporary: str) -> None:
        """Delete a temporary object; a failure is only logged (purge_temporary removes it later)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=temporary)
        except Exception:
            logger.warning("blobs: could not delete s3://%s/%s", self.bucket, temporary, exc_info=True)

    # -- upkeep ----------------------------------------------------------------------------------------

    def purge_temporary(self, older_than_s: float = STALE_TEMPORARY_S) -> int:
        """Delete temporary objects (uploads whose writer died before committing) older than
        `older_than_s` seconds; returns how many. Younger ones may belong to a write in progress."""
        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=older_than_s)
        stale = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                     Prefix=self._join(TEMPORARY, ""))
        for page in pages:
            stale += [{"Key": o["Key"]} for o in page.get("Contents", []) if o["LastModified"] <= cutoff]
        for start in range(0, len(stale), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": stale[start:start + 1000],
                                                                   "Quiet": True})
        if stale:
            logger.info("blobs: purged %s temporary objects from s3://%s/%s", len(stale), self.bucket, self.prefix)
        return len(stale)

    def check(self) -> None:
        """Check once that the bucket exists and can be reached, raising ValueError that says what to
        set when not; then purge temporary objects left by writers that died a day or more ago."""
        if self._checked:
            return
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        where = f"s3://{self.bucket} at {self.client.meta.endpoint_url}"
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise ValueError(f"No AWS credentials for {where}: set AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE).") from None
        except EndpointConnectionError:
            raise ValueError(f"Cannot reach {where}: check AWS_ENDPOINT_URL (MinIO, moto) or the "
                             "network.") from None
        except ClientError as e:
            code = _error_code(e)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise ValueError(f"The bucket of ATELIER_BLOBS does not exist: {where}. Create it "
                                 "(aws s3 mb s3://BUCKET) or set ATELIER_BLOBS to an existing one.") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ValueError(f"Access to {where} was refused ({code}): check AWS_ACCESS_KEY_ID, "
                                 "AWS_SECRET_ACCESS_KEY and the bucket's policy.") from None
            raise
        self._checked = True
        try:
            self.purge_temporary()
        except Exception:   # upkeep only: a store that may not list still stores and serves
            logger.warning("blobs: could not purge temporary objects from %s", where, exc_info=True)
