"""What botocore does for a run: its client (credential chain, AWS config files, endpoint rules), the start that
asks the bucket's region and proves the right to write, the probes, HEADs, and the clean-up after a signal. Imported
only where one of these is needed: a run whose environment says all botocore would starts without it (start.py)."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import contextlib
import datetime as dt
import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.utils import parse_timestamp

from s3_landing import __version__
from s3_landing.config import Settings
from s3_landing.discovery import RemoteObject, date_folder, today_folders
from s3_landing.errors import FatalError
from s3_landing.objects import META_SHA256
from s3_landing.transfer.destination import Destination, list_folder
from s3_landing.transfer.engine import Access, Endpoint, open_stores
from s3_landing.transfer.proof import UNREADABLE_ENCRYPTION, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedMultipartUploadTypeDef, MultipartUploadTypeDef
    from obstore.store import S3Credential, S3Store


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
# obstore asks for credentials again when they have less than 5 minutes left. Refreshable ones are said to last
# this long, so obstore asks every 5 minutes and botocore, which refreshes them 10 minutes before they expire,
# always hands out ones with at least 5 minutes to spare.
REFRESHABLE_CREDENTIALS_LIFETIME = dt.timedelta(minutes=10)


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


class BotocoreCredentials:
    """obstore's credential provider: botocore's credential chain (keys, profiles, SSO, assumed roles, instance and
    container roles), refreshed by botocore on long runs."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def __call__(self) -> S3Credential:
        frozen = self.credentials.get_frozen_credentials()
        refreshable = isinstance(self.credentials, RefreshableCredentials)
        expires_at = dt.datetime.now(dt.timezone.utc) + REFRESHABLE_CREDENTIALS_LIFETIME if refreshable else None
        return {
            "access_key_id": frozen.access_key or "",
            "secret_access_key": frozen.secret_key or "",
            "token": frozen.token,
            "expires_at": expires_at,
        }


class EmptyBody:
    """The raw body of the answer that stands in for sending, in the form botocore's AWSResponse streams it."""

    def stream(self) -> Iterator[bytes]:
        return iter(())


def botocore_put_request(client: S3Client, bucket: str) -> AWSPreparedRequest:
    """The PutObject request botocore would send, built and signed but not sent: its URL and credential scope say
    where botocore's endpoint rules send this bucket's objects and for which region it signs them."""
    built: list[AWSPreparedRequest] = []

    def keep_instead_of_sending(request: AWSPreparedRequest, **_: object) -> Any:  # an answer stops the sending
        built.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), EmptyBody())

    event = "before-send.s3.PutObject"
    client.meta.events.register_first(event, keep_instead_of_sending)
    try:
        client.put_object(Bucket=bucket, Key="k", Body=b"")
    finally:
        client.meta.events.unregister(event, keep_instead_of_sending)
    return built[0]


def botocore_endpoint(client: S3Client, bucket: str) -> Endpoint:
    request = botocore_put_request(client, bucket)
    url = urlsplit(request.url)
    authorization = request.headers["Authorization"]
    authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
    credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    region = credential.rsplit("/", 4)[2]
    virtual_hosted = url.hostname is not None and url.hostname.startswith(f"{bucket}.")
    return Endpoint(f"{url.scheme}://{url.netloc}", virtual_hosted, region)


def sends_checksums(session: botocore.session.Session) -> bool:
    """x-amz-checksum-sha256 on every write, unless AWS_REQUEST_CHECKSUM_CALCULATION=when_required (for stores that
    refuse checksum headers) says to send checksums only where S3 requires them."""
    setting = session.get_config_variable("request_checksum_calculation") or "when_supported"
    return str(setting).lower() != "when_required"


def botocore_access(session: botocore.session.Session) -> Access:
    """botocore's credential chain as obstore's provider, its CA bundle and its checksum setting."""
    credentials = session.get_credentials()
    if credentials is None:
        raise NoCredentialsError()
    ca_bundle = session.get_config_variable("ca_bundle")
    return Access({}, BotocoreCredentials(credentials), ca_bundle, sends_checksums(session))


def probe_key(settings: Settings) -> str:
    return date_folder(settings.target.prefix, "Movies", settings.target.date) + PROBE_SUFFIX


class ChecksumCheck:
    """Whether the store checks x-amz-checksum-sha256 (AWS S3, SeaweedFS and MinIO do; moto and rclone serve s3
    keep or echo a wrong one), asked once a run and only when a proof needs it: a part with a wrong checksum is
    sent into a multipart upload that is then aborted, so nothing is left."""

    def __init__(
        self, clients: Callable[[], S3Client], settings: Settings, sends: bool, began: dict[str, float]
    ) -> None:
        self.clients = clients
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
                self.answer = refuses_a_wrong_checksum(self.clients(), self.settings)
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
        listings = [pool.submit(list_folder, lister, lambda: client, settings, f) for f in today_folders(settings)]
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
            listings = [pool.submit(list_folder, lister, lambda: client, settings, f) for f in today_folders(settings)]
        remote = {key: found for listing in listings for key, found in listing.result().items()}
        encryption = writing.result() if writing is not None else ""
        if conditions is not None:
            conditions.result()
    return Survey(client, store, remote, encryption, skew)


def open_engine(client: S3Client, session: botocore.session.Session, settings: Settings) -> tuple[S3Store, S3Store]:
    bucket, endpoint = settings.target.bucket, botocore_endpoint(client, settings.target.bucket)
    return open_stores(bucket, endpoint, botocore_access(session), settings.writes, settings.run.max_attempts)


def preflight_by_botocore(settings: Settings) -> Destination:
    """Clients, what is already in today's folders, and proof that we may write."""
    session = new_session()
    found = survey(settings, session, write_check=True)
    kms = (settings.writes.sse or found.encryption) in UNREADABLE_ENCRYPTION
    sends = sends_checksums(session)
    probes_begun: dict[str, float] = {}
    client = found.client
    checks = ChecksumCheck(lambda: client, settings, sends, probes_begun)
    return Destination(
        found.store, found.remote, kms, sends, checks, lambda: client, found.clock_skew, probes_begun=probes_begun
    )


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
    skew = destination.clock_skew if destination.clock_skew is not None else bucket_region(client, bucket)[1]
    for upload in open_uploads(client, bucket, prefixes):
        began = started.get(upload["Key"])
        initiated = parse_timestamp(str(upload["Initiated"])).timestamp()  # a string: new_session's parser
        if began is None or initiated < began + skew - CLOCK_SLACK_SECONDS:
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
