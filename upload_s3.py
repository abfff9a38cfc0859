#!/usr/bin/env python3
"""upload_s3: land local CSV files in the raw zone of an S3 data lake.

Walks a folder, classifies each CSV file as Movies or Series by its name, and uploads it to
s3://<bucket>/<prefix>/<Movies|Series>/<YYYY>/<MM>/<DD>/<file name>. Unchanged files are
skipped on re-runs. Run `python upload_s3.py --help` for the settings.

Sections, top to bottom: configuration -> discovery -> plan -> transfer -> report -> main.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import os
import signal
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import (
    TYPE_CHECKING,
    Any,
    BinaryIO,
    Callable,
    Literal,
    NoReturn,
    TextIO,
)
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)
from dotenv import load_dotenv

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__version__ = "1.0.0"

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

DEFAULT_SOURCE = "/app/data.base"
DEFAULT_PREFIX = "Raw/Local/CSV"
CONTENT_TYPE = "text/csv"
MIB = 1024 * 1024
MULTIPART_THRESHOLD = 16 * MIB
MIN_PART_SIZE = 8 * MIB
MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024
BUFFER_BUDGET = 64 * MIB  # bytes of file content held in memory at once, across all threads

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_FATAL = 2
EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
TRUE_WORDS = {"1", "true", "yes", "on"}
RetryMode = Literal["standard", "adaptive", "legacy"]
RETRY_MODES: tuple[RetryMode, ...] = ("standard", "adaptive", "legacy")


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


class FatalError(Exception):
    """Nothing can be uploaded (bucket, credentials, rights, endpoint); detected up front."""


class UsageError(Exception):
    """Bad command-line arguments; argparse's message, on one line."""


@dataclass(frozen=True)
class Settings:
    source: Path
    bucket: str
    prefix: str
    date: dt.date
    endpoint_url: str | None
    concurrency: int
    dry_run: bool
    retry_mode: RetryMode = "standard"
    max_attempts: int = 5


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def default_concurrency() -> int:
    # Uploads wait on the network far more than on the CPU: a few threads per core, capped.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(4, min(32, 8 * cores))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="upload_s3.py",
        description="Upload the CSV files of a folder to s3://BUCKET/PREFIX/<Movies|Series>/YYYY/MM/DD/<name>. "
        "Every flag has an environment variable (also read from a .env file); flags win over the "
        "environment, which wins over the .env file.",
        epilog="Credentials and region follow the standard AWS chain: AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_PROFILE, instance and task roles. "
        "Exit codes: 0 all uploaded or unchanged, 1 some files failed, 2 nothing could be done, "
        "130/143 interrupted by SIGINT/SIGTERM.",
    )
    parser.add_argument("--source", metavar="DIR", help=f"folder to upload [LOCAL_DIR; default {DEFAULT_SOURCE}]")
    parser.add_argument("--bucket", help="target bucket [BUCKET_NAME; required]")
    parser.add_argument("--prefix", help=f"key prefix of the raw zone [RAW_ZONE_PATH; default {DEFAULT_PREFIX}]")
    parser.add_argument(
        "--date", metavar="YYYY-MM-DD", help="partition date [UPLOAD_DATE; default: today in the local time zone, TZ]"
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, SeaweedFS, R2...) [AWS_ENDPOINT_URL]"
    )
    parser.add_argument(
        "--concurrency",
        metavar="N",
        help=f"files and parts in flight [UPLOAD_CONCURRENCY; default {default_concurrency()} here]",
    )
    parser.add_argument(
        "--dry-run", action="store_true", default=None, help="print what would be uploaded; touch nothing [DRY_RUN]"
    )
    parser.add_argument("--env-file", metavar="PATH", help="read settings from this file [default: ./.env if present]")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def load_env_file(path: str | None) -> None:
    """Fill os.environ from a .env file; variables already in the environment win."""
    if path is not None:
        env_file = Path(path)
        if not env_file.is_file():
            raise ConfigError(f"env file {path} not found: fix --env-file or create the file")
    else:
        env_file = Path.cwd() / ".env"
        if not env_file.is_file():
            return
    load_dotenv(env_file, override=False)


def setting(flag_value: str | None, variable: str, default: str | None = None) -> str | None:
    if flag_value is not None:
        return flag_value
    env_value = os.environ.get(variable, "").strip()
    return env_value or default


def normalize_prefix(raw: str) -> str:
    # The challenge writes the prefix with backslashes (Raw\Local\CSV); S3 keys use "/".
    parts = [part for part in raw.replace("\\", "/").split("/") if part]
    return "/".join(parts)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"date {text!r} is not YYYY-MM-DD: fix --date or UPLOAD_DATE") from None


def today_in_local_zone() -> dt.date:
    """Today's date where the user is: TZ when set (checked, so a typo is not silently UTC)."""
    zone_name = os.environ.get("TZ", "").lstrip(":")
    if not zone_name:
        return dt.date.today()
    try:
        return dt.datetime.now(ZoneInfo(zone_name)).date()
    except (ZoneInfoNotFoundError, ValueError):
        if any(char.isdigit() for char in zone_name):  # a POSIX rule such as "BRT3": the C library reads it
            return dt.date.today()
        raise ConfigError(
            f"TZ={zone_name!r} is not a time zone this system knows: use a name such as America/Sao_Paulo "
            "(install the tzdata package if no zone works)"
        ) from None


def parse_whole_number(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"{name}={text!r} must be a whole number from {low} to {high}")
    return int(text)


def parse_retry_mode() -> RetryMode:
    text = os.environ.get("AWS_RETRY_MODE", "").strip() or "standard"
    for mode in RETRY_MODES:
        if text == mode:
            return mode
    raise ConfigError(f"AWS_RETRY_MODE={text!r} is not one of {', '.join(RETRY_MODES)}")


def load_settings(argv: Sequence[str] | None) -> Settings:
    args = build_parser().parse_args(argv)
    load_env_file(args.env_file)
    bucket = setting(args.bucket, "BUCKET_NAME")
    if not bucket:
        raise ConfigError("no bucket name: set BUCKET_NAME (environment or .env) or pass --bucket")
    date_text = setting(args.date, "UPLOAD_DATE")
    dry_run = args.dry_run or os.environ.get("DRY_RUN", "").strip().lower() in TRUE_WORDS
    return Settings(
        source=Path(setting(args.source, "LOCAL_DIR", DEFAULT_SOURCE) or DEFAULT_SOURCE),
        bucket=bucket,
        prefix=normalize_prefix(setting(args.prefix, "RAW_ZONE_PATH", DEFAULT_PREFIX) or ""),
        date=parse_date(date_text) if date_text else today_in_local_zone(),
        endpoint_url=setting(args.endpoint_url, "AWS_ENDPOINT_URL"),
        concurrency=parse_whole_number(
            setting(args.concurrency, "UPLOAD_CONCURRENCY", str(default_concurrency())) or "", "concurrency", 1, 256
        ),
        dry_run=dry_run,
        retry_mode=parse_retry_mode(),
        max_attempts=parse_whole_number(setting(None, "AWS_MAX_ATTEMPTS", "5") or "", "AWS_MAX_ATTEMPTS", 1, 50),
    )


def check_source_folder(source: Path) -> None:
    if not source.exists():
        raise ConfigError(f"source folder {source} does not exist: mount it (docker -v) or set LOCAL_DIR / --source")
    if not source.is_dir():
        raise ConfigError(f"source {source} is not a folder: point LOCAL_DIR / --source at the folder of CSV files")
    try:
        with os.scandir(source):
            pass
    except OSError as error:
        raise ConfigError(f"cannot read source folder {source} ({error.strerror}): fix its permissions") from None


def make_s3_client(settings: Settings) -> S3Client:
    """The one place a client is made: standard credential chain, retries, a pool for every thread."""
    config = Config(
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        max_pool_connections=2 * settings.concurrency + 2,
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra=f"upload_s3/{__version__}",
    )
    return boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url, config=config)


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Problem:
    """Something found while walking that cannot be uploaded; `fails_run` makes the exit code 1."""

    path: Path
    reason: str
    fails_run: bool = True


def is_csv_name(name: str) -> bool:
    return name.lower().endswith(".csv")


def inspect_csv_entry(entry: os.DirEntry[str]) -> SourceFile | Problem:
    path = Path(entry.path)
    try:
        info = entry.stat(follow_symlinks=True)
    except FileNotFoundError:
        return Problem(path, "broken symbolic link: its target does not exist")
    except OSError as error:
        return Problem(path, f"cannot read file information ({error.strerror})")
    if not stat.S_ISREG(info.st_mode):
        return Problem(path, "not a regular file (FIFO, socket or device): only regular files are uploaded")
    return SourceFile(path, info.st_size, info.st_mtime_ns)


def sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda entry: entry.name)


def walk_csv_files(root: Path) -> Iterator[SourceFile | Problem]:
    """CSV files below root in a stable order; follows symbolic links once, hidden names ignored."""
    visited: set[tuple[int, int]] = set()
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            identity = folder.stat()
            if (identity.st_dev, identity.st_ino) in visited:
                yield Problem(folder, "folder already visited through a symbolic link: skipped", fails_run=False)
                continue
            visited.add((identity.st_dev, identity.st_ino))
            entries = sorted_entries(folder)
        except OSError as error:
            yield Problem(folder, f"cannot read folder ({error.strerror}): its CSV files were not uploaded")
            continue
        subfolders = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=True):
                subfolders.append(Path(entry.path))
            elif is_csv_name(entry.name):
                yield inspect_csv_entry(entry)
        folders.extend(reversed(subfolders))


# ---------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteObject:
    size: int
    etag: str


@dataclass(frozen=True)
class Job:
    source: SourceFile
    key: str
    remote: RemoteObject | None


def category_for(file_name: str) -> str:
    return "Movies" if "movies" in file_name.lower() else "Series"


def date_folder(prefix: str, category: str, date: dt.date) -> str:
    parts = [prefix, category, f"{date:%Y}", f"{date:%m}", f"{date:%d}"]
    return "/".join(part for part in parts if part) + "/"


def object_key(prefix: str, date: dt.date, file_name: str) -> str:
    return date_folder(prefix, category_for(file_name), date) + file_name


def key_problem(key: str) -> str | None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "file name is not valid UTF-8, which S3 keys require: rename the file"
    if size > MAX_KEY_BYTES:
        return f"key would be {size} bytes, S3 allows {MAX_KEY_BYTES}: shorten the file name or the prefix"
    return None


def count_file_names(root: Path) -> Counter[str]:
    return Counter(item.name for item in walk_csv_files(root) if isinstance(item, SourceFile))


def plan_jobs(settings: Settings, names: Counter[str], remote: dict[str, RemoteObject]) -> Iterator[Job | Problem]:
    """One Job per uploadable file; a Problem for anything that cannot go (including key collisions)."""
    for item in walk_csv_files(settings.source):
        if isinstance(item, Problem):
            yield item
            continue
        key = object_key(settings.prefix, settings.date, item.name)
        problem = key_problem(key)
        if problem is None and names[item.name] > 1:
            problem = f"{names[item.name]} files named {item.name!r} map to the same key {key}: rename all but one"
        yield Problem(item.path, problem) if problem else Job(item, key, remote.get(key))


def list_remote_objects(client: S3Client, bucket: str, folder: str) -> dict[str, RemoteObject]:
    found: dict[str, RemoteObject] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for item in page.get("Contents", []):
            found[item["Key"]] = RemoteObject(item["Size"], item["ETag"].strip('"'))
    return found


def list_date_folders(client: S3Client, settings: Settings) -> dict[str, RemoteObject]:
    """What is already under today's folders; doubles as the check of bucket, credentials and rights."""
    remote: dict[str, RemoteObject] = {}
    for category in ("Movies", "Series"):
        remote.update(
            list_remote_objects(client, settings.bucket, date_folder(settings.prefix, category, settings.date))
        )
    return remote


def check_write_access(client: S3Client, settings: Settings) -> None:
    # Starting and aborting a multipart upload proves the right to write without leaving anything behind.
    probe_key = date_folder(settings.prefix, "Movies", settings.date) + ".upload_s3-write-check"
    upload = client.create_multipart_upload(Bucket=settings.bucket, Key=probe_key)
    client.abort_multipart_upload(Bucket=settings.bucket, Key=probe_key, UploadId=upload["UploadId"])


def part_size_for(size: int) -> int:
    """Fixed by the file size alone, so a re-run can recompute the multipart ETag."""
    needed = -(-size // MAX_PARTS)
    return max(MIN_PART_SIZE, -(-needed // MIB) * MIB)


def file_chunks(handle: BinaryIO, size: int, chunk_size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = handle.read(min(chunk_size, remaining))
        if not chunk:
            raise FileChanged("file became shorter while it was read")
        remaining -= len(chunk)
        yield chunk
    if handle.read(1):
        raise FileChanged("file grew while it was read")


def local_etag(source: SourceFile) -> str:
    """The ETag S3 gives this content when uploaded by this program: MD5, or MD5 of part MD5s."""
    with open_regular_file(source) as handle:
        if source.size < MULTIPART_THRESHOLD:
            return hashlib.md5(handle.read()).hexdigest()
        part_size = part_size_for(source.size)
        digests = [hashlib.md5(chunk).digest() for chunk in file_chunks(handle, source.size, part_size)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def is_unchanged(job: Job) -> bool:
    remote = job.remote
    return remote is not None and remote.size == job.source.size and remote.etag == local_etag(job.source)


# ---------------------------------------------------------------------------------------------
# Transfer
# ---------------------------------------------------------------------------------------------


class FileChanged(Exception):
    """The file changed, vanished or was replaced while it was being read or uploaded."""


class Interrupted(Exception):
    """A stop was requested (SIGINT/SIGTERM) before the file finished."""


@dataclass
class Outcome:
    path: Path
    status: str  # "uploaded", "skipped", "failed", "planned"
    key: str = ""
    bytes_sent: int = 0
    reason: str = ""


def open_regular_file(source: SourceFile) -> BinaryIO:
    # O_NONBLOCK: if the path was swapped for a FIFO since discovery, open() must not wait for a writer.
    descriptor = os.open(source.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise FileChanged("is no longer a regular file")
        if (info.st_size, info.st_mtime_ns) != (source.size, source.mtime_ns):
            raise FileChanged("changed since it was found")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def ensure_unchanged(source: SourceFile) -> None:
    try:
        info = os.stat(source.path)
    except FileNotFoundError:
        raise FileChanged("disappeared during the upload") from None
    if (info.st_size, info.st_mtime_ns) != (source.size, source.mtime_ns):
        raise FileChanged("changed during the upload")


def md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


class BufferBudget:
    """Caps the file bytes held in memory by all threads together, so memory stays flat."""

    def __init__(self, limit: int) -> None:
        self.available = limit
        self.condition = threading.Condition()

    def acquire(self, amount: int) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.available >= amount)
            self.available -= amount

    def release(self, amount: int) -> None:
        with self.condition:
            self.available += amount
            self.condition.notify_all()


class Transfer:
    """Uploads jobs with one shared client; small files in one PUT, large ones in parallel parts."""

    def __init__(self, client: S3Client, settings: Settings, stop: threading.Event) -> None:
        self.client = client
        self.settings = settings
        self.stop = stop
        self.budget = BufferBudget(max(BUFFER_BUDGET, 2 * part_size_for(0)))
        self.part_pool = cf.ThreadPoolExecutor(settings.concurrency, thread_name_prefix="part")
        self.uses_crc32 = getattr(client.meta.config, "request_checksum_calculation", "") == "when_supported"

    def __enter__(self) -> Transfer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.part_pool.shutdown(wait=True)

    def put_small_file(self, job: Job) -> None:
        self.budget.acquire(job.source.size)
        try:
            with open_regular_file(job.source) as handle:
                data = b"".join(file_chunks(handle, job.source.size, job.source.size or 1))
            self.client.put_object(
                Bucket=self.settings.bucket,
                Key=job.key,
                Body=data,
                ContentMD5=md5_base64(data),
                ContentType=CONTENT_TYPE,
            )
        finally:
            self.budget.release(job.source.size)

    def send_part(self, upload_id: str, key: str, number: int, data: bytes) -> CompletedPartTypeDef:
        try:
            answer = self.client.upload_part(
                Bucket=self.settings.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=md5_base64(data),
            )
        finally:
            self.budget.release(len(data))
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": answer["ETag"]}
        if "ChecksumCRC32" in answer:
            part["ChecksumCRC32"] = answer["ChecksumCRC32"]
        return part

    def send_parts(self, job: Job, upload_id: str) -> list[CompletedPartTypeDef]:
        futures: list[cf.Future[CompletedPartTypeDef]] = []
        try:
            with open_regular_file(job.source) as handle:
                part_size = part_size_for(job.source.size)
                for number, chunk in enumerate(file_chunks(handle, job.source.size, part_size), start=1):
                    if self.stop.is_set():
                        raise Interrupted()
                    self.budget.acquire(len(chunk))
                    futures.append(self.part_pool.submit(self.send_part, upload_id, job.key, number, chunk))
            return [future.result() for future in futures]
        finally:
            cf.wait(futures)

    def put_large_file(self, job: Job) -> None:
        extra: dict[str, Any] = {"ChecksumAlgorithm": "CRC32"} if self.uses_crc32 else {}
        upload_id = self.client.create_multipart_upload(
            Bucket=self.settings.bucket, Key=job.key, ContentType=CONTENT_TYPE, **extra
        )["UploadId"]
        try:
            parts = self.send_parts(job, upload_id)
            ensure_unchanged(job.source)
            self.client.complete_multipart_upload(
                Bucket=self.settings.bucket,
                Key=job.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self.abort_quietly(job.key, upload_id)
            raise

    def abort_quietly(self, key: str, upload_id: str) -> None:
        # The file is reported as failed either way; if the abort fails too, a lifecycle rule cleans up.
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(Bucket=self.settings.bucket, Key=key, UploadId=upload_id)

    def upload(self, job: Job, announce: Callable[[Job], None]) -> Outcome:
        """Upload one job, or skip it when unchanged; every error becomes a failed Outcome."""
        try:
            if self.stop.is_set():
                raise Interrupted()
            if is_unchanged(job):
                return Outcome(job.source.path, "skipped", job.key)
            announce(job)
            if job.source.size < MULTIPART_THRESHOLD:
                self.put_small_file(job)
            else:
                self.put_large_file(job)
            ensure_unchanged(job.source)
            return Outcome(job.source.path, "uploaded", job.key, job.source.size)
        except Exception as error:  # noqa: BLE001 - one bad file must never stop the others
            return Outcome(job.source.path, "failed", job.key, reason=explain(error, self.settings))


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
}


def printable(text: str) -> str:
    """One line, whatever the file name holds: control characters and undecodable bytes escaped."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def redact(text: str) -> str:
    for variable in SECRET_VARIABLES:
        secret = os.environ.get(variable, "")
        if len(secret) >= 4:
            text = text.replace(secret, "****")
    return text


def explain_client_error(error: ClientError, settings: Settings) -> str:
    code = error.response.get("Error", {}).get("Code", "Unknown")
    where = f"s3://{settings.bucket}/{settings.prefix}"
    if code == "NoSuchBucket":
        return f"bucket {settings.bucket!r} does not exist: create it or correct BUCKET_NAME / --bucket"
    if code in CREDENTIAL_CODES:
        return (
            f"credentials rejected ({code}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
            "AWS_SESSION_TOKEN (or AWS_PROFILE) for this endpoint"
        )
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return (
            f"access denied on {where}: the identity needs s3:ListBucket, s3:PutObject and "
            "s3:AbortMultipartUpload there (see the README's IAM policy)"
        )
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
        return f"bucket {settings.bucket!r} is in another region: set AWS_REGION to the bucket's region"
    message = error.response.get("Error", {}).get("Message", "")
    return f"S3 answered {code}: {message}".rstrip(": ")


def explain(error: BaseException, settings: Settings) -> str:
    """One line naming the cause and, where there is one, the fix; never a secret."""
    if isinstance(error, ClientError):
        text = explain_client_error(error, settings)
    elif isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        text = "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use a role"
    elif isinstance(error, ProfileNotFound):
        text = f"{error}: fix AWS_PROFILE or ~/.aws/config"
    elif isinstance(error, SSLError):
        text = "TLS certificate not trusted: for a private CA set AWS_CA_BUNDLE to its PEM file"
    elif isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        endpoint = settings.endpoint_url or "the S3 endpoint"
        text = f"cannot reach {endpoint}: check AWS_ENDPOINT_URL / --endpoint-url and the network"
    elif isinstance(error, ReadTimeoutError):
        text = "the server stopped answering (read timeout); the file was not sent"
    elif isinstance(error, FileChanged):
        text = f"file {error}; it was not reported as sent: run again once it is stable"
    elif isinstance(error, Interrupted):
        text = "not sent: the run was interrupted"
    elif isinstance(error, OSError):
        text = f"cannot read the file ({error.strerror or error}): fix its permissions or remove it"
    else:
        text = f"{type(error).__name__}: {error}"
    return printable(redact(text))


def human_bytes(amount: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


@dataclass
class Tally:
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    planned: int = 0
    bytes_sent: int = 0
    started: float = field(default_factory=time.monotonic)


class Reporter:
    """Console lines of the challenge (in Portuguese), flushed at once and safe across threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.tally = Tally()
        self.lock = threading.Lock()

    def line(self, text: str, stream: TextIO | None = None) -> None:
        with self.lock:
            print(redact(text), file=stream or sys.stdout, flush=True)

    def fatal(self, message: str) -> None:
        self.line(f"upload_s3: error: {printable(redact(message))}", sys.stderr)

    def url(self, key: str) -> str:
        assert self.settings is not None
        return printable(f"s3://{self.settings.bucket}/{key}")

    def announce(self, job: Job) -> None:
        marker = "[dry-run] " if self.settings and self.settings.dry_run else ""
        self.line(f"{marker}Iniciando upload de {printable(str(job.source.path))} para {self.url(job.key)}")

    def problem(self, problem: Problem) -> None:
        if problem.fails_run:
            self.tally.failed += 1
            self.line(f"Erro ao enviar {printable(str(problem.path))}: {printable(problem.reason)}", sys.stderr)
        else:
            self.line(f"Aviso: {printable(str(problem.path))}: {printable(problem.reason)}", sys.stderr)

    def outcome(self, outcome: Outcome) -> None:
        local = printable(str(outcome.path))
        if outcome.status == "uploaded":
            self.tally.uploaded += 1
            self.tally.bytes_sent += outcome.bytes_sent
            self.line(f"Arquivo enviado: {local} -> {self.url(outcome.key)}")
        elif outcome.status == "skipped":
            self.tally.skipped += 1
            self.line(f"Arquivo sem alterações, ignorado: {local} = {self.url(outcome.key)}")
        elif outcome.status == "planned":
            self.tally.planned += 1
        else:
            self.tally.failed += 1
            self.line(f"Erro ao enviar {local}: {outcome.reason}", sys.stderr)

    def summary(self) -> None:
        tally = self.tally
        seconds = time.monotonic() - tally.started
        self.line("Processo concluído!")
        if self.settings and self.settings.dry_run:
            self.line(f"Resumo (dry-run, nada enviado): {tally.planned} a enviar, {tally.failed} com falha")
            return
        self.line(
            f"Resumo: {tally.uploaded} enviados, {tally.skipped} ignorados sem alterações, "
            f"{tally.failed} com falha; {tally.bytes_sent} bytes ({human_bytes(tally.bytes_sent)}) "
            f"enviados em {seconds:.1f} s"
        )


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


class StopOnSignal:
    """SIGINT/SIGTERM set an event instead of killing the process, so the run can end cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_number: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for number in EXIT_BY_SIGNAL:
                self.previous[number] = signal.signal(number, self.handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]

    def handle(self, number: int, frame: FrameType | None) -> None:
        self.signal_number = number
        self.event.set()


def report_plan(settings: Settings, reporter: Reporter, names: Counter[str]) -> None:
    """Dry run: the lines a real run would start with, and every problem; nothing is contacted."""
    for item in plan_jobs(settings, names, remote={}):
        if isinstance(item, Problem):
            reporter.problem(item)
        else:
            reporter.announce(item)
            reporter.outcome(Outcome(item.source.path, "planned", item.key))


def collect(reporter: Reporter, done: set[cf.Future[Outcome]]) -> None:
    for future in done:
        reporter.outcome(future.result())


def upload_all(settings: Settings, reporter: Reporter, names: Counter[str], stop: threading.Event) -> None:
    try:
        client = make_s3_client(settings)
        remote = list_date_folders(client, settings)
        check_write_access(client, settings)
    except (BotoCoreError, ClientError) as error:
        raise FatalError(explain(error, settings)) from None
    pending: set[cf.Future[Outcome]] = set()
    with Transfer(client, settings, stop) as transfer, cf.ThreadPoolExecutor(settings.concurrency) as pool:
        for item in plan_jobs(settings, names, remote):
            if isinstance(item, Problem):
                reporter.problem(item)
                continue
            while len(pending) >= 2 * settings.concurrency:  # bounded: 100,000 files are not queued at once
                done, pending = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                collect(reporter, done)
            pending.add(pool.submit(transfer.upload, item, reporter.announce))
        while pending:
            done, pending = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            collect(reporter, done)


def run(settings: Settings, reporter: Reporter, stop: threading.Event) -> int:
    check_source_folder(settings.source)
    names = count_file_names(settings.source)
    if not names:
        reporter.line(f"Nenhum arquivo CSV para enviar em {printable(str(settings.source))}")
    if settings.dry_run or not names:
        report_plan(settings, reporter, names)
    else:
        upload_all(settings, reporter, names, stop)
    if stop.is_set():
        reporter.line("Execução interrompida: nenhum arquivo novo foi iniciado depois do sinal")
    reporter.summary()
    return EXIT_SOME_FAILED if reporter.tally.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the uploader; returns the exit code (see --help)."""
    reporter = Reporter()
    try:
        settings = load_settings(argv)
        reporter.settings = settings
        with StopOnSignal() as stopper:
            code = run(settings, reporter, stopper.event)
    except SystemExit as exit_request:  # --help and --version
        return int(exit_request.code or 0)
    except (UsageError, ConfigError, FatalError) as error:
        reporter.fatal(str(error))
        return EXIT_FATAL
    if stopper.signal_number is not None:
        return EXIT_BY_SIGNAL[signal.Signals(stopper.signal_number)]
    return code


if __name__ == "__main__":
    sys.exit(main())
