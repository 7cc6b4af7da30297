"""Local and remote (fsspec: ``s3://`` and other object stores) file access for the registry and
for directory inputs given as URIs.

Object stores have no rename, so remote writes follow one rule: a directory becomes visible when
its marker file (written last, in one PUT) exists. Readers look for the marker. Where two writers
may race for one name (a registry version number), the marker is created conditionally
(``create_text``: ``If-None-Match: *``), so exactly one of them wins it.

Compare-and-swap (``Store.compare_and_swap``): replace a small text object only if it still holds
the expected text. On a filesystem this is read-compare-replace under an exclusive ``flock``
(works across processes on one host and on NFSv4 mounts with working locks). On S3 it is a
conditional write: read the object and its ETag, then ``PutObject`` with ``If-Match: <etag>`` (or
``If-None-Match: *`` when the object must not exist yet); S3 (and MinIO) evaluate the condition
and the write atomically and answer ``412 Precondition Failed`` to the loser. No lock object is
needed, so a crashed writer can never leave a stale lock behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlp_common.files import atomic_directory, write_text_atomic
from mlp_common.step import StepError


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """True for ``scheme://`` URIs other than ``file://``."""
    text = os.fspath(uri)
    return "://" in text and not text.startswith("file://")


def local_path(uri: str | os.PathLike[str]) -> Path:
    """The path of a local path or ``file://`` URI."""
    text = os.fspath(uri)
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def filesystem(uri: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path without scheme)`` for a remote URI. ``s3://`` honours
    ``AWS_ENDPOINT_URL`` (MinIO and other S3-compatible stores)."""
    import fsspec

    from mlp_common.dataset import storage_options

    fs, path = fsspec.core.url_to_fs(uri, **(storage_options(uri) or {}))
    return fs, path


def cache_root() -> Path:
    """Where remote directories are copied: ``$MLP_CACHE_DIR`` or ``<tmp>/mlp-cache``."""
    return Path(os.environ.get("MLP_CACHE_DIR") or Path(tempfile.gettempdir()) / "mlp-cache")


def download_directory(uri: str, *, immutable: bool = False) -> Path:
    """A local copy of a remote directory. ``immutable`` copies are cached by URI and reused."""
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    target = cache_root() / f"{key}-{uri.rstrip('/').rsplit('/', 1)[-1]}"
    if immutable and target.is_dir():
        return target
    fs, path = filesystem(uri)
    fs.invalidate_cache()
    if not fs.isdir(path):
        raise FileNotFoundError(uri)
    with atomic_directory(target) as tmp:
        fs.get(path.rstrip("/") + "/", str(tmp) + "/", recursive=True)
    return target


def upload_directory(source: Path, uri: str, *, marker: str) -> None:
    """Upload ``source`` to a remote directory URI, ``marker`` last (it marks completeness)."""
    fs, path = filesystem(uri)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    for file in [f for f in files if f.name != marker] + [source / marker]:
        fs.put_file(str(file), f"{path.rstrip('/')}/{file.relative_to(source)}")


def publish_directory(source: Path, uri: str, *, marker: str) -> None:
    """Make ``source`` appear at ``uri`` whole: a rename on a filesystem, an upload with
    ``marker`` last on an object store. A directory already at ``uri`` is left as it is (callers
    publish immutable, content-addressed directories, so it holds the same content)."""
    if is_remote(uri):
        upload_directory(source, uri, marker=marker)
        return
    target = local_path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError:
        if not (target / marker).is_file():
            raise


def localize_directory(uri: str | os.PathLike[str]) -> Path:
    """A local directory for a path, ``file://`` URI or remote URI (downloaded)."""
    text = os.fspath(uri)
    return download_directory(text) if is_remote(text) else local_path(text)


class LocalStore:
    """Registry storage on a local (or mounted) filesystem; renames make writes atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)

    @contextlib.contextmanager
    def lock(self, rel: str) -> Iterator[None]:
        """An exclusive advisory lock (flock on ``<rel>/.lock``) serializing writers."""
        import fcntl

        path = self.root / rel / ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def is_file(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def list_dir(self, rel: str) -> list[str]:
        path = self.root / rel
        return sorted(entry.name for entry in path.iterdir()) if path.is_dir() else []

    def read_text(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def write_text(self, rel: str, text: str) -> None:
        write_text_atomic(self.root / rel, text)

    def local_dir(self, rel: str) -> Path:
        return self.root / rel

    def compare_and_swap(self, rel: str, expected: str | None, text: str) -> bool:
        """Replace ``rel`` with ``text`` if it holds ``expected`` (None: must not exist)."""
        with self.lock(rel.rsplit("/", 1)[0]):
            path = self.root / rel
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            if current != expected:
                return False
            write_text_atomic(path, text)
            return True

    def publish_dir(self, source: Path, rel: str, marker: str, marker_text: str) -> bool:
        """Move ``source`` to ``rel`` with ``marker`` inside; False if ``rel`` is taken."""
        (source / marker).write_text(marker_text, encoding="utf-8")
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(source, target)
        except OSError:
            if target.exists():
                return False
            raise
        return True


class RemoteStore:
    """Registry storage on an object store via fsspec. A version is visible once its marker
    (``metadata.json``) is uploaded, which happens last; pointers are single-object PUTs."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.fs, self.path = filesystem(self.uri)

    def _full(self, rel: str) -> str:
        return f"{self.path}/{rel}".rstrip("/")

    def is_file(self, rel: str) -> bool:
        self.fs.invalidate_cache(self._full(rel).rsplit("/", 1)[0])
        return bool(self.fs.isfile(self._full(rel)))

    def list_dir(self, rel: str) -> list[str]:
        full = self._full(rel)
        self.fs.invalidate_cache(full)
        try:
            entries = self.fs.ls(full, detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)

    def read_text(self, rel: str) -> str:
        return bytes(self.fs.cat_file(self._full(rel))).decode("utf-8")

    def write_text(self, rel: str, text: str) -> None:
        self.fs.pipe_file(self._full(rel), text.encode("utf-8"))

    def local_dir(self, rel: str) -> Path:
        return download_directory(f"{self.uri}/{rel}", immutable=True)

    def _client(self) -> Any:
        """A botocore S3 client (conditional writes are not exposed by fsspec)."""
        if not self.uri.startswith("s3://"):
            raise StepError(f"{self.uri}: compare-and-swap needs a local or s3:// location")
        import botocore.session

        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MLP_S3_ENDPOINT_URL")
        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )

    def _bucket_key(self, rel: str) -> tuple[str, str]:
        bucket, _, key = self._full(rel).partition("/")
        return bucket, key

    def _read_with_etag(self, client: Any, rel: str) -> tuple[str | None, str | None]:
        bucket, key = self._bucket_key(rel)
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None, None
        return response["Body"].read().decode("utf-8"), str(response["ETag"])

    def _put_if(self, client: Any, rel: str, text: str, etag: str | None) -> bool:
        """PutObject with If-Match ``etag`` (If-None-Match ``*`` for None); False on 412."""
        from botocore.exceptions import ClientError

        bucket, key = self._bucket_key(rel)
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), **condition)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.response.get("Error", {}).get("Code")
            if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def compare_and_swap(self, rel: str, expected: str | None, text: str) -> bool:
        """Replace ``rel`` with ``text`` if it holds ``expected`` (None: must not exist), by a
        conditional PutObject on the ETag just read."""
        client = self._client()
        current, etag = self._read_with_etag(client, rel)
        if current != expected:
            return False
        return self._put_if(client, rel, text, etag)

    def put_tree(self, source: Path, rel: str) -> None:
        """Upload every file under ``source`` to ``rel`` (a prefix no other writer uses)."""
        for path in sorted(source.rglob("*")):
            if path.is_file():
                self.fs.put_file(str(path), self._full(f"{rel}/{path.relative_to(source)}"))

    def create_text(self, rel: str, text: str) -> bool:
        """Create ``rel`` holding ``text`` unless it exists (``PutObject`` with
        ``If-None-Match: *``); False when another writer created it first."""
        return self._put_if(self._client(), rel, text, None)
