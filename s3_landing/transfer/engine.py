"""The engine that moves the bytes: obstore (Apache Arrow's Rust object_store) writes every object and lists the day
folders, with its own connection pool, TLS, retries, SigV4 signing and multipart orchestration. It is given the
endpoint, addressing style, region and credentials (from the environment, or from botocore); its errors are read back
as S3's. Nothing here imports botocore."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, Protocol, cast

import obstore
from obstore.store import S3Store

from s3_landing import __version__
from s3_landing.discovery import RemoteObject
from s3_landing.errors import EngineError, S3Failure
from s3_landing.objects import WriteOptions

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config, S3CredentialProvider


OBSTORE_VERSION = tuple(int(part) for part in obstore.__version__.split(".")[:2])
# obstore 0.8 (object_store 0.12.3) is the newest release for Python 3.9. It does not sign default headers, has no
# storage class attribute, read timeout or CA option, and does not retry a connection reset or a cut answer (fixed in
# object_store 0.12.4, #445). obstore 0.11+ (object_store 0.14) has all of these. README, Development.
LEGACY_OBSTORE = OBSTORE_VERSION < (0, 9)
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60  # no byte from the server for this long: the request is retried
# A limit on each whole request: a part or a small file is 16 MiB at most, which fits at 30 KB/s. On obstore 0.8,
# which has no read timeout, a stalled server is noticed after LEGACY_REQUEST_TIMEOUT_SECONDS instead.
REQUEST_TIMEOUT_SECONDS = 600
LEGACY_REQUEST_TIMEOUT_SECONDS = 2 * READ_TIMEOUT_SECONDS
STATUS = re.compile(r"non-2xx status code: (\d{3})")
CODE = re.compile(r"<Code>([^<]*)</Code>")
MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
HTTP_KIND = re.compile(r"HttpError \{\s*kind: (\w+)")  # object_store's own reading of a transport failure
DOCUMENT_PART_SIZE = 8 * 1024 * 1024
LISTING_BATCH = 1000  # objects per batch handed to Python: one page of ListObjectsV2
# obstore 0.8 encodes a listing's prefix twice when it holds other characters than these, and the store then lists
# nothing (measured on SeaweedFS with "ç", "%", "~" and "?" in the prefix); such folders are listed by botocore.
LEGACY_LISTABLE_FOLDER = re.compile(r"[A-Za-z0-9/_.-]*")
# object_store refuses a whole listing with a key its paths cannot hold (a control character, an empty or a "."
# segment: keys this program writes through botocore), or a listing without LastModified; botocore then lists.
KEYS_OR_LISTING_UNREADABLE = ("invalid path", "invalid list response")
ALTERED = "\ufffd"  # what object_store lists in place of some control characters of a key ("\x01")
CODES_OF_STATUS = {500: "InternalError", 503: "SlowDown"}  # when obstore kept no body after its retries


class Stream(Protocol):
    """What obstore reads a multipart upload's bytes from: read() until it gives b"" (seek and tell must exist)."""

    def read(self, size: int = -1) -> bytes: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...

    def tell(self) -> int: ...


@dataclass(frozen=True)
class Written:
    """What a write returned: the object's ETag (without quotes) and its version id, if the bucket keeps versions."""

    etag: str
    version_id: str | None


def read_failure(error: BaseException) -> S3Failure:
    text = str(error)
    status = STATUS.search(text)
    if status is not None:
        number = int(status[1])
        code, message = CODE.search(text), MESSAGE.search(text)
        code_text = code[1] if code else CODES_OF_STATUS.get(number, f"HTTP {number}")
        return S3Failure(number, code_text, message[1] if message else "")
    http_kind = HTTP_KIND.search(text)
    if "InvalidCertificate" in text:
        kind = "certificate"
    elif http_kind is not None and http_kind[1] in ("Timeout", "Connect"):
        kind = "timeout" if http_kind[1] == "Timeout" else "unreachable"
    else:
        kind = "connection"
    return S3Failure(None, kind=kind)


@dataclass(frozen=True)
class Endpoint:
    """Where this bucket's objects are sent: endpoint URL (with the bucket in the host name when virtual-hosted) and
    the region requests are signed for."""

    url: str
    virtual_hosted: bool
    region: str


@dataclass(frozen=True)
class Access:
    """How the store signs and whom it trusts: static keys (access_key_id, secret_access_key, session_token) or a
    credential provider; the CA bundle of a private CA; whether every write carries x-amz-checksum-sha256."""

    keys: dict[str, str]
    provider: S3CredentialProvider | None
    ca_bundle: str | None
    checksums: bool


def obstore_cannot_write(key: str, writes: WriteOptions) -> bool:
    """Keys holding a control character, which object_store's paths refuse; on obstore 0.8, a canned ACL or a storage
    class (it has no storage class, and sends extra headers unsigned). botocore writes those (botocore_writes.py)."""
    if any(unicodedata.category(char) == "Cc" for char in key):
        return True
    return LEGACY_OBSTORE and bool(writes.acl or writes.storage_class)


def client_options(endpoint: Endpoint, ca_bundle: str | None, acl: str) -> ClientConfig:
    options: dict[str, Any] = {
        "allow_http": endpoint.url.startswith("http:"),
        "connect_timeout": f"{CONNECT_TIMEOUT_SECONDS}s",
        "user_agent": f"upload_s3/{__version__} obstore/{obstore.__version__}",
    }
    if LEGACY_OBSTORE:
        options["timeout"] = f"{LEGACY_REQUEST_TIMEOUT_SECONDS}s"
    else:
        options.update(timeout=f"{REQUEST_TIMEOUT_SECONDS}s", read_timeout=f"{READ_TIMEOUT_SECONDS}s")
        if ca_bundle:
            with open(ca_bundle, encoding="ascii") as handle:
                options["root_certificate"] = handle.read()
        if acl:  # object_store signs default headers since 0.13.2: the canned ACL goes with every write request
            options["default_headers"] = {"x-amz-acl": acl}
    return cast("ClientConfig", options)


def store_config(endpoint: Endpoint, writes: WriteOptions, checksums: bool) -> S3Config:
    config: dict[str, Any] = {
        "endpoint": endpoint.url,
        "virtual_hosted_style_request": endpoint.virtual_hosted,
        "region": endpoint.region,
    }
    if checksums:
        config["checksum_algorithm"] = "SHA256"
    if writes.sse:
        config["aws_server_side_encryption"] = writes.sse
    if writes.sse_kms_key_id:
        config["aws_sse_kms_key_id"] = writes.sse_kms_key_id
    if writes.sse_bucket_key:
        config["aws_sse_bucket_key_enabled"] = True
    return cast("S3Config", config)


def open_store(bucket: str, endpoint: Endpoint, access: Access, writes: WriteOptions, max_attempts: int) -> S3Store:
    if LEGACY_OBSTORE and access.ca_bundle:
        # obstore 0.8 takes no CA; its TLS (rustls with the system's roots) reads them from SSL_CERT_FILE, and then
        # trusts that bundle alone, as botocore does with AWS_CA_BUNDLE.
        os.environ["SSL_CERT_FILE"] = access.ca_bundle
    config = {**store_config(endpoint, writes, access.checksums), **access.keys}
    return S3Store(
        bucket,
        config=cast("S3Config", config),
        client_options=client_options(endpoint, access.ca_bundle, writes.acl),
        retry_config={"max_retries": max_attempts - 1},
        credential_provider=access.provider,
    )


def open_stores(
    bucket: str, endpoint: Endpoint, access: Access, writes: WriteOptions, max_attempts: int
) -> tuple[S3Store, S3Store]:
    """The store for the writes, and the one for the listings: the same (its connections then serve the writes),
    unless the writes carry a canned ACL, which obstore 0.11+ sends as a default header on every request, and a
    store may refuse on a listing (SeaweedFS answers 403)."""
    store = open_store(bucket, endpoint, access, writes, max_attempts)
    if not writes.acl or LEGACY_OBSTORE:
        return store, store
    return store, open_store(bucket, endpoint, access, WriteOptions(), max_attempts)


def put_bytes(
    store: S3Store, key: str, data: bytes, attributes: dict[str, str], tags: dict[str, str], create: bool = False
) -> Written:
    """One PUT of data, with x-amz-checksum-sha256 and a signed payload hash that the store can check; with create,
    only if no object is under the key (If-None-Match: *, 412 otherwise)."""
    mode: Literal["create", "overwrite"] = "create" if create else "overwrite"
    try:
        result = obstore.put(store, key, data, attributes=attributes, tags=tags or None, use_multipart=False, mode=mode)
    except Exception as error:
        raise EngineError(read_failure(error)) from error
    return Written(str(result["e_tag"] or "").strip('"'), result["version"])


def put_stream(
    store: S3Store,
    key: str,
    stream: Stream,
    part_size: int,
    parts_at_once: int,
    attributes: dict[str, str],
    tags: dict[str, str],
) -> Written:
    """A multipart upload of what stream.read() gives, in parts of part_size, parts_at_once of them in flight; obstore
    aborts the upload if a part or a read fails."""
    try:
        result = obstore.put(
            store,
            key,
            cast("IO[bytes]", stream),
            attributes=attributes,
            tags=tags or None,
            use_multipart=True,
            chunk_size=part_size,
            max_concurrency=parts_at_once,
        )
    except Exception as error:
        raise EngineError(read_failure(error)) from error
    return Written(str(result["e_tag"] or "").strip('"'), result["version"])


def list_objects(store: S3Store, folder: str) -> dict[str, RemoteObject] | None:
    """What the bucket holds under folder: key -> size and ETag, quotes removed ("" where a gateway lists none).
    object_store parses the listing outside the GIL, at a fifth of botocore's CPU. None where its paths cannot
    hold the keys as they are, or it cannot read the listing at all (it requires every object's LastModified), or
    (obstore 0.8) the folder holds characters it cannot list."""
    if LEGACY_OBSTORE and LEGACY_LISTABLE_FOLDER.fullmatch(folder) is None:
        return None
    found: dict[str, RemoteObject] = {}
    try:
        for batch in obstore.list(store, prefix=folder, chunk_size=LISTING_BATCH):
            for listed in batch:
                key = listed["path"]
                if not key.startswith(folder):  # the folder's own marker ("…/02/"), listed without its "/"
                    continue
                if key in found or ALTERED in key:  # "x.csv/" beside "x.csv" lists as "x.csv" twice; "\x01" as ALTERED
                    return None
                found[key] = RemoteObject(listed["size"], (listed["e_tag"] or "").strip('"'))
    except Exception as error:
        if any(failure in str(error) for failure in KEYS_OR_LISTING_UNREADABLE):
            return None
        raise EngineError(read_failure(error)) from error
    return found


def object_attributes(content_type: str, storage_class: str, metadata: dict[str, str]) -> dict[str, str]:
    """What obstore sends as headers of PutObject and CreateMultipartUpload; other names become x-amz-meta-*."""
    if storage_class and LEGACY_OBSTORE:
        raise ValueError("obstore 0.8 has no storage class: such writes go through botocore")
    return {"Content-Type": content_type, **({"Storage-Class": storage_class} if storage_class else {}), **metadata}


def put_document(
    store: S3Store, key: str, handle: BinaryIO, attributes: dict[str, str], tags: dict[str, str]
) -> Written:
    """A document of ours (the run manifest), streamed from handle: one PUT, or parts past 8 MiB."""
    try:
        result = obstore.put(
            store, key, handle, attributes=attributes, tags=tags or None, chunk_size=DOCUMENT_PART_SIZE
        )
    except Exception as error:
        raise EngineError(read_failure(error)) from error
    return Written(str(result["e_tag"] or "").strip('"'), result["version"])
