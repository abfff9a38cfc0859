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
import errno
import functools
import hashlib
import hmac
import io
import json
import os
import platform
import re
import signal
import socket
import ssl
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Literal, NoReturn, Protocol, TextIO, cast
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import botocore
import botocore.session
from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool, AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.hooks import first_non_none_response
from botocore.httpsession import BUFFER_SIZE, ProxyConfiguration, create_urllib3_context, get_cert_path, mask_proxy_url
from botocore.model import OperationModel
from botocore.utils import get_environ_proxies
from dotenv import load_dotenv
from urllib3 import PoolManager, Timeout, proxy_from_url
from urllib3.exceptions import ConnectTimeoutError as URLLib3ConnectTimeoutError
from urllib3.exceptions import NewConnectionError, ProtocolError
from urllib3.exceptions import ProxyError as URLLib3ProxyError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError
from urllib3.exceptions import SSLError as URLLib3SSLError
from urllib3.util.ssl_match_hostname import CertificateError as URLLib3CertificateError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__version__ = "1.1.0"

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
BUFFER_BUDGET = 64 * MIB  # bytes of small files held in memory at once, across all threads (parts are streamed)
# Parts queued or in flight across all large files. More only adds server load: on 280 MB against SeaweedFS,
# 8 took 3.7 s and 64 took 4.8 s (medians of 3, bench data); s3transfer uses 10, s5cmd 5 per file.
PARTS_IN_FLIGHT = 8
# A CompleteMultipartUpload retried after its answer was lost may find the upload already completed.
COMPLETED_ALREADY_CODES = ("NoSuchUpload", "InvalidPart")
STOP_GRACE_SECONDS = 5.0  # after SIGINT/SIGTERM, how long files in flight may still finish (docker stop gives 10)
ABORT_GRACE_SECONDS = 2.0  # then how long aborting their multipart uploads may take
NOT_STARTED = "not sent: the run was interrupted before it started"

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_FATAL = 2
EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
URL_QUERY = re.compile(r"(https?://[^\s?\"']*)\?[^\s\"']*")
TRUE_WORDS = {"1", "true", "yes", "on"}
SHARD_INDEX_VARIABLES = ("SHARD_INDEX", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
RetryMode = Literal["standard", "adaptive", "legacy"]
RETRY_MODES: tuple[RetryMode, ...] = ("standard", "adaptive", "legacy")
QUIET, NORMAL, VERBOSE = 0, 1, 2


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


class FatalError(Exception):
    """Nothing can be uploaded (bucket, credentials, rights, endpoint); detected up front."""


class UsageError(Exception):
    """Bad command-line arguments; argparse's message, on one line."""


@dataclass(frozen=True)
class Shard:
    """This worker's share of the files: chosen by file name, so files that share a key share a shard."""

    index: int = 0
    count: int = 1

    def owns(self, file_name: str) -> bool:
        if self.count == 1:
            return True
        digest = hashlib.sha256(file_name.encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


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
    shard: Shard = Shard()
    manifest: bool = False
    manifest_file: Path | None = None
    log_format: str = "human"
    verbosity: int = NORMAL
    progress_interval: float = 5.0
    follow_links_outside: bool = False

    @property
    def records_content(self) -> bool:
        """Manifests need each file's SHA-256, header and row count, taken while it is read for upload."""
        return self.manifest or self.manifest_file is not None


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def default_concurrency() -> int:
    # Uploads wait on the network far more than on the CPU: a few threads per core, capped.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(16, min(64, 32 * cores))


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
    add = parser.add_argument
    add("--source", metavar="DIR", help=f"folder to upload [LOCAL_DIR; default {DEFAULT_SOURCE}]")
    add("--bucket", help="target bucket [BUCKET_NAME; required]")
    add("--prefix", help=f"key prefix of the raw zone [RAW_ZONE_PATH; default {DEFAULT_PREFIX}]")
    add("--date", metavar="YYYY-MM-DD", help="partition date [UPLOAD_DATE; default: today in the local time zone, TZ]")
    add("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, SeaweedFS, R2...) [AWS_ENDPOINT_URL]")
    add(
        "--concurrency",
        metavar="N",
        help=f"files and parts in flight [UPLOAD_CONCURRENCY; default {default_concurrency()} here]",
    )
    add("--dry-run", action="store_true", default=None, help="print what would be uploaded; touch nothing [DRY_RUN]")
    add(
        "--follow-links-outside",
        action="store_true",
        default=None,
        help="also follow symbolic links whose target lies outside the source folder [FOLLOW_LINKS_OUTSIDE]",
    )
    add("--env-file", metavar="PATH", help="read settings from this file [default: ./.env if present]")
    add(
        "--shard",
        metavar="INDEX/COUNT",
        help="take only this worker's share of the files, e.g. 0/4 [SHARD_INDEX and SHARD_COUNT; the index also "
        "from JOB_COMPLETION_INDEX (Kubernetes) or AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch)]",
    )
    add(
        "--manifest",
        action="store_true",
        default=None,
        help="write a JSON run manifest to PREFIX/_manifests/YYYY/MM/DD/<run id>.json in the bucket [MANIFEST]",
    )
    add("--manifest-file", metavar="PATH", help="write the run manifest to this local file too [MANIFEST_FILE]")
    add("--log-format", choices=("human", "json"), help="human lines or one JSON object per line [LOG_FORMAT]")
    add(
        "--progress-interval",
        metavar="SECONDS",
        help="seconds between progress lines, 0 for none [PROGRESS_INTERVAL; default 5]",
    )
    add("--quiet", action="store_true", default=None, help="print only errors and the final summary [QUIET]")
    add("--verbose", action="store_true", default=None, help="also print why each file was skipped [VERBOSE]")
    add("--version", action="version", version=f"%(prog)s {__version__}")
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


def switch(flag_value: bool | None, variable: str) -> bool:
    return bool(flag_value) or os.environ.get(variable, "").strip().lower() in TRUE_WORDS


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


def parse_seconds(text: str, name: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise ConfigError(f"{name}={text!r} must be a number of seconds from 0 to 86400")
    return seconds


def parse_retry_mode() -> RetryMode:
    text = os.environ.get("AWS_RETRY_MODE", "").strip() or "standard"
    for mode in RETRY_MODES:
        if text == mode:
            return mode
    raise ConfigError(f"AWS_RETRY_MODE={text!r} is not one of {', '.join(RETRY_MODES)}")


def parse_shard(flag_value: str | None) -> Shard:
    if flag_value is not None:
        index_text, _, count_text = flag_value.partition("/")
    else:
        index_text = next((os.environ[name].strip() for name in SHARD_INDEX_VARIABLES if os.environ.get(name)), "")
        count_text = os.environ.get("SHARD_COUNT", "").strip()
        if not index_text and not count_text:
            return Shard()
        if not count_text:
            raise ConfigError("a shard index is set but SHARD_COUNT is not: set it to the number of workers")
    count = parse_whole_number(count_text, "shard count", 1, 1_000_000)
    return Shard(parse_whole_number(index_text or "0", "shard index", 0, count - 1), count)


def parse_log_format(flag_value: str | None) -> str:
    log_format = (setting(flag_value, "LOG_FORMAT", "human") or "human").lower()
    if log_format not in ("human", "json"):
        raise ConfigError(f"LOG_FORMAT={log_format!r} must be human or json")
    return log_format


def parse_verbosity(args: argparse.Namespace) -> int:
    quiet, verbose = switch(args.quiet, "QUIET"), switch(args.verbose, "VERBOSE")
    if quiet and verbose:
        raise ConfigError("--quiet and --verbose contradict each other: choose one")
    return QUIET if quiet else VERBOSE if verbose else NORMAL


def load_settings(argv: Sequence[str] | None) -> Settings:
    args = build_parser().parse_args(argv)
    load_env_file(args.env_file)
    bucket = setting(args.bucket, "BUCKET_NAME")
    if not bucket:
        raise ConfigError("no bucket name: set BUCKET_NAME (environment or .env) or pass --bucket")
    date_text = setting(args.date, "UPLOAD_DATE")
    manifest_file = setting(args.manifest_file, "MANIFEST_FILE")
    return Settings(
        source=Path(setting(args.source, "LOCAL_DIR", DEFAULT_SOURCE) or DEFAULT_SOURCE),
        bucket=bucket,
        prefix=normalize_prefix(setting(args.prefix, "RAW_ZONE_PATH", DEFAULT_PREFIX) or ""),
        date=parse_date(date_text) if date_text else today_in_local_zone(),
        endpoint_url=setting(args.endpoint_url, "AWS_ENDPOINT_URL"),
        concurrency=parse_whole_number(
            setting(args.concurrency, "UPLOAD_CONCURRENCY", str(default_concurrency())) or "", "concurrency", 1, 256
        ),
        dry_run=switch(args.dry_run, "DRY_RUN"),
        retry_mode=parse_retry_mode(),
        max_attempts=parse_whole_number(setting(None, "AWS_MAX_ATTEMPTS", "5") or "", "AWS_MAX_ATTEMPTS", 1, 50),
        shard=parse_shard(args.shard),
        manifest=switch(args.manifest, "MANIFEST"),
        manifest_file=Path(manifest_file) if manifest_file else None,
        log_format=parse_log_format(args.log_format),
        verbosity=parse_verbosity(args),
        progress_interval=parse_seconds(
            setting(args.progress_interval, "PROGRESS_INTERVAL", "5") or "", "progress interval"
        ),
        follow_links_outside=switch(args.follow_links_outside, "FOLLOW_LINKS_OUTSIDE"),
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


def new_session() -> botocore.session.Session:
    """botocore's session: the standard credential chain, AWS config files and AWS_CA_BUNDLE. boto3's wrapper
    around it is not used: importing boto3 also loads s3transfer, 0.15 s of every run for nothing called here."""
    session = botocore.session.Session()
    # Listings only need keys, sizes and ETags; parsing every LastModified with dateutil cost 0.5 ms an object.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


def make_s3_client(settings: Settings, session: botocore.session.Session, region: str | None = None) -> S3Client:
    """The one place a client is made: retries, timeouts, a pool for every thread."""
    config = Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        max_pool_connections=2 * settings.concurrency + 2,
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra=f"upload_s3/{__version__}",
        signature_version="s3v4",  # explicit, as PutSigner signs the SigV4 way this client does
    )
    client = session.create_client("s3", endpoint_url=settings.endpoint_url, region_name=region, config=config)
    return cast("S3Client", client)


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """A CSV file as discovery saw it: `path` as found under the source folder (what messages and manifests name),
    `real_path` with every link resolved (what is opened), and the identity and state that opening must find."""

    path: Path
    real_path: str
    size: int
    mtime_ns: int
    device: int
    inode: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Problem:
    """Something found while walking that cannot be uploaded; `fails_run` makes the exit code 1."""

    path: Path
    reason: str
    fails_run: bool = True


LINK_OPT_IN = "set --follow-links-outside or FOLLOW_LINKS_OUTSIDE=true to follow such links"


def is_csv_name(name: str) -> bool:
    return name.lower().endswith(".csv")


def is_inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


def inspect_csv_entry(entry: os.DirEntry[str], real_path: str) -> SourceFile | Problem:
    path = Path(entry.path)
    try:
        info = entry.stat(follow_symlinks=True)
    except FileNotFoundError:
        return Problem(path, "broken symbolic link: its target does not exist")
    except OSError as error:
        return Problem(path, f"cannot read file information ({error.strerror})")
    if not stat.S_ISREG(info.st_mode):
        return Problem(path, "not a regular file (FIFO, socket or device): only regular files are uploaded")
    return SourceFile(path, real_path, info.st_size, info.st_mtime_ns, info.st_dev, info.st_ino)


def is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:  # a link to itself, or a link in a folder that can be listed but not entered
        return False  # then inspect_csv_entry names the problem, if it is a CSV


def sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda entry: entry.name)


def link_leaving(entry: os.DirEntry[str], real_path: str, is_dir: bool) -> Problem:
    if is_dir:
        reason = f"symbolic link to the folder {real_path}, outside the source folder: its files were not uploaded"
    else:
        reason = f"symbolic link to {real_path}, outside the source folder: not opened"
    return Problem(Path(entry.path), f"{reason}; {LINK_OPT_IN}")


def walk_csv_files(root: Path, follow_links_outside: bool = False) -> Iterator[SourceFile | Problem]:
    """CSV files below root in a stable order, hidden names ignored. Symbolic links are followed while their
    resolved target stays inside root (anywhere with follow_links_outside); each folder is walked once."""
    real_root = os.path.realpath(root)
    visited: set[tuple[int, int]] = set()
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            real_folder = os.path.realpath(folder)
            identity = os.stat(real_folder)
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
            linked = entry.is_symlink()
            real_path = os.path.realpath(entry.path) if linked else os.path.join(real_folder, entry.name)
            is_dir = is_folder(entry)
            if linked and not follow_links_outside and not is_inside(real_path, real_root):
                if is_dir or is_csv_name(entry.name):
                    yield link_leaving(entry, real_path, is_dir)
            elif is_dir:
                subfolders.append(Path(entry.path))
            elif is_csv_name(entry.name):
                yield inspect_csv_entry(entry, real_path)
        folders.extend(reversed(subfolders))


@dataclass(frozen=True)
class Inventory:
    """What this shard will handle: file-name counts (for key collisions), files and bytes (for progress)."""

    names: dict[str, int]
    files: int
    bytes: int


def take_inventory(root: Path, shard: Shard, follow_links_outside: bool = False) -> Inventory:
    names: dict[str, int] = {}
    files = size = 0
    for item in walk_csv_files(root, follow_links_outside):
        if isinstance(item, SourceFile) and shard.owns(item.name):
            names[item.name] = names.get(item.name, 0) + 1
            files += 1
            size += item.size
    return Inventory(names, files, size)


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


@functools.cache  # formatting the date cost more than the rest of planning a file
def date_folder(prefix: str, category: str, date: dt.date) -> str:
    parts = [prefix, category, f"{date:%Y}", f"{date:%m}", f"{date:%d}"]
    return "/".join(part for part in parts if part) + "/"


def object_key(prefix: str, date: dt.date, file_name: str) -> str:
    return date_folder(prefix, category_for(file_name), date) + file_name


def manifest_key(settings: Settings, run_id: str) -> str:
    return date_folder(settings.prefix, "_manifests", settings.date) + f"{run_id}.json"


def key_problem(key: str) -> str | None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "file name is not valid UTF-8, which S3 keys require: rename the file"
    if size > MAX_KEY_BYTES:
        return f"key would be {size} bytes, S3 allows {MAX_KEY_BYTES}: shorten the file name or the prefix"
    return None


def plan_jobs(settings: Settings, names: dict[str, int], remote: dict[str, RemoteObject]) -> Iterator[Job | Problem]:
    """One Job per uploadable file of this shard; a Problem for anything that cannot go (collisions too)."""
    for item in walk_csv_files(settings.source, settings.follow_links_outside):
        if not settings.shard.owns(item.path.name):
            continue
        if isinstance(item, Problem):
            yield item
            continue
        key = object_key(settings.prefix, settings.date, item.name)
        problem = key_problem(key)
        if problem is None and names.get(item.name, 1) > 1:
            problem = f"{names[item.name]} files named {item.name!r} map to the same key {key}: rename all but one"
        yield Problem(item.path, problem) if problem else Job(item, key, remote.get(key))


def list_remote_objects(client: S3Client, bucket: str, folder: str) -> dict[str, RemoteObject]:
    found: dict[str, RemoteObject] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for item in page.get("Contents", []):
            found[item["Key"]] = RemoteObject(item["Size"], item["ETag"].strip('"'))
    return found


def today_folders(settings: Settings) -> list[str]:
    return [date_folder(settings.prefix, category, settings.date) for category in ("Movies", "Series")]


def bucket_region(client: S3Client, bucket: str) -> str | None:
    """The bucket's region as AWS reports it. botocore's own calls follow a wrong region by redirect, but the PUTs
    PutSigner signs for the client's region would be refused, so the client must be made for the right one."""
    try:
        headers = client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    except ClientError as error:  # a 301 or 403 still names the region
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return headers.get("x-amz-bucket-region")


def check_write_access(client: S3Client, settings: Settings) -> None:
    # Starting and aborting a multipart upload proves the right to write without leaving anything behind.
    probe_key = date_folder(settings.prefix, "Movies", settings.date) + ".upload_s3-write-check"
    upload = client.create_multipart_upload(Bucket=settings.bucket, Key=probe_key)
    client.abort_multipart_upload(Bucket=settings.bucket, Key=probe_key, UploadId=upload["UploadId"])


def part_size_for(size: int) -> int:
    """Fixed by the file size alone, so a re-run can recompute the multipart ETag."""
    needed = -(-size // MAX_PARTS)
    return max(MIN_PART_SIZE, -(-needed // MIB) * MIB)


def multipart_etag(part_digests: list[bytes]) -> str:
    return f"{hashlib.md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"


def is_same_content(remote: RemoteObject | None, size: int, etag: str) -> bool:
    return remote is not None and remote.size == size and remote.etag == etag


# ---------------------------------------------------------------------------------------------
# Transfer
# ---------------------------------------------------------------------------------------------


class FileChanged(Exception):
    """The file changed, vanished or was replaced while it was being read or uploaded."""


class Interrupted(Exception):
    """A stop was requested (SIGINT/SIGTERM) before the file finished."""


class ContentStats:
    """SHA-256, header line, delimiter and data rows of a CSV, fed chunk by chunk as it is read for upload."""

    HEADER_LIMIT = 64 * 1024
    DELIMITERS = ("|", ",", ";", "\t")

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.newlines = 0
        self.last_byte = b""
        self.header = bytearray()
        self.header_done = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.sha256.update(chunk)
        self.newlines += chunk.count(b"\n")
        self.last_byte = chunk[-1:]
        if not self.header_done:
            end = chunk.find(b"\n")
            self.header += chunk if end < 0 else chunk[:end]
            self.header_done = end >= 0 or len(self.header) >= self.HEADER_LIMIT
            del self.header[self.HEADER_LIMIT :]

    def summary(self) -> dict[str, Any]:
        lines = self.newlines + (1 if self.last_byte not in (b"", b"\n") else 0)
        header = bytes(self.header).rstrip(b"\r").decode("utf-8", "replace").lstrip("\ufeff")
        counts = {delimiter: header.count(delimiter) for delimiter in self.DELIMITERS}
        delimiter = max(counts, key=lambda candidate: counts[candidate])
        return {
            "sha256": self.sha256.hexdigest(),
            "header": header if lines else None,
            "delimiter": delimiter if counts[delimiter] else None,
            "rows": max(lines - 1, 0),
        }


def feed(stats: ContentStats | None, chunk: bytes) -> None:
    if stats is not None:
        stats.feed(chunk)


@dataclass
class Outcome:
    path: Path
    status: str  # "uploaded", "skipped", "failed", "planned"
    key: str | None = None
    size: int | None = None
    reason: str = ""
    stats: dict[str, Any] | None = None

    @property
    def bytes_sent(self) -> int:
        return (self.size or 0) if self.status == "uploaded" else 0


def file_chunks(handle: BinaryIO, size: int, chunk_size: int, whole_file: bool = True) -> Iterator[bytes]:
    """The next `size` bytes in chunks; with whole_file, also check that nothing follows them."""
    remaining = size
    while remaining > 0:
        chunk = handle.read(min(chunk_size, remaining))
        if not chunk:
            raise FileChanged("became shorter while it was read")
        remaining -= len(chunk)
        yield chunk
    if whole_file and handle.read(1):
        raise FileChanged("grew while it was read")


@dataclass(frozen=True)
class FilePart:
    number: int
    offset: int
    length: int
    md5: bytes


def file_parts(handle: BinaryIO, size: int, stats: ContentStats | None) -> Iterator[FilePart]:
    """The multipart parts of a file with their MD5s, read in 1 MiB blocks (stats see every byte once)."""
    part_size = part_size_for(size)
    for number, offset in enumerate(range(0, size, part_size), start=1):
        length = min(part_size, size - offset)
        digest = hashlib.md5()
        for block in file_chunks(handle, length, MIB, whole_file=False):
            digest.update(block)
            feed(stats, block)
        yield FilePart(number, offset, length, digest.digest())
    if handle.read(1):
        raise FileChanged("grew while it was read")


class FileSlice:
    """One part of a file as a stream, read again (from the page cache) when sent, so it is never held whole."""

    def __init__(self, source: SourceFile, offset: int, length: int) -> None:
        self.handle = open_regular_file(source)
        self.offset = offset
        self.length = length
        self.position = 0
        self.rewind()

    def __len__(self) -> int:
        return self.length

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.handle.close()

    def rewind(self) -> None:
        self.seek(0)

    def seek(self, position: int, whence: int = 0) -> int:
        if whence != 0:
            raise OSError("FileSlice only seeks from its start")
        self.handle.seek(self.offset + position)
        self.position = position
        return position

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        wanted = self.length - self.position if size < 0 else min(size, self.length - self.position)
        try:
            data = self.handle.read(wanted)
        except OSError as error:  # not to be mistaken for a network error by the sender
            raise FileChanged(f"could not be read ({error.strerror})") from error
        if len(data) < wanted:
            raise FileChanged("became shorter while it was sent")
        self.position += len(data)
        return data


def base64_of(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def open_regular_file(source: SourceFile) -> BinaryIO:
    """Open the file discovery checked, and no other: its resolved path, refusing a final link, and only if it is
    still the same file (device and inode) in the same state. O_NONBLOCK: a FIFO swapped in must not block open()."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(source.real_path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise FileChanged("was replaced by a symbolic link since it was found") from None
        raise
    try:
        check_same_file(source, os.fstat(descriptor))
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def check_same_file(source: SourceFile, info: os.stat_result) -> None:
    if (info.st_dev, info.st_ino) != (source.device, source.inode):
        raise FileChanged("was replaced by another file since it was found")
    if not stat.S_ISREG(info.st_mode):
        raise FileChanged("is no longer a regular file")
    if (info.st_size, info.st_mtime_ns) != (source.size, source.mtime_ns):
        raise FileChanged("changed since it was found")


def read_whole(source: SourceFile) -> bytes:
    with open_regular_file(source) as handle:
        return b"".join(file_chunks(handle, source.size, source.size or 1))


def ensure_unchanged(source: SourceFile) -> None:
    try:
        info = os.stat(source.real_path, follow_symlinks=False)
    except FileNotFoundError:
        raise FileChanged("disappeared during the upload") from None
    if (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) != (
        source.device,
        source.inode,
        source.size,
        source.mtime_ns,
    ):
        raise FileChanged("changed during the upload")


class BufferBudget:
    """Caps the bytes of small files held in memory by all threads together, so memory stays flat."""

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


UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Bodies of this size and more are sent with Expect: 100-continue, so a refusal (403, bucket policy, expired token)
# is read before the body goes out. Never on smaller ones: the extra round trip per file would slow a far link.
EXPECT_CONTINUE_FROM = MIB
MAX_ANSWER_BYTES = MIB
POOL_CLASSES = {"http": AWSHTTPConnectionPool, "https": AWSHTTPSConnectionPool}  # urllib3 pools with 100-continue
CERTIFICATE_ERRORS = (ssl.SSLCertVerificationError, URLLib3CertificateError)


def uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


class FixedBody:
    """A body already read, in the form botocore's AWSResponse streams its raw body."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data

    def stream(self) -> Iterator[bytes]:
        return iter((self.data,))


def botocore_put_request(client: S3Client, bucket: str) -> AWSPreparedRequest:
    """The PutObject request botocore would send, built and signed but not sent: its URL and credential scope say
    where botocore's endpoint rules send this bucket's objects and for which region it signs them."""
    built: list[AWSPreparedRequest] = []

    def keep_instead_of_sending(request: AWSPreparedRequest, **_: object) -> Any:  # an answer stops the sending
        built.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), FixedBody())

    event = "before-send.s3.PutObject"
    client.meta.events.register_first(event, keep_instead_of_sending)
    try:
        client.put_object(Bucket=bucket, Key="k", Body=b"")
    finally:
        client.meta.events.unregister(event, keep_instead_of_sending)
    return built[0]


class PutSigner:
    """SigV4 headers for PUTs into one bucket, with an unsigned payload: Content-MD5 is signed, and S3 checks it.

    botocore spends about 0.4 ms signing a request (it derives the key again and runs its event hooks each time);
    this caches the day's signing key and takes about 15 us. Where to send and what scope to sign for come from one
    request botocore builds and signs (and does not send), so the endpoint, the addressing style (path or virtual
    host) and the region are botocore's own choices; credentials are read on every request, so refreshed ones
    (roles, IRSA) are used.
    """

    def __init__(self, client: S3Client, bucket: str, credentials: Credentials) -> None:
        request = botocore_put_request(client, bucket)
        url = urlsplit(request.url)
        self.url = f"{url.scheme}://{url.netloc}"
        port = f":{DEFAULT_PORTS.get(url.scheme)}"
        self.host = url.netloc[: -len(port)] if url.netloc.endswith(port) else url.netloc
        self.base_path = url.path[:-1]  # "/bucket/" in path style, "/" with the bucket in the host name
        authorization = request.headers["Authorization"]
        authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
        _, _, region, service, _ = credential.rsplit("/", 4)
        self.scope = f"{region}/{service}/aws4_request"
        self.credentials = credentials
        self.signing_keys: dict[tuple[str, str], bytes] = {}

    def target(self, key: str, query: dict[str, str]) -> str:
        """The request target: the key's path, URI-encoded as SigV4 wants it for S3, and the sorted query."""
        path = self.base_path + quote(key, safe="/~")
        pairs = sorted((uri_encode(name), uri_encode(value)) for name, value in query.items())
        return path + ("?" + "&".join(f"{name}={value}" for name, value in pairs) if pairs else "")

    def signing_key(self, secret: str, day: str) -> bytes:
        cached = self.signing_keys.get((secret, day))
        if cached is None:
            cached = hmac_sha256(("AWS4" + secret).encode("utf-8"), day)
            for part in self.scope.split("/"):
                cached = hmac_sha256(cached, part)
            self.signing_keys[(secret, day)] = cached
        return cached

    def sign(self, target: str, headers: dict[str, str]) -> dict[str, str]:
        """headers (lower-case names) plus host, date, payload hash and Authorization, all of them signed."""
        frozen = self.credentials.get_frozen_credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = {**headers, "host": self.host, "x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-date": amz_date}
        if frozen.token:
            signed["x-amz-security-token"] = frozen.token
        names = sorted(signed)
        path, _, query = target.partition("?")
        canonical = "\n".join(
            ["PUT", path, query, *(f"{name}:{signed[name].strip()}" for name in names), "", ";".join(names)]
        )
        scope = f"{amz_date[:8]}/{self.scope}"
        canonical_hash = hashlib.sha256(f"{canonical}\n{UNSIGNED_PAYLOAD}".encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{canonical_hash}"
        signing_key = self.signing_key(frozen.secret_key or "", amz_date[:8])
        signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256)
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature.hexdigest()}"
        )
        return signed


def causes(error: BaseException) -> Iterator[BaseException]:
    """error and what it wraps: botocore's `error` argument, urllib3's wrapped exception, Python's chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = current.kwargs.get("error") if isinstance(current, BotoCoreError) else None
        if wrapped is None and current.args and isinstance(current.args[0], BaseException):
            wrapped = current.args[0]
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__ or current.__context__


def is_certificate_failure(error: BaseException) -> bool:
    """A certificate that does not verify: permanent, unlike a TLS connection closed mid-send, which is retried."""
    return any(isinstance(cause, CERTIFICATE_ERRORS) for cause in causes(error))


def as_botocore_error(error: Exception, url: str, proxy_url: str | None) -> BotoCoreError:
    """urllib3's exception as botocore's own HTTP session raises it, so retries and messages treat both alike."""
    if isinstance(error, URLLib3SSLError):
        return SSLError(endpoint_url=url, error=error)
    if isinstance(error, (NewConnectionError, socket.gaierror)):
        return EndpointConnectionError(endpoint_url=url, error=error)
    if isinstance(error, URLLib3ProxyError):
        return ProxyConnectionError(proxy_url=mask_proxy_url(proxy_url or ""), error=error)
    if isinstance(error, URLLib3ConnectTimeoutError):
        return ConnectTimeoutError(endpoint_url=url, error=error)
    if isinstance(error, URLLib3ReadTimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=error)
    if isinstance(error, ProtocolError):
        return ConnectionClosedError(error=error, endpoint_url=url)
    return HTTPClientError(error=error)


class Answer(Protocol):
    """What read_answer uses of urllib3's response (HTTPResponse in urllib3 1.26, BaseHTTPResponse in 2.x)."""

    def stream(self, amt: int | None = ..., decode_content: bool | None = ...) -> Iterator[bytes]: ...

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


def read_answer(answer: Answer) -> bytes:
    """The body of an answer to a PUT, read in blocks: a few hundred bytes from S3, so a body past MAX_ANSWER_BYTES
    (or a huge Content-Length) is refused rather than buffered. The connection goes back to the pool only if
    the whole answer was read."""
    data = bytearray()
    try:
        for block in answer.stream(64 * 1024):
            data += block
            if len(data) > MAX_ANSWER_BYTES:
                raise ProtocolError(f"an answer of more than {MAX_ANSWER_BYTES} bytes to a PUT")
    except BaseException:
        answer.close()
        raise
    finally:
        answer.release_conn()
    return bytes(data)


class PutSender:
    """PUTs bodies (whole files or parts) with Content-MD5, signed by PutSigner, over urllib3, with botocore's retries.

    The pools are botocore's own urllib3 pool classes (they implement Expect: 100-continue) with botocore's TLS
    context, CA bundle, timeouts and proxy settings. Each failed attempt is put to the retry handler of the client
    (its needs-retry event), so PUTs follow AWS_RETRY_MODE, AWS_MAX_ATTEMPTS and the retry quota like every other
    request. botocore's put_object costs about 2 ms of CPU a request; this, about 0.6 ms.
    """

    def __init__(
        self, client: S3Client, session: botocore.session.Session, bucket: str, pool_size: int, stop: threading.Event
    ) -> None:
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        self.signer = PutSigner(client, bucket, credentials)
        self.client = client
        self.stop = stop
        self.parser = session.get_component("response_parser_factory").create_parser("rest-xml")
        self.user_agent = f"upload_s3/{__version__} Python/{platform.python_version()} botocore/{botocore.__version__}"
        url = self.signer.url
        proxies = ProxyConfiguration(proxies=get_environ_proxies(url))
        self.proxy_url = proxies.proxy_url_for(url)
        options: dict[str, Any] = {"maxsize": pool_size, "timeout": self.timeout(client)}
        if BUFFER_SIZE:  # botocore's block size for sending bodies, where urllib3 (2.x) takes one
            options["blocksize"] = BUFFER_SIZE
        if url.startswith("https:"):
            ca_bundle = session.get_config_variable("ca_bundle") or get_cert_path(True)
            options.update(ssl_context=create_urllib3_context(), cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle)
        if self.proxy_url:
            headers = proxies.proxy_headers_for(self.proxy_url)
            manager: PoolManager = proxy_from_url(self.proxy_url, proxy_headers=headers, **options)
        else:
            manager = PoolManager(**options)
        manager.pool_classes_by_scheme = POOL_CLASSES
        self.manager = manager
        self.pool = manager.connection_from_url(url)
        # An http endpoint behind a proxy takes the absolute URL; https goes through a CONNECT tunnel.
        self.target_prefix = url if self.proxy_url and url.startswith("http:") else ""

    @staticmethod
    def timeout(client: S3Client) -> Timeout:
        config: Any = client.meta.config  # the stubs do not declare the timeouts
        return Timeout(connect=config.connect_timeout, read=config.read_timeout)

    def put(
        self, key: str, body: bytes | FileSlice, md5_digest: bytes, query: dict[str, str], content_type: str = ""
    ) -> str:
        """Send body; returns the ETag. Raises ClientError or botocore's connection errors as the client does."""
        operation = self.client.meta.service_model.operation_model("UploadPart" if query else "PutObject")
        headers = {"content-md5": base64_of(md5_digest), "content-length": str(len(body))}
        if content_type:
            headers["content-type"] = content_type
        target = self.signer.target(key, query)
        retry_context: dict[str, Any] = {}  # the retry quota's note of what this request has taken
        attempt = 1
        while True:
            response, error = self.attempt(target, body, headers)
            if response is not None and response.status_code < 300:
                self.after_call(operation, response, retry_context)
                return str(response.headers.get("ETag", ""))
            parsed = self.parse_error(response, operation) if response is not None else None
            if error is not None and is_certificate_failure(error):
                raise error
            delay = self.retry_delay(operation, attempt, response, parsed, error, retry_context)
            if delay is None:
                raise error or ClientError(parsed, operation.name)  # type: ignore[arg-type]
            if self.stop.wait(delay):
                raise Interrupted("not sent: the run was interrupted while a failed request waited to be retried")
            attempt += 1

    def attempt(
        self, target: str, body: bytes | FileSlice, headers: dict[str, str]
    ) -> tuple[AWSResponse | None, BotoCoreError | None]:
        signed: dict[str, Any] = {**self.signer.sign(target, headers), "User-Agent": self.user_agent}
        payload: Any = body  # bytes, or anything with read(), which http.client sends block by block
        if len(body) >= EXPECT_CONTINUE_FROM:
            signed["Expect"] = b"100-continue"  # botocore's pools look for exactly this name and value
            payload = io.BytesIO(body) if isinstance(body, bytes) else body  # bytes would go out with the head
        if isinstance(body, FileSlice):
            body.rewind()
        try:
            answer = self.pool.urlopen(
                "PUT",
                self.target_prefix + target,
                body=payload,
                headers=signed,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                enforce_content_length=True,  # a cut answer is an error (urllib3 1.26 would accept it)
            )
            content = read_answer(answer)
        except FileChanged:
            raise
        except Exception as error:  # noqa: BLE001 - urllib3's and the socket's errors, translated as botocore does
            return None, as_botocore_error(error, self.signer.url, self.proxy_url)
        headers_read = cast("HTTPHeaders", answer.headers)  # botocore's own HTTP session passes urllib3's headers too
        return AWSResponse(self.signer.url + target, answer.status, headers_read, FixedBody(content)), None

    def parse_error(self, response: AWSResponse, operation: OperationModel) -> dict[str, Any]:
        answer = {"status_code": response.status_code, "headers": response.headers, "body": response.content}
        parsed: dict[str, Any] = self.parser.parse(answer, operation.output_shape)
        return parsed

    def retry_delay(
        self,
        operation: OperationModel,
        attempt: int,
        response: AWSResponse | None,
        parsed: dict[str, Any] | None,
        error: BotoCoreError | None,
        retry_context: dict[str, Any],
    ) -> float | None:
        """The client's own retry handler decides, as for a request botocore sent: seconds to wait, or None."""
        responses = self.client.meta.events.emit(
            f"needs-retry.s3.{operation.name}",
            response=(response, parsed) if response is not None else None,
            endpoint=None,
            operation=operation,
            attempts=attempt,
            caught_exception=error,
            request_dict={"context": retry_context},
        )
        delay = first_non_none_response(responses)
        return float(delay) if delay is not None else None

    def after_call(self, operation: OperationModel, response: AWSResponse, retry_context: dict[str, Any]) -> None:
        """Tell the client's handlers a request succeeded, as botocore does: the retry quota gets its share back."""
        self.client.meta.events.emit(
            f"after-call.s3.{operation.name}", http_response=response, parsed={}, model=operation, context=retry_context
        )

    def close(self) -> None:
        self.manager.clear()


class Transfer:
    """Uploads jobs with one shared client; small files in one PUT, large ones in parallel parts."""

    def __init__(
        self, destination: Destination, settings: Settings, stop: threading.Event, on_bytes: Callable[[int], None]
    ) -> None:
        self.client = destination.client
        self.sender = destination.sender
        self.settings = settings
        self.stop = stop
        self.on_bytes = on_bytes
        self.budget = BufferBudget(BUFFER_BUDGET)
        parts_in_flight = min(settings.concurrency, PARTS_IN_FLIGHT)
        self.part_slots = threading.Semaphore(parts_in_flight)
        self.part_pool = cf.ThreadPoolExecutor(parts_in_flight, thread_name_prefix="part")
        self.lock = threading.Lock()
        self.open_uploads: dict[str, str] = {}  # key -> multipart upload id, until completed or aborted

    def close(self, reporter: Reporter) -> None:
        """Shut the part pool; after a signal, abort the multipart uploads still open, in bounded time."""
        stopped = self.stop.is_set()
        self.part_pool.shutdown(wait=not stopped, cancel_futures=True)
        with self.lock:
            unfinished = dict(self.open_uploads)
        aborts = [threading.Thread(target=self.abort_quietly, args=item, daemon=True) for item in unfinished.items()]
        for thread in aborts:
            thread.start()
        deadline = time.monotonic() + ABORT_GRACE_SECONDS
        for thread in aborts:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.sender.close()
        with self.lock:
            left_open = dict(self.open_uploads)
        for key, upload_id in left_open.items():
            reporter.emit(
                Event(
                    "warning",
                    f"Aviso: multipart upload {upload_id} of {printable(key)} could not be "
                    "aborted; a lifecycle rule for incomplete uploads will remove it",
                    "warning",
                    key=key,
                )
            )

    def upload(self, job: Job, announce: Callable[[Job], None]) -> Outcome:
        """Upload one job, or skip it when unchanged; every error becomes a failed Outcome."""
        stats = ContentStats() if self.settings.records_content else None
        try:
            if self.stop.is_set():
                raise Interrupted()
            if job.source.size < MULTIPART_THRESHOLD:
                status = self.upload_small_file(job, announce, stats)
            else:
                status = self.upload_large_file(job, announce, stats)
            ensure_unchanged(job.source)
            return Outcome(job.source.path, status, job.key, job.source.size, stats=stats.summary() if stats else None)
        except Exception as error:  # noqa: BLE001 - one bad file must never stop the others
            return Outcome(job.source.path, "failed", job.key, job.source.size, explain(error, self.settings))

    def skip_if_unchanged(self, job: Job) -> Outcome | None:
        """The skip check of a small file the bucket holds at the same size, in the calling thread: on a re-run most
        files end here, without the hand-off to a worker thread and back, which costs more than reading and hashing
        them. None when the file must go to a worker (changed, or unreadable: the worker reports why)."""
        if job.remote is None or job.remote.size != job.source.size or job.source.size >= MULTIPART_THRESHOLD:
            return None
        stats = ContentStats() if self.settings.records_content else None
        try:
            data = read_whole(job.source)
            if not is_same_content(job.remote, job.source.size, hashlib.md5(data).hexdigest()):
                return None
            ensure_unchanged(job.source)
        except (OSError, FileChanged):
            return None
        feed(stats, data)
        self.on_bytes(job.source.size)
        return Outcome(job.source.path, "skipped", job.key, job.source.size, stats=stats.summary() if stats else None)

    def upload_small_file(self, job: Job, announce: Callable[[Job], None], stats: ContentStats | None) -> str:
        self.budget.acquire(job.source.size)
        try:
            data = read_whole(job.source)
            feed(stats, data)
            digest = hashlib.md5(data)
            if is_same_content(job.remote, job.source.size, digest.hexdigest()):
                self.on_bytes(job.source.size)
                return "skipped"
            announce(job)
            self.sender.put(job.key, data, digest.digest(), {}, CONTENT_TYPE)
            self.on_bytes(job.source.size)
            return "uploaded"
        finally:
            self.budget.release(job.source.size)

    def upload_large_file(self, job: Job, announce: Callable[[Job], None], stats: ContentStats | None) -> str:
        if job.remote is not None and job.remote.size == job.source.size:
            if self.matches_remote(job, stats):
                self.on_bytes(job.source.size)
                return "skipped"
            stats = None  # counted during the comparison; if the file changes after it, the upload fails
        announce(job)
        self.put_multipart(job, stats)
        return "uploaded"

    def matches_remote(self, job: Job, stats: ContentStats | None) -> bool:
        with open_regular_file(job.source) as handle:
            digests = [part.md5 for part in file_parts(handle, job.source.size, stats)]
        return is_same_content(job.remote, job.source.size, multipart_etag(digests))

    def put_multipart(self, job: Job, stats: ContentStats | None) -> None:
        upload_id = self.client.create_multipart_upload(
            Bucket=self.settings.bucket, Key=job.key, ContentType=CONTENT_TYPE
        )["UploadId"]
        with self.lock:
            self.open_uploads[job.key] = upload_id
        try:
            parts, digests = self.send_parts(job, upload_id, stats)
            ensure_unchanged(job.source)
            self.complete(job, upload_id, parts, multipart_etag(digests))
            with self.lock:
                del self.open_uploads[job.key]
        except BaseException:
            self.abort_quietly(job.key, upload_id)
            raise

    def complete(self, job: Job, upload_id: str, parts: list[CompletedPartTypeDef], etag: str) -> None:
        """CompleteMultipartUpload, idempotent: if a lost answer made botocore retry it and the retry finds the
        upload gone, the object in the bucket is checked (listing, size and the locally computed ETag)."""
        try:
            self.client.complete_multipart_upload(
                Bucket=self.settings.bucket, Key=job.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in COMPLETED_ALREADY_CODES:
                raise
            listed = list_remote_objects(self.client, self.settings.bucket, job.key).get(job.key)
            if not is_same_content(listed, job.source.size, etag):
                raise

    def send_parts(
        self, job: Job, upload_id: str, stats: ContentStats | None
    ) -> tuple[list[CompletedPartTypeDef], list[bytes]]:
        """Hash each part as the file is read once, then stream it from the file: memory stays flat at any size.
        Returns the parts as CompleteMultipartUpload lists them, and their MD5 digests."""
        futures: list[cf.Future[CompletedPartTypeDef]] = []
        digests: list[bytes] = []
        try:
            with open_regular_file(job.source) as handle:
                for part in file_parts(handle, job.source.size, stats):
                    if self.stop.is_set():
                        raise Interrupted("not sent: the run was interrupted during the upload, which was aborted")
                    self.part_slots.acquire()
                    futures.append(self.part_pool.submit(self.send_part, upload_id, job, part))
                    digests.append(part.md5)
            return [future.result() for future in futures], digests
        finally:
            cf.wait(futures)

    def send_part(self, upload_id: str, job: Job, part: FilePart) -> CompletedPartTypeDef:
        query = {"partNumber": str(part.number), "uploadId": upload_id}
        try:
            with FileSlice(job.source, part.offset, part.length) as body:
                etag = self.sender.put(job.key, body, part.md5, query)
        finally:
            self.part_slots.release()
        self.on_bytes(part.length)
        return {"PartNumber": part.number, "ETag": etag}

    def abort_quietly(self, key: str, upload_id: str) -> None:
        # The file is reported as failed either way; if the abort fails too, a lifecycle rule cleans up.
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(Bucket=self.settings.bucket, Key=key, UploadId=upload_id)
            with self.lock:
                self.open_uploads.pop(key, None)


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
    if text.isprintable():  # the common case; lone surrogates and control characters are not printable
        return text
    try:  # undecodable bytes of a file name come back as the bytes they were: \xff, not \udcff
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def redact(text: str) -> str:
    """Mask secrets: known credential values, and the query of any URL (presigned URLs carry credentials)."""
    text = URL_QUERY.sub(r"\1?...", text)
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
    if code in (
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "AuthorizationQueryParametersError",
        "IllegalLocationConstraintException",
    ):
        return f"bucket {settings.bucket!r} is in another region: set AWS_REGION to the bucket's region"
    message = error.response.get("Error", {}).get("Message", "")
    return f"S3 answered {code}: {message}".rstrip(": ")


def explain(error: BaseException, settings: Settings) -> str:
    """One line naming the cause and, where there is one, the fix; never a secret."""
    endpoint = settings.endpoint_url or "the S3 endpoint"
    if isinstance(error, ClientError):
        text = explain_client_error(error, settings)
    elif isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        text = "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use a role"
    elif isinstance(error, ProfileNotFound):
        text = f"{error}: fix AWS_PROFILE or ~/.aws/config"
    elif is_certificate_failure(error):
        text = "TLS certificate not trusted: for a private CA set AWS_CA_BUNDLE to its PEM file"
    elif isinstance(error, ProxyConnectionError):
        text = f"{error}: check HTTPS_PROXY / HTTP_PROXY and NO_PROXY"
    elif isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        text = f"cannot reach {endpoint}: check AWS_ENDPOINT_URL / --endpoint-url and the network"
    elif isinstance(error, ReadTimeoutError):
        text = "the server stopped answering (read timeout), so the upload is not confirmed: run again to check"
    elif isinstance(error, (HTTPClientError, BotoConnectionError)):
        text = (
            f"the connection to {endpoint} failed ({type(error).__name__}) on every attempt, so the upload is not "
            "confirmed: check the network and run again"
        )
    elif isinstance(error, FileChanged):
        text = f"file {error}; it was not reported as sent: run again once it is stable"
    elif isinstance(error, Interrupted):
        text = str(error) or NOT_STARTED
    elif isinstance(error, OSError):
        text = f"cannot read the file ({error.strerror or error}): fix its permissions or remove it"
    else:
        text = f"{type(error).__name__}: {error}"
    return printable(redact(text))


def human_bytes(amount: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Tally:
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    planned: int = 0
    bytes_sent: int = 0
    files_done: int = 0
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)


class ManifestWriter:
    """The run's lineage record; file entries go to a temporary file so memory does not grow with their number."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.started_at = utc_now()
        try:
            self.entries = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 - closed by save()
        except OSError as error:
            raise ConfigError(
                f"no writable temporary folder for the manifest ({error.strerror or error}): set TMPDIR, "
                "or give the container one (docker run --tmpfs /tmp)"
            ) from None
        self.lock = threading.Lock()

    def add(self, outcome: Outcome) -> None:
        stats = outcome.stats or {"sha256": None, "header": None, "delimiter": None, "rows": None}
        entry = {
            "path": os.path.relpath(outcome.path, self.settings.source),
            "key": outcome.key,
            "size": outcome.size,
            "status": outcome.status,
            "reason": outcome.reason or None,
            **stats,
        }
        with self.lock:
            self.entries.write(json.dumps(entry, ensure_ascii=True) + "\n")

    def run_record(self, tally: Tally) -> dict[str, Any]:
        settings = self.settings
        return {
            "manifest_version": 1,
            "run": {
                "id": self.run_id,
                "started_at": self.started_at.isoformat(timespec="seconds"),
                "ended_at": utc_now().isoformat(timespec="seconds"),
                "program": "upload_s3",
                "version": __version__,
                "source": str(settings.source),
                "bucket": settings.bucket,
                "prefix": settings.prefix,
                "date": settings.date.isoformat(),
                "shard": {"index": settings.shard.index, "count": settings.shard.count},
            },
            "summary": {
                "uploaded": tally.uploaded,
                "skipped": tally.skipped,
                "failed": tally.failed,
                "bytes_uploaded": tally.bytes_sent,
            },
        }

    def write(self, handle: TextIO, record: dict[str, Any]) -> None:
        head = json.dumps(record, ensure_ascii=True, indent=1)
        handle.write(head[: head.rindex("}")].rstrip() + ',\n "files": [')
        self.entries.seek(0)
        for number, line in enumerate(self.entries):
            handle.write(("\n  " if number == 0 else ",\n  ") + line.rstrip("\n"))
        handle.write("\n ]\n}\n")

    def save(self, tally: Tally, client: S3Client | None) -> list[str]:
        """Write the manifest where it was asked for (the same document everywhere); returns where it went."""
        record = self.run_record(tally)
        written = []
        if self.settings.manifest_file is not None:
            target = self.settings.manifest_file
            partial = target.with_name(target.name + ".partial")
            with partial.open("w", encoding="utf-8") as handle:
                self.write(handle, record)
            partial.replace(target)
            written.append(str(target))
        if self.settings.manifest and client is not None:
            key = manifest_key(self.settings, self.run_id)
            with tempfile.TemporaryFile(mode="w+b") as buffer:
                with open(buffer.fileno(), "w", encoding="utf-8", closefd=False) as text:
                    self.write(text, record)
                buffer.seek(0)
                client.put_object(Bucket=self.settings.bucket, Key=key, Body=buffer, ContentType="application/json")
            written.append(f"s3://{self.settings.bucket}/{key}")
        self.entries.close()
        return written


@dataclass(frozen=True)
class Event:
    """One thing worth telling: a human line, and the stable fields of its JSON form."""

    name: str
    text: str
    level: str = "info"
    path: Path | None = None
    key: str | None = None
    size: int | None = None
    status: str | None = None
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @staticmethod
    def about(outcome: Outcome, name: str, text: str, level: str = "info") -> Event:
        error = outcome.reason or None
        return Event(name, text, level, outcome.path, outcome.key, outcome.size, outcome.status, error)

    def as_json(self) -> str:
        record: dict[str, object] = {"time": utc_now().isoformat(timespec="milliseconds"), "level": self.level}
        record.update({"event": self.name, "file": str(self.path) if self.path else None, "key": self.key})
        record.update({"bytes": self.size, "status": self.status, "error": self.error, **self.extra})
        return json.dumps(record, ensure_ascii=True)


class Reporter:
    """Console lines of the challenge (in Portuguese) or JSON lines; flushed at once, safe across threads."""

    def __init__(self, settings: Settings | None = None, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tally = Tally()
        self.lock = threading.Lock()
        self.manifest: ManifestWriter | None = None
        self.total_files = 0
        self.total_bytes = 0
        self.progress_on_screen = False

    @property
    def as_json(self) -> bool:
        return self.settings is not None and self.settings.log_format == "json"

    @property
    def verbosity(self) -> int:
        return self.settings.verbosity if self.settings else NORMAL

    @property
    def dry_run(self) -> bool:
        return self.settings is not None and self.settings.dry_run

    def emit(self, event: Event) -> None:
        if self.verbosity == QUIET and event.level == "info" and event.name not in ("done", "summary"):
            return
        line = redact(event.as_json() if self.as_json else event.text)
        self.write_line(line, self.err if event.level in ("error", "warning") else self.out)

    def write_line(self, line: str, stream: TextIO) -> None:
        with self.lock:
            if self.progress_on_screen:
                self.out.write("\r\x1b[K")
                self.progress_on_screen = False
            print(line, file=stream, flush=True)

    def fatal(self, message: str) -> None:
        message = printable(message)
        self.emit(Event("fatal", f"upload_s3: error: {message}", "error", error=message))

    def url(self, key: str | None) -> str:
        assert self.settings is not None
        return printable(f"s3://{self.settings.bucket}/{key or ''}")

    def announce(self, job: Job) -> None:
        marker, status = ("[dry-run] ", "planned") if self.dry_run else ("", "started")
        text = f"{marker}Iniciando upload de {printable(str(job.source.path))} para {self.url(job.key)}"
        self.emit(Event("start", text, path=job.source.path, key=job.key, size=job.source.size, status=status))

    def problem(self, problem: Problem) -> None:
        reason = printable(problem.reason)
        if problem.fails_run:
            self.outcome(Outcome(problem.path, "failed", reason=reason))
        else:
            text = f"Aviso: {printable(str(problem.path))}: {reason}"
            self.emit(Event("warning", text, "warning", problem.path, error=reason))

    def outcome(self, outcome: Outcome) -> None:
        self.count(outcome)
        if self.manifest is not None:
            self.manifest.add(outcome)
        local = printable(str(outcome.path))
        if outcome.status == "uploaded":
            self.emit(Event.about(outcome, "uploaded", f"Arquivo enviado: {local} -> {self.url(outcome.key)}"))
        elif outcome.status == "skipped":
            why = " (same size and ETag as the object in the bucket)" if self.verbosity == VERBOSE else ""
            text = f"Arquivo sem alterações, ignorado: {local} = {self.url(outcome.key)}{why}"
            self.emit(Event.about(outcome, "skipped", text))
        elif outcome.status == "failed":
            self.emit(Event.about(outcome, "failed", f"Erro ao enviar {local}: {outcome.reason}", "error"))

    def count(self, outcome: Outcome) -> None:
        with self.lock:
            tally = self.tally
            setattr(tally, outcome.status, getattr(tally, outcome.status) + 1)  # statuses name Tally's counters
            tally.bytes_sent += outcome.bytes_sent
            tally.files_done += 1

    def expect(self, files: int, size: int) -> None:
        self.total_files, self.total_bytes = files, size

    def add_bytes(self, amount: int) -> None:
        with self.lock:
            self.tally.bytes_done += amount

    def progress(self) -> None:
        tally, elapsed = self.tally, max(time.monotonic() - self.tally.started, 1e-6)
        rate = tally.bytes_done / elapsed
        left = (self.total_bytes - tally.bytes_done) / rate if rate else None
        text = (
            f"Progresso: {tally.files_done}/{self.total_files} arquivos, {human_bytes(tally.bytes_done)} de "
            f"{human_bytes(self.total_bytes)}, {human_bytes(rate)}/s, "
            + (f"faltam ~{left:.0f} s" if left is not None else "calculando o tempo restante")
        )
        if not self.as_json and self.out.isatty():
            with self.lock:
                self.out.write("\r" + text + "\x1b[K")
                self.out.flush()
                self.progress_on_screen = True
            return
        numbers: dict[str, object] = {"files_done": tally.files_done, "files_total": self.total_files}
        numbers.update({"bytes_done": tally.bytes_done, "bytes_total": self.total_bytes})
        numbers.update({"bytes_per_second": round(rate), "seconds_left": left and round(left, 1)})
        self.emit(Event("progress", text, extra=numbers))

    def summary(self) -> None:
        tally = self.tally
        seconds = time.monotonic() - tally.started
        self.emit(Event("done", "Processo concluído!"))
        if self.dry_run:
            text = f"Resumo (dry-run, nada enviado): {tally.planned} a enviar, {tally.failed} com falha"
            self.emit(Event("summary", text, extra={"planned": tally.planned, "failed": tally.failed}))
            return
        text = (
            f"Resumo: {tally.uploaded} enviados, {tally.skipped} ignorados sem alterações, {tally.failed} com falha; "
            f"{tally.bytes_sent} bytes ({human_bytes(tally.bytes_sent)}) enviados em {seconds:.1f} s"
        )
        counts: dict[str, object] = {"uploaded": tally.uploaded, "skipped": tally.skipped, "failed": tally.failed}
        counts.update({"bytes_sent": tally.bytes_sent, "seconds": round(seconds, 3)})
        self.emit(Event("summary", text, extra=counts))


class ProgressTicker:
    """A progress line every few seconds while files are uploaded."""

    def __init__(self, reporter: Reporter, interval: float) -> None:
        self.reporter = reporter
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.tick, name="progress", daemon=True)

    def tick(self) -> None:
        while not self.stopped.wait(self.interval):
            self.reporter.progress()

    def __enter__(self) -> ProgressTicker:
        if self.interval > 0 and self.reporter.verbosity != QUIET:
            self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()


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
        if self.event.is_set():  # a second Ctrl-C: the user does not want to wait for the clean end
            os._exit(EXIT_BY_SIGNAL[signal.Signals(number)])
        self.signal_number = number
        self.event.set()


def report_without_uploading(settings: Settings, reporter: Reporter, inventory: Inventory, reason: str = "") -> None:
    """Every problem, and each file as planned (dry run) or, given a reason, as failed (interrupted before start)."""
    for item in plan_jobs(settings, inventory.names, remote={}):
        if isinstance(item, Problem):
            reporter.problem(item)
        elif reason:
            reporter.outcome(Outcome(item.source.path, "failed", item.key, item.source.size, reason))
        else:
            reporter.announce(item)
            reporter.outcome(Outcome(item.source.path, "planned", item.key, item.source.size))


@dataclass(frozen=True)
class Destination:
    """The bucket as this run talks to it: botocore's client for listings and multipart calls, a PutSender for
    bodies, and what today's folders already hold."""

    client: S3Client
    sender: PutSender
    remote: dict[str, RemoteObject]


def preflight(settings: Settings, stop: threading.Event) -> Destination:
    """A client, what is already in today's folders, and proof that we may write; any failure is fatal."""
    try:
        session = new_session()
        client = make_s3_client(settings, session)
        with cf.ThreadPoolExecutor(4, thread_name_prefix="preflight") as pool:  # one round trip's wait, not four
            listings = [pool.submit(list_remote_objects, client, settings.bucket, f) for f in today_folders(settings)]
            asked_region = pool.submit(bucket_region, client, settings.bucket)
            write_check = pool.submit(check_write_access, client, settings)
            remote = {key: found for listing in listings for key, found in listing.result().items()}
            write_check.result()
            region = asked_region.result()
            if region not in (None, client.meta.region_name):
                client = make_s3_client(settings, session, region)
        sender = PutSender(client, session, settings.bucket, settings.concurrency + PARTS_IN_FLIGHT, stop)
    except (BotoCoreError, ClientError) as error:
        raise FatalError(explain(error, settings)) from None
    return Destination(client, sender, remote)


def preflight_unless_stopped(settings: Settings, stop: threading.Event) -> Destination:
    # In a daemon thread, so that a signal during a hung first request still ends the run at once.
    results: list[Destination] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            results.append(preflight(settings, stop))
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
            errors.append(error)

    thread = threading.Thread(target=attempt, name="preflight", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)  # returns as soon as the thread ends; polling the stop event made every run wait ~50 ms
        if stop.is_set():
            raise Interrupted()
    if errors:
        raise errors[0]
    return results[0]


def wait_for_some(pending: dict[cf.Future[Outcome], Job], reporter: Reporter, timeout: float) -> None:
    done, _ = cf.wait(list(pending), timeout=timeout, return_when=cf.FIRST_COMPLETED)
    for future in done:
        del pending[future]
        reporter.outcome(future.result())


def finish_in_flight(pending: dict[cf.Future[Outcome], Job], reporter: Reporter, stop: threading.Event) -> None:
    """Wait for the files in flight; after a signal, only STOP_GRACE_SECONDS, then report the rest as not sent."""
    deadline: float | None = None
    while pending:
        if stop.is_set() and deadline is None:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
        if deadline is not None and time.monotonic() >= deadline:
            break
        wait_for_some(pending, reporter, 0.2 if deadline is not None else 0.5)
    for job in pending.values():
        reason = "interrupted while it was being sent; the server did not confirm it"
        reporter.outcome(Outcome(job.source.path, "failed", job.key, job.source.size, reason))


def upload_all(settings: Settings, reporter: Reporter, inventory: Inventory, stop: threading.Event) -> S3Client | None:
    try:
        destination = preflight_unless_stopped(settings, stop)
    except Interrupted:
        report_without_uploading(settings, reporter, inventory, NOT_STARTED)
        return None
    transfer = Transfer(destination, settings, stop, reporter.add_bytes)
    pool = cf.ThreadPoolExecutor(settings.concurrency, thread_name_prefix="file")
    pending: dict[cf.Future[Outcome], Job] = {}
    try:
        with ProgressTicker(reporter, settings.progress_interval):
            for item in plan_jobs(settings, inventory.names, destination.remote):
                if isinstance(item, Problem):
                    reporter.problem(item)
                    continue
                while len(pending) >= 2 * settings.concurrency and not stop.is_set():  # 100,000 files: not all queued
                    wait_for_some(pending, reporter, 0.5)
                if stop.is_set():
                    reporter.outcome(Outcome(item.source.path, "failed", item.key, item.source.size, NOT_STARTED))
                    continue
                skipped = transfer.skip_if_unchanged(item)
                if skipped is not None:
                    reporter.outcome(skipped)
                    continue
                pending[pool.submit(transfer.upload, item, reporter.announce)] = item
            finish_in_flight(pending, reporter, stop)
    finally:
        # After a signal, threads stuck on a silent server are left behind; the process exits without them.
        pool.shutdown(wait=not stop.is_set(), cancel_futures=True)
        transfer.close(reporter)
    return destination.client


def save_manifest(reporter: Reporter, manifest: ManifestWriter, client: S3Client | None) -> None:
    try:
        for place in manifest.save(reporter.tally, client):
            reporter.emit(Event("manifest", f"Manifesto gravado: {printable(place)}", key=place))
    except (BotoCoreError, ClientError, OSError) as error:
        reporter.tally.failed += 1
        message = explain(error, manifest.settings)
        reporter.emit(
            Event("failed", f"Erro ao gravar o manifesto: {message}", "error", status="failed", error=message)
        )


def new_run_id(settings: Settings) -> str:
    shard = f"-shard{settings.shard.index}of{settings.shard.count}" if settings.shard.count > 1 else ""
    return f"{utc_now():%Y%m%dT%H%M%SZ}{shard}-{uuid.uuid4().hex[:8]}"


def run(settings: Settings, reporter: Reporter, stop: threading.Event) -> int:
    check_source_folder(settings.source)
    inventory = take_inventory(settings.source, settings.shard, settings.follow_links_outside)
    reporter.expect(inventory.files, inventory.bytes)
    if settings.records_content and not settings.dry_run:
        reporter.manifest = ManifestWriter(settings, new_run_id(settings))
    if not inventory.files:
        reporter.emit(Event("no_files", f"Nenhum arquivo CSV para enviar em {printable(str(settings.source))}"))
    client = None
    if settings.dry_run or not (inventory.files or settings.manifest):
        report_without_uploading(settings, reporter, inventory)
    else:
        client = upload_all(settings, reporter, inventory, stop)
    if stop.is_set():
        reporter.emit(Event("interrupted", "Execução interrompida: nenhum arquivo novo foi iniciado depois do sinal"))
    if reporter.manifest is not None:
        save_manifest(reporter, reporter.manifest, client)
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
    exit_code = main()
    # Everything is reported and written by now. Leaving at once skips the interpreter's tear-down of botocore's
    # loaded models (0.1 s of every run) and, after a signal, the wait for threads stuck on a silent server.
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(exit_code)
