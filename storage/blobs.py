"""Content-addressed blob stores: a file is stored once, named by the sha256 of its bytes.

A key is "<sha256><suffix>" (e.g. "ab12...ef.png"); the suffix keeps the type visible to anything
that serves the file. `LocalBlobStore` keeps files under a folder, two hex digits per subfolder;
`storage.s3.S3BlobStore` keeps them in an S3 bucket (ATELIER_BLOBS=s3://bucket/prefix) with a local
read-through cache, so the web server serves both the same way: `path(key)` under `root`.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import re
import tempfile

_KEY = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]{1,8})?$")


def blob_key(data: bytes, suffix: str = "") -> str:
    return hashlib.sha256(data).hexdigest() + suffix


def check_key(key: str) -> str:
    """Return `key` if it is a well-formed blob key, else raise ValueError (keys reach file paths)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"Not a blob key: {key!r}; expected 64 hex digits and an optional suffix.")
    return key


def write_whole(target: pathlib.Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `target`, then rename it into place: a crash never leaves
    half a file under the name, and a reader sees the whole file or none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


class BlobStore:
    """Stores bytes by content. Subclasses implement `_write`, `get`, `exists` and `path`, and set
    `root`: the local folder that `path()` returns files under (the only folder the web server serves)."""

    root: pathlib.Path

    def put(self, data: bytes, suffix: str = "") -> str:
        """Store `data` (a no-op when it is already stored) and return its key."""
        key = blob_key(data, suffix)
        if not self.exists(key):
            self._write(key, data)
        return key

    def _write(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove the blob (a no-op when it is not stored). Callers delete only blobs no artifact row
        refers to any more (storage.artifacts.delete_holding)."""
        raise NotImplementedError

    def path(self, key: str) -> pathlib.Path:
        """A local file holding the blob, for handing to the web server."""
        raise NotImplementedError

    def url(self, key: str, expires: int = 600) -> str | None:
        """A URL a client may fetch the blob from directly for `expires` seconds, or None where the
        store has none (then serve `path(key)`)."""
        return None


class LocalBlobStore(BlobStore):
    """Blobs as files under `root`: root/ab/ab12...ef.png."""

    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> pathlib.Path:
        check_key(key)
        return self.root / key[:2] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def _write(self, key: str, data: bytes) -> None:
        write_whole(self.path(key), data)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None


def open_blob_store(url: str, data_dir: str | os.PathLike) -> BlobStore:
    """The blob store for `url`: "" = <data_dir>/blobs, "file:///path" or a plain path = that folder,
    "s3://bucket/prefix" = that bucket (endpoint and credentials from the AWS variables; see storage.s3)
    cached in <data_dir>/blob-cache. Raises ValueError for a URL it cannot open."""
    if not url:
        return LocalBlobStore(pathlib.Path(data_dir) / "blobs")
    if url.startswith("file://"):
        return LocalBlobStore(url[len("file://"):])
    if url.startswith("s3://"):
        from storage.s3 import S3BlobStore

        return S3BlobStore.from_url(url, pathlib.Path(data_dir) / "blob-cache")
    if "://" in url:
        raise ValueError(f"ATELIER_BLOBS={url!r} is not supported; use a folder path or s3://bucket/prefix.")
    return LocalBlobStore(url)
