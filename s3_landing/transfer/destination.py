"""The bucket as a run talks to it, prepared up front: botocore's client for HEADs, the probes and the clean-up
(what obstore cannot do), obstore's store for every object write and the listings, and what today's folders hold."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import contextlib
import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp

from s3_landing import __version__
from s3_landing.config import Settings
from s3_landing.discovery import RemoteObject, date_folder, list_remote_objects, today_folders
from s3_landing.errors import FatalError
from s3_landing.objects import META_SHA256, WriteOptions
from s3_landing.transfer.engine import LEGACY_OBSTORE, list_objects, open_store, sends_checksums
from s3_landing.transfer.proof import UNREADABLE_ENCRYPTION, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedMultipartUploadTypeDef, MultipartUploadTypeDef
    from obstore.store import S3Store


PROBE_SUFFIX = ".upload_s3-write-check"  # the key of the probes' multipart uploads, never completed
CONFLICT_ATTEMPTS = 5  # a 409 answers a conditional write while another to the key is in progress
CONDITIONAL_PROBE = "_upload_s3/conditional-write-check"  # the one object a run may leave: --no-overwrite's probe
CONDITIONS_FIX = (
    "--no-overwrite cannot be kept on it: run without it, or land on a store that honours If-None-Match (AWS S3, "
    "SeaweedFS)"
)
WRONG_SHA256 = base64.b64encode(hashlib.sha256(b"not the part").digest()).decode()
ABORT_GRACE_SECONDS = 2.0  # after a signal, how long the clean-up of this run's multipart uploads may take
CLOCK_SLACK_SECONDS = 1.0  # the Date header and some stores' Initiated times have whole seconds


def new_session() -> botocore.session.Session:
    """botocore's session: the standard credential chain, AWS config files and AWS_CA_BUNDLE. boto3's wrapper
    around it is not used: importing boto3 also loads s3transfer, 0.15 s of every run for nothing called here."""
    session = botocore.session.Session()
    # Listings only need keys, sizes and ETags; parsing every LastModified with dateutil cost 0.5 ms an object.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


def make_s3_client(settings: Settings, session: botocore.session.Session, region: str | None = None) -> S3Client:
    """The one place a botocore client is made: retries, timeouts, a pool for every thread."""
    config = Config(
        retries={"mode": settings.run.retry_mode, "total_max_attempts": settings.run.max_attempts},
        max_pool_connections=2 * settings.run.concurrency + 2,
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra=f"upload_s3/{__version__}",
        signature_version="s3v4",
    )
    client = session.create_client("s3", endpoint_url=settings.target.endpoint_url, region_name=region, config=config)
    return cast("S3Client", client)


def probe_key(settings: Settings) -> str:
    return date_folder(settings.target.prefix, "Movies", settings.target.date) + PROBE_SUFFIX


class ChecksumCheck:
    """Whether the store checks x-amz-checksum-sha256 (AWS S3, SeaweedFS and MinIO do; moto and rclone serve s3
    keep or echo a wrong one), asked once a run and only when a proof needs it: a part with a wrong checksum is
    sent into a multipart upload that is then aborted, so nothing is left."""

    def __init__(self, client: S3Client, settings: Settings, sends: bool, began: dict[str, float]) -> None:
        self.client = client
        self.settings = settings
        self.sends = sends
        self.began = began  # the probe's key and when it began, for the clean-up after a signal
        self.lock = threading.Lock()
        self.answer: bool | None = None

    def __call__(self) -> bool:
        if not self.sends:
            return False
        with self.lock:
            if self.answer is None:
                self.began[probe_key(self.settings)] = time.time()
                self.answer = refuses_a_wrong_checksum(self.client, self.settings)
            return self.answer


def refuses_a_wrong_checksum(client: S3Client, settings: Settings) -> bool:
    key, bucket = probe_key(settings), settings.target.bucket
    try:
        upload_id = client.create_multipart_upload(
            Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **settings.writes.parameters()
        )["UploadId"]
    except (BotoCoreError, ClientError):
        return False  # cannot tell: no write is then proven by a checksum
    try:
        client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part", ChecksumSHA256=WRONG_SHA256
        )
    except ClientError as error:
        return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 400
    except BotoCoreError:
        return False
    finally:
        with contextlib.suppress(BotoCoreError, ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    return False


@dataclass(frozen=True)
class Destination:
    """The bucket as this run talks to it. kms: its objects are KMS-encrypted, so their ETags are no MD5s (from
    --sse, or the bucket's default encryption, which the write probe's answer names). clock_skew: the server's clock
    minus ours, in seconds."""

    client: S3Client
    store: S3Store
    remote: dict[str, RemoteObject]
    kms: bool
    sends_checksums: bool
    checks_checksums: Callable[[], bool]  # a ChecksumCheck
    clock_skew: float = 0.0
    probes_begun: dict[str, float] = field(default_factory=dict)  # the checksum probe's upload, once it begins


@dataclass(frozen=True)
class Survey:
    client: S3Client
    store: S3Store
    remote: dict[str, RemoteObject]
    encryption: str
    clock_skew: float


def bucket_region(client: S3Client, bucket: str) -> tuple[str | None, float]:
    """The bucket's region as AWS reports it (botocore's own calls follow a wrong region by redirect, but obstore
    signs for the region it is given), and the server's clock minus ours, from the answer's Date."""
    try:
        headers = client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    except ClientError as error:  # a 301 or 403 still names the region
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return headers.get("x-amz-bucket-region"), clock_skew(headers.get("date", ""))


def clock_skew(date: str) -> float:
    try:
        return email.utils.parsedate_to_datetime(date).timestamp() - time.time()
    except (TypeError, ValueError):
        return 0.0


def conditional_probe_key(settings: Settings) -> str:
    """Outside the day folders (so no --check lists it as an extra), in a folder Spark, Hive and pyarrow skip."""
    return "/".join(part for part in (settings.target.prefix, CONDITIONAL_PROBE) if part)


def check_conditional_writes(client: S3Client, settings: Settings) -> None:
    """--no-overwrite rests on the store refusing a write to a taken key (If-None-Match: *, 412), on PutObject and
    on CompleteMultipartUpload alike, since a store may honour one and not the other. The probe object is written
    once (a few bytes; an earlier run's serves too) and written to again, conditionally; the multipart upload is
    aborted. Raises FatalError when the store ignores or refuses the condition."""
    key, bucket, parameters = conditional_probe_key(settings), settings.target.bucket, settings.writes.parameters()
    body = b"upload_s3 checks here that the store refuses conditional writes to a taken key\n"
    refused(lambda: client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", **parameters))  # or there
    if not refused(lambda: client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", **parameters)):
        raise FatalError(conditions_ignored("PutObject"))
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **parameters)["UploadId"]
    try:
        etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=body)["ETag"]
        parts: CompletedMultipartUploadTypeDef = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
        complete = client.complete_multipart_upload
        if not refused(
            lambda: complete(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=parts, IfNoneMatch="*")
        ):
            raise FatalError(conditions_ignored("CompleteMultipartUpload"))
    finally:
        with contextlib.suppress(BotoCoreError, ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def refused(write: Callable[[], object]) -> bool:
    """True when the store refused the conditional write as S3 does (412); False when it wrote it. A 409 (another
    run's conditional write to the key in progress) is tried again. Any other refusal (501, 400: the header is not
    understood) is FatalError."""
    attempt = 1
    while True:
        try:
            write()
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 409 and attempt < CONFLICT_ATTEMPTS:
                time.sleep(0.2 * 2**attempt)
                attempt += 1
                continue
            if status == 412:
                return True
            if status in (400, 501):
                code = error.response.get("Error", {}).get("Code", status)
                raise FatalError(f"the store refused a conditional write ({code}): {CONDITIONS_FIX}") from None
            raise
        return False


def conditions_ignored(operation: str) -> str:
    return f"the store ignores conditional writes (If-None-Match on {operation}): {CONDITIONS_FIX}"


def check_write_access(client: S3Client, settings: Settings) -> str:
    """Starting and aborting a multipart upload proves the right to write without leaving anything behind. It
    carries the objects' encryption, class, ACL and tags, so a bucket policy that requires them passes it too.
    Returns the encryption the answer names (the bucket's default, when --sse is not given)."""
    key = probe_key(settings)
    upload = client.create_multipart_upload(Bucket=settings.target.bucket, Key=key, **settings.writes.parameters())
    client.abort_multipart_upload(Bucket=settings.target.bucket, Key=key, UploadId=upload["UploadId"])
    return str(upload.get("ServerSideEncryption", ""))


def survey(settings: Settings, session: botocore.session.Session, write_check: bool) -> Survey:
    """Clients for the bucket's region and what today's folders hold; with write_check, proof that we may write.
    Raises botocore's errors, or the engine's for the listing: any of them means the bucket cannot be used."""
    client = make_s3_client(settings, session)
    store, lister = open_engine(client, session, settings)
    with cf.ThreadPoolExecutor(4, thread_name_prefix="preflight") as pool:  # one round trip's wait, not four
        listings = [pool.submit(list_folder, client, lister, settings, f) for f in today_folders(settings)]
        asked_region = pool.submit(bucket_region, client, settings.target.bucket)
        writing = pool.submit(check_write_access, client, settings) if write_check else None
        conditions = (
            pool.submit(check_conditional_writes, client, settings)
            if write_check and settings.writes.no_overwrite
            else None
        )
        region, skew = asked_region.result()
        if region not in (None, client.meta.region_name):  # the engine signs for the region it is given alone
            client = make_s3_client(settings, session, region)
            store, lister = open_engine(client, session, settings)
            listings = [pool.submit(list_folder, client, lister, settings, f) for f in today_folders(settings)]
        remote = {key: found for listing in listings for key, found in listing.result().items()}
        encryption = writing.result() if writing is not None else ""
        if conditions is not None:
            conditions.result()
    return Survey(client, store, remote, encryption, skew)


def open_engine(client: S3Client, session: botocore.session.Session, settings: Settings) -> tuple[S3Store, S3Store]:
    """The store for the writes, and the one for the listings: the same (its connections then serve the writes),
    unless the writes carry a canned ACL, which obstore 0.11+ sends as a default header on every request, and a
    store may refuse on a listing (SeaweedFS answers 403)."""
    bucket, attempts = settings.target.bucket, settings.run.max_attempts
    store = open_store(client, session, bucket, settings.writes, attempts)
    if not settings.writes.acl or LEGACY_OBSTORE:
        return store, store
    return store, open_store(client, session, bucket, WriteOptions(), attempts)


def list_folder(client: S3Client, store: S3Store, settings: Settings, folder: str) -> dict[str, RemoteObject]:
    """The engine's listing; botocore's where the engine cannot list the folder or read the store's listing."""
    listed = list_objects(store, folder)
    return listed if listed is not None else list_remote_objects(client, settings.target.bucket, folder)


def preflight(settings: Settings) -> Destination:
    """Clients, what is already in today's folders, and proof that we may write."""
    session = new_session()
    found = survey(settings, session, write_check=True)
    kms = (settings.writes.sse or found.encryption) in UNREADABLE_ENCRYPTION
    sends = sends_checksums(session)
    probes_begun: dict[str, float] = {}
    checks = ChecksumCheck(found.client, settings, sends, probes_begun)
    return Destination(found.client, found.store, found.remote, kms, sends, checks, found.clock_skew, probes_begun)


def read_stored(client: S3Client, bucket: str, key: str) -> StoredObject:
    """HEAD with checksum mode on: size, ETag, the store's checksum and the encryption."""
    try:
        answer = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("403", "AccessDenied", "Forbidden"):
            return StoredObject(refused=True)
        if code in ("404", "NoSuchKey", "NotFound"):
            return StoredObject(missing=True)
        return StoredObject(failure=f"reading the object (HEAD) failed: {code or error}")
    except BotoCoreError as error:
        return StoredObject(failure=f"reading the object (HEAD) failed: {error}")
    return StoredObject(
        size=answer.get("ContentLength"),
        etag=answer.get("ETag", "").strip('"'),
        checksum=answer.get("ChecksumSHA256", ""),
        encryption=answer.get("ServerSideEncryption", ""),
        customer_key=bool(answer.get("SSECustomerAlgorithm")),
        lineage=META_SHA256 in answer.get("Metadata", {}),
    )


def abort_uploads_of_run(destination: Destination, settings: Settings, started: dict[str, float]) -> list[str]:
    """After a signal: abort the multipart uploads this run started that obstore could not abort itself (a part
    stuck on a silent server), within ABORT_GRACE_SECONDS. Returns the keys that may still hold one."""
    if not started:
        return []
    left: list[str] = sorted(started)
    done = threading.Event()

    def clean_up() -> None:
        nonlocal left
        with contextlib.suppress(BotoCoreError, ClientError):
            left = abort_ours(destination, settings.target.bucket, started, today_folders(settings))
        done.set()

    threading.Thread(target=clean_up, name="clean-up", daemon=True).start()
    done.wait(ABORT_GRACE_SECONDS)
    return left


def abort_ours(destination: Destination, bucket: str, started: dict[str, float], prefixes: Iterable[str]) -> list[str]:
    """Abort the open multipart uploads under prefixes that are this run's: their key is one this run was uploading
    and they were created after that upload began (by the server's clock), so another run's are left alone. Needs
    s3:ListBucketMultipartUploads. Returns the keys whose upload could not be aborted."""
    client, left = destination.client, []
    for upload in open_uploads(client, bucket, prefixes):
        began = started.get(upload["Key"])
        initiated = parse_timestamp(str(upload["Initiated"])).timestamp()  # a string: new_session's parser
        if began is None or initiated < began + destination.clock_skew - CLOCK_SLACK_SECONDS:
            continue
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":  # obstore aborted it meanwhile
                left.append(upload["Key"])
    return left


def open_uploads(client: S3Client, bucket: str, folders: Iterable[str]) -> list[MultipartUploadTypeDef]:
    found: list[MultipartUploadTypeDef] = []
    for folder in folders:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=folder):
            found.extend(page.get("Uploads", []))
    return found
