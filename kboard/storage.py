"""Where event files live: local directories (``os``) or object stores (any fsspec URL).

Local paths keep the reader's fast path: ``os.walk``, ``os.stat`` and ``open``. A URL such as
``s3://bucket/prefix``, ``gs://…``, ``az://…`` or ``memory://…`` is read through fsspec and
its backend (s3fs, gcsfs, adlfs), with one recursive listing per reload: the listing gives
every object's size and ETag, so unchanged objects cost no request at all, and new bytes
are fetched with ranged reads from the last offset. Transient faults (throttling, resets,
timeouts) are retried with backoff; lasting ones become one-line :class:`StorageError`
messages that never show a secret. Every request and byte is counted (:class:`IOStats`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

log = logging.getLogger("kboard")

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@?#]*@")
_QUERY = re.compile(r"\?.*$")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# The extra to install for each protocol's fsspec backend.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
}
# Bytes fetched per ranged read at least: a cold read of a big object takes few requests.
READ_AHEAD_BYTES = 16 * 1024 * 1024
RETRIES = 2  # on top of the backend's own retries (s3fs and botocore retry too)
RETRY_BASE_SECONDS = 0.5
T = TypeVar("T")


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``scheme://…``) rather than a local path."""
    return bool(_URL.match(path))


def protocol_of(url: str) -> str:
    """The scheme of a URL (``s3`` for ``s3://bucket/x``)."""
    match = _URL.match(url)
    return match.group(1).lower() if match else "file"


def redact(path: str) -> str:
    """A path or URL as it may be shown: credentials (``user:secret@``) and queries hidden."""
    if not is_url(path):
        return path
    return _QUERY.sub("?…", _CREDENTIALS_IN_URL.sub("***@", path))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (error messages may quote URLs)."""
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def canonical(path: str) -> str:
    """The key of a path across processes: URLs as given (less a trailing /), paths absolute."""
    return path.rstrip("/") if is_url(path) else os.path.abspath(path)


def parse_storage_options(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["key=value", …]`` to fsspec options; a value that is JSON (``2``, ``{…}``) is decoded."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad storage option {key.strip() or pair!r}: expected key=value")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


class StorageError(OSError):
    """A lasting fault of an object store, said in one line without secrets."""


class MissingBackend(ImportError):
    """The fsspec backend of a protocol is not installed."""


class NoCredentials(Exception):
    """A store's client found no credentials before making any request."""


# The usual variables of each store's credentials, as a missing one is said.
_CREDENTIAL_VARIABLES = {
    "s3": "AWS_ACCESS_KEY_ID, AWS_PROFILE",
    "gcs": "GOOGLE_APPLICATION_CREDENTIALS",
    "azure": "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_NAME",
}


class MissingBucket(FileNotFoundError):
    """A listing found no bucket (container) where the logdir should be."""


@dataclass
class IOStats:
    """Requests made to a store and bytes read from it (a remote logdir's running totals)."""

    url: str
    list_requests: int = 0
    get_requests: int = 0
    put_requests: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    retries: int = 0
    errors: int = 0
    last_error: str = ""

    @property
    def requests(self) -> int:
        return self.list_requests + self.get_requests + self.put_requests

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the total of requests."""
        return {**asdict(self), "requests": self.requests}


@dataclass(frozen=True)
class ObjectStat:
    """What a listing says of one object, shaped like the ``os.stat`` fields the reader uses.

    ``st_mtime_ns`` is a number derived from the object's ETag (or version): objects are
    immutable, so a new ETag means a new object, as a new mtime means a rewrite.
    """

    st_size: int
    st_mtime_ns: int
    st_dev: int = 0
    st_ino: int = 0


class LocalStorage:
    """Local directories, through ``os`` (the reader's fast path)."""

    remote = False
    stat = staticmethod(os.stat)
    lexists = staticmethod(os.path.lexists)

    def open(self, path: str, read_ahead: int = READ_AHEAD_BYTES) -> io.BufferedReader:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it

    def stats(self) -> IOStats | None:
        return None


LOCAL = LocalStorage()


# What identifies an object's bytes in a listing, best first: a hash of the content (S3's
# ETag of a single-part upload, GCS's md5Hash or crc32c, Azure's Content-MD5), so that the
# same bytes uploaded again are no change; then what changes on every upload (version,
# generation, Azure's ETag), then the time of the last change.
_IDENTITY_FIELDS = (
    "ETag",
    "md5Hash",
    "crc32c",
    "content_md5",
    "VersionId",
    "generation",
    "etag",
    "version_id",
    "mtime",
    "LastModified",
    "last_modified",
)


def object_version(info: Mapping[str, Any]) -> int:
    """A number that changes whenever the object's bytes do (from its hash, ETag, version)."""
    settings = info.get("content_settings")
    md5 = settings.get("content_md5") if isinstance(settings, Mapping) else None
    fields = {**info, "content_md5": md5 or getattr(settings, "content_md5", None)}
    token = next((repr(fields[k]) for k in _IDENTITY_FIELDS if fields.get(k)), "")
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=7).digest(), "big")


def open_filesystem(url: str, options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` (its listings never cached) and the path inside it."""
    try:
        import fsspec.core
    except ImportError:
        raise MissingBackend(_install_hint(url, "fsspec")) from None
    protocol = protocol_of(url)
    kwargs = {"skip_instance_cache": True, "use_listings_cache": False, **(options or {})}
    try:
        return fsspec.core.url_to_fs(url, **kwargs)
    except ImportError:
        raise MissingBackend(_install_hint(url, protocol)) from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise StorageError(f"unknown storage protocol {protocol}:// in {redact(url)}") from None
        if "connection_string or account_name" in str(exc):  # adlfs, given no account
            raise StorageError(describe_error(NoCredentials(), url)[0]) from None
        raise StorageError(f"cannot open {redact(url)}: {_first_line(exc)}") from None
    except TypeError as exc:
        raise StorageError(f"bad --storage-option for {protocol}://: {_first_line(exc)}") from None


def _install_hint(url: str, protocol: str) -> str:
    extra = EXTRAS.get(protocol_of(url))
    package = f'"kboard[{extra}]"' if extra else f"the fsspec backend of {protocol}://"
    return f"reading {redact(url)} needs {package}: pip install {package}"


class RemoteStorage:
    """One logdir in an object store: a listing per reload, ranged reads, retries, counters."""

    remote = True

    def __init__(
        self,
        url: str,
        options: Mapping[str, Any] | None = None,
        *,
        retries: int = RETRIES,
        retry_base_seconds: float = RETRY_BASE_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self.fs, path = open_filesystem(self.url, options)
        self._root = path.rstrip("/")
        self.retries = retries
        self.retry_base_seconds = retry_base_seconds
        self.io = IOStats(redact(self.url))
        self._lock = threading.Lock()
        self._listing: dict[str, ObjectStat] = {}
        self._readers: dict[str, _ObjectReader] = {}
        self._bucket_seen = False

    # -- listing ------------------------------------------------------------------------
    def list(self) -> dict[str, ObjectStat]:
        """Every object under the logdir, ``{url: stat}``, in one recursive listing."""
        self.fs.invalidate_cache()
        found = self._call("list", self._find)
        listing: dict[str, ObjectStat] = {}
        for name, info in found.items():
            if info.get("type", "file") != "file" or not name.startswith(self._root + "/"):
                continue
            url = self.url + name[len(self._root) :]
            listing[url] = ObjectStat(int(info.get("size") or 0), object_version(info))
        with self._lock:
            self._listing = listing
            self._readers = {}
        return listing

    def _find(self) -> dict[str, Any]:
        """The recursive listing; a bucket that is not there says so (gcsfs answers a listing
        of a missing bucket with a bare 404, adlfs with nothing: one more request then)."""
        try:
            found = self.fs.find(self._root, detail=True)
        except FileNotFoundError:
            if self._bucket_missing():
                raise MissingBucket(self._root) from None
            raise
        if not found and not self._bucket_seen:
            if self._bucket_missing():
                raise MissingBucket(self._root)
            self._bucket_seen = True  # an empty prefix: runs may not have started yet
        return found

    def _bucket_missing(self) -> bool:
        """Whether the store says the logdir's bucket does not exist (one request)."""
        try:
            return not self.fs.exists(self._root.split("/", 1)[0])
        except Exception:  # noqa: BLE001 - e.g. may list objects, not read the bucket's metadata
            return False

    def stat(self, url: str) -> ObjectStat:
        """The object as the last listing saw it."""
        try:
            return self._listing[url]
        except KeyError:
            raise FileNotFoundError(2, "no such object", url) from None

    def lexists(self, url: str) -> bool:
        return url in self._listing

    # -- reading ------------------------------------------------------------------------
    def open(self, url: str, read_ahead: int = READ_AHEAD_BYTES) -> _ObjectReader:
        """A seekable reader of the object as listed, sharing its fetched bytes until the next
        listing (a check of the bytes before the offset then costs no second request)."""
        with self._lock:
            reader = self._readers.get(url)
            if reader is None:
                reader = _ObjectReader(self, url, self.stat(url).st_size, read_ahead)
                if read_ahead:
                    self._readers[url] = reader
        return reader

    def read(self, url: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an object, in one ranged request."""
        path = self._root + url[len(self.url) :]
        data = self._call("get", lambda: self.fs.cat_file(path, start=start, end=end))
        self.io.bytes_read += len(data)
        return data

    def stats(self) -> IOStats:
        return self.io

    def _call(self, kind: str, call: Callable[[], T]) -> T:
        return with_retries(call, self.url, self.io, kind, self.retries, self.retry_base_seconds)


def with_retries(
    call: Callable[[], T],
    url: str,
    io_stats: IOStats,
    kind: str,
    retries: int = RETRIES,
    base_seconds: float = RETRY_BASE_SECONDS,
) -> T:
    """Make one request (counted as ``kind``: list, get or put), retrying transient faults
    with exponential backoff; a lasting fault is a :class:`StorageError`."""
    for attempt in range(retries + 1):
        if kind == "list":
            io_stats.list_requests += 1
        else:
            io_stats.get_requests += kind == "get"
            io_stats.put_requests += kind == "put"
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
            message, transient = describe_error(exc, url)
            message = redact_text(message)
            if not transient or attempt == retries:
                io_stats.errors += 1
                io_stats.last_error = message
                raise StorageError(message) from None
            io_stats.retries += 1
            delay = base_seconds * 2**attempt
            log.info("%s; retrying in %.1f s", message, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def describe_error(exc: BaseException, url: str) -> tuple[str, bool]:
    """One line saying what went wrong with ``url``, and whether trying again may help."""
    shown = redact(url)
    code = _error_code(exc)
    text = _first_line(exc)
    bucket = shown.split("://", 1)[-1].split("/", 1)[0]
    if code in ("NoSuchBucket", "ContainerNotFound") or isinstance(exc, MissingBucket):
        return f"{_bucket_noun(url)} {bucket} does not exist ({shown})", False
    if "bucket does not exist" in text.lower():
        return f"{_bucket_noun(url)} {bucket} does not exist ({shown})", False
    if code in _WRONG_CREDENTIALS or "failed to authenticate" in text.lower():
        return f"wrong credentials for {shown}: the store refused them ({code or 401})", False
    if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "NoCredentials") or (
        "unable to locate credentials" in text.lower()
    ):
        variables = _CREDENTIAL_VARIABLES.get(EXTRAS.get(protocol_of(url), "s3"), "")
        return (
            f"no credentials for {shown}: set the store's usual variables (e.g. "
            f"{variables}) or --storage-option",
            False,
        )
    if (
        code in ("AccessDenied", "AllAccessDisabled", "Forbidden", "403")
        or code.startswith("Authorization")  # Azure: AuthorizationPermissionMismatch, …
        or isinstance(exc, PermissionError)
        or text.startswith("Forbidden:")  # gcsfs: a 403
    ):
        return f"access denied to {shown}: the credentials may not read this prefix", False
    transient = (
        code in ("SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServerBusy")
        or code in ("429", "500", "502", "503", "504")
        or "slowdown" in text.lower().replace(" ", "")
        or "reduce your request rate" in text.lower()
        or isinstance(exc, TimeoutError | ConnectionError)
        or any(
            word in type(exc).__name__
            for word in ("Timeout", "Connection", "Connect", "Disconnected", "Payload")
        )
        or (isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError))
    )
    if isinstance(exc, FileNotFoundError) and not transient:
        return f"not found: {shown} ({text})", False
    what = "throttled by the store" if "slow" in text.lower() else "store unreachable"
    return f"{what} reading {shown}: {type(exc).__name__}: {text}", transient


# Error codes of a refused credential: S3's, Azure's, and the HTTP status gcsfs keeps.
_WRONG_CREDENTIALS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AuthenticationFailed",
    "InvalidAuthenticationInfo",
    "401",
)


def _bucket_noun(url: str) -> str:
    return "container" if EXTRAS.get(protocol_of(url)) == "azure" else "bucket"


def _error_code(exc: BaseException) -> str:
    """The store's error code (``AccessDenied``), from the exception or what caused it:
    botocore's ``response``, Azure's ``error_code``, the HTTP status of gcsfs and aiohttp."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        fields = vars(seen)  # attributes only: aiohttp's ``code`` property warns
        code = fields.get("error_code") or fields.get("code") or fields.get("status")
        if isinstance(code, str | int) and not isinstance(code, bool) and code:
            return str(code)
        seen = seen.__cause__ or seen.__context__
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


class _ObjectReader:
    """A seekable, read-only view of one listed object, fetched by ranged reads."""

    def __init__(self, storage: RemoteStorage, url: str, size: int, read_ahead: int) -> None:
        self._storage = storage
        self._url = url
        self._size = size
        self._read_ahead = read_ahead
        self._pos = 0
        self._buf_start = 0
        self._buf = b""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            offset += self._size
        elif whence == io.SEEK_CUR:
            offset += self._pos
        self._pos = max(0, offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        start = self._pos
        end = self._size if n < 0 else min(self._size, start + n)
        if end <= start:
            return b""
        buf_end = self._buf_start + len(self._buf)
        if not (self._buf_start <= start and end <= buf_end):
            fetch_end = min(self._size, max(end, start + self._read_ahead))
            self._buf_start, self._buf = start, self._storage.read(self._url, start, fetch_end)
            buf_end = start + len(self._buf)
        data = self._buf[start - self._buf_start : end - self._buf_start]
        self._pos = start + len(data)
        if self._pos >= buf_end and buf_end >= self._size:
            self._buf_start, self._buf = 0, b""  # read to the end: nothing left to share
        return data

    def close(self) -> None:
        """Nothing to release: fetched bytes stay shared until the next listing."""

    def __enter__(self) -> _ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Storage = LocalStorage | RemoteStorage


def storage_for(path: str, options: Mapping[str, Any] | None = None) -> Storage:
    """The storage of a logdir: local for a path, remote for a URL (``file://`` is local)."""
    if not is_url(path) or protocol_of(path) in ("file", "local"):
        return LOCAL
    return RemoteStorage(path, options)


def root_path(path: str) -> str:
    """A logdir as the reader keeps it: ``file:///x`` as ``/x``, other URLs without a trailing
    ``/`` (``s3://bucket/logs/`` is ``s3://bucket/logs``), local paths unchanged."""
    if not is_url(path):
        return path
    if protocol_of(path) in ("file", "local"):
        return path.split("://", 1)[1]
    scheme, _, rest = path.partition("://")
    return f"{scheme}://{rest.rstrip('/')}"


def iter_stats(storages: Mapping[str, Storage]) -> Iterator[IOStats]:
    """The counters of the remote storages among ``storages``."""
    for storage in storages.values():
        stats = storage.stats()
        if stats is not None:
            yield stats


class ObjectSink:
    """An event file in an object store, which cannot append.

    Each flush uploads the current object whole (a PUT of everything it holds so far);
    once an upload reaches ``roll_bytes``, the next records go to a new object, which starts
    with ``header()``. So a flush costs at most about ``roll_bytes`` of upload, a run holds
    one object per ``roll_bytes`` of events, and readers see a growing file, then the next.
    Bytes are kept until an upload of them succeeds: a failed flush loses nothing, and
    the next flush (or close) uploads them again.
    """

    def __init__(
        self,
        directory: str,
        name: Callable[[], str],
        header: Callable[[], bytes],
        *,
        roll_bytes: int,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = directory.rstrip("/")
        self.fs, self._dir_path = open_filesystem(self.directory, options)
        self._dir_path = self._dir_path.rstrip("/")
        self._name = name
        self._header = header
        self.roll_bytes = roll_bytes
        self.io = IOStats(redact(self.directory))
        self._start(header_too=False)

    def _start(self, *, header_too: bool) -> None:
        self._object = self._name()
        self._buf = bytearray(self._header() if header_too else b"")
        self._uploaded = -1  # bytes of _buf the store holds; -1: the object does not exist

    @property
    def path(self) -> str:
        """The URL of the object being written."""
        return f"{self.directory}/{self._object}"

    def write(self, data: bytes) -> None:
        if self._uploaded >= self.roll_bytes:
            self._start(header_too=True)
        self._buf += data

    def flush(self) -> None:
        if len(self._buf) == self._uploaded:
            return
        data = bytes(self._buf)
        target = f"{self._dir_path}/{self._object}"
        with_retries(lambda: self.fs.pipe_file(target, data), self.path, self.io, "put")
        self.io.bytes_written += len(data)
        self._uploaded = len(data)

    def close(self) -> None:
        self.flush()
