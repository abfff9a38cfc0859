"""Configuration: flags, environment and .env into Settings; the botocore session and S3 client."""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import ParamValidationError
from botocore.handlers import validate_bucket_name
from dotenv import load_dotenv

from s3_landing import __version__
from s3_landing.objects import (
    CANNED_ACLS,
    OptionError,
    WriteOptions,
    check_acl,
    check_sse,
    check_storage_class,
    check_tags,
    parse_tag_flags,
    parse_tag_variable,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


DEFAULT_SOURCE = "/app/data.base"
DEFAULT_PREFIX = "Raw/Local/CSV"
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
DATE_FORMAT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
DIGITS = re.compile(r"[0-9]+")
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
    fail_if_empty: bool = False
    writes: WriteOptions = field(default_factory=WriteOptions)
    check: bool = False

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
        "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION (or AWS_DEFAULT_REGION), instance and "
        "task roles. Also read: TZ (the time zone that decides today's date), AWS_MAX_ATTEMPTS (attempts of every "
        "request, uploads included), AWS_RETRY_MODE (botocore's calls: listings, HEADs, probes), AWS_CA_BUNDLE "
        "(the CA of an endpoint with a private certificate), AWS_REQUEST_CHECKSUM_CALCULATION (when_required: no "
        "x-amz-checksum-sha256 on uploads), HTTPS_PROXY, HTTP_PROXY and NO_PROXY. Exit codes: 0 all uploaded or "
        "unchanged, 1 some files failed, 2 nothing could be done, 130/143 interrupted by SIGINT/SIGTERM.",
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
        "--check",
        action="store_true",
        default=None,
        help="send nothing: compare every local file with its object in the bucket, and list objects without a "
        "local file; exit 1 unless every file is present [CHECK]",
    )
    add(
        "--follow-links-outside",
        action="store_true",
        default=None,
        help="also follow symbolic links whose target lies outside the source folder [FOLLOW_LINKS_OUTSIDE]",
    )
    add(
        "--fail-if-empty",
        action="store_true",
        default=None,
        help="exit 2 when the source folder holds no CSV file at all, e.g. a volume not mounted [FAIL_IF_EMPTY]",
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
    add(
        "--manifest-file",
        metavar="PATH",
        help="write the run manifest to this local file (also to the bucket with --manifest) [MANIFEST_FILE]",
    )
    add("--sse", metavar="AES256|aws:kms", help="server-side encryption of every object [SSE]")
    add("--sse-kms-key-id", metavar="KEY", help="KMS key (id, ARN or alias) for --sse aws:kms [SSE_KMS_KEY_ID]")
    add(
        "--sse-bucket-key",
        action="store_true",
        default=None,
        help="use an S3 Bucket Key with --sse aws:kms (fewer KMS calls) [SSE_BUCKET_KEY]",
    )
    add(
        "--storage-class",
        metavar="CLASS",
        help="storage class as the store names it; S3 has STANDARD, GLACIER and others [STORAGE_CLASS]",
    )
    add("--acl", metavar="ACL", help=f"canned ACL: {', '.join(CANNED_ACLS)} [OBJECT_ACL]")
    add(
        "--tag",
        metavar="KEY=VALUE",
        action="append",
        help="tag every object; repeat for more, up to 10 [OBJECT_TAGS as key=value&key2=value2]",
    )
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
        if not env_file.exists():
            raise ConfigError(f"env file {path} not found: fix --env-file or create the file")
        if env_file.is_dir():
            raise ConfigError(f"env file {path} is a folder: point --env-file at a file")
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
    """A true/false setting: the flag, or the variable as true/false, 1/0, yes/no or on/off in any case."""
    text = os.environ.get(variable, "").strip()
    if flag_value or text.lower() in TRUE_WORDS:
        return True
    if not text or text.lower() in FALSE_WORDS:
        return False
    raise ConfigError(f"{variable}={text!r} is neither true nor false: write true or false (or 1/0, yes/no, on/off)")


def normalize_prefix(raw: str) -> str:
    # The challenge writes the prefix with backslashes (Raw\Local\CSV); S3 keys use "/".
    parts = [part for part in raw.replace("\\", "/").split("/") if part]
    return "/".join(parts)


def parse_date(text: str) -> dt.date:
    """Exactly YYYY-MM-DD on every Python version (3.11's fromisoformat also takes 20240131 and 2024-W05-3)."""
    match = DATE_FORMAT.fullmatch(text)
    if match is None:
        raise ConfigError(f"date {text!r} is not YYYY-MM-DD, e.g. 2024-01-31: fix --date or UPLOAD_DATE")
    year, month, day = (int(part) for part in match.groups())
    if year == 0:
        raise ConfigError(f"date {text!r} has year 0000: fix --date or UPLOAD_DATE")
    if not 1 <= month <= 12:
        raise ConfigError(f"date {text!r} has month {month:02d}, not 01 to 12: fix --date or UPLOAD_DATE")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise ConfigError(
            f"date {text!r} has day {day:02d}, but {year:04d}-{month:02d} has {days} days: fix --date or UPLOAD_DATE"
        )
    return dt.date(year, month, day)


def check_bucket_name(name: str) -> str:
    """The bucket name by botocore's own rule (which admits legacy names and access-point ARNs), with the fix for
    the usual mistakes."""
    try:
        validate_bucket_name({"Bucket": name})
    except ParamValidationError:
        raise ConfigError(f"bucket name {name!r} is not valid: {bucket_name_fix(name)}") from None
    return name


def bucket_name_fix(name: str) -> str:
    if name[:1] in "\"'" and name[-1:] == name[:1]:
        return "drop the quotes (docker --env-file keeps them as part of the value)"
    if name.lower().startswith("s3://"):
        return "give the name alone, without s3:// (e.g. BUCKET_NAME=lake)"
    if "/" in name:
        return "give the name alone, without '/' or a path (the key prefix goes in RAW_ZONE_PATH / --prefix)"
    return "bucket names are 3 to 63 lowercase letters, digits, dots and hyphens"


def parse_endpoint(text: str | None, bucket: str) -> str | None:
    """An http(s) URL of the S3 endpoint, checked up front: botocore fails late, or with a traceback."""
    if not text:
        return None
    where = f"AWS_ENDPOINT_URL / --endpoint-url {text!r}"
    parts = urlsplit(text)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise ConfigError(
            f"{where} is not an http(s) URL: write it as https://HOST[:PORT] (http:// for a local server)"
        )
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments and segments[-1] == bucket:
        raise ConfigError(
            f"{where} ends with the bucket's name: give the endpoint alone ({parts.scheme}://{parts.netloc}); "
            "the bucket goes in BUCKET_NAME / --bucket"
        )
    return text


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
    if not DIGITS.fullmatch(text) or not low <= int(text) <= high:  # str.isdigit() takes "²", which int() refuses
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


def parse_write_options(args: argparse.Namespace) -> WriteOptions:
    """Encryption, storage class, ACL and tags, all checked before anything is sent."""
    try:
        options = WriteOptions(
            sse=setting(args.sse, "SSE", "") or "",
            sse_kms_key_id=setting(args.sse_kms_key_id, "SSE_KMS_KEY_ID", "") or "",
            sse_bucket_key=switch(args.sse_bucket_key, "SSE_BUCKET_KEY"),
            storage_class=setting(args.storage_class, "STORAGE_CLASS", "") or "",
            acl=setting(args.acl, "OBJECT_ACL", "") or "",
            tags=check_tags(
                parse_tag_flags(args.tag) if args.tag else parse_tag_variable(os.environ.get("OBJECT_TAGS", "").strip())
            ),
        )
        check_sse(options.sse, options.sse_kms_key_id, options.sse_bucket_key)
        check_storage_class(options.storage_class)
        check_acl(options.acl)
    except OptionError as error:
        raise ConfigError(str(error)) from None
    return options


def load_settings(argv: Sequence[str] | None) -> Settings:
    args = build_parser().parse_args(argv)
    load_env_file(args.env_file)
    bucket = setting(args.bucket, "BUCKET_NAME")
    if not bucket:
        raise ConfigError("no bucket name: set BUCKET_NAME (environment or .env) or pass --bucket")
    check_bucket_name(bucket)
    date_text = setting(args.date, "UPLOAD_DATE")
    manifest_file = setting(args.manifest_file, "MANIFEST_FILE")
    settings = Settings(
        source=Path(setting(args.source, "LOCAL_DIR", DEFAULT_SOURCE) or DEFAULT_SOURCE),
        bucket=bucket,
        prefix=normalize_prefix(setting(args.prefix, "RAW_ZONE_PATH", DEFAULT_PREFIX) or ""),
        date=parse_date(date_text) if date_text else today_in_local_zone(),
        endpoint_url=parse_endpoint(setting(args.endpoint_url, "AWS_ENDPOINT_URL"), bucket),
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
        fail_if_empty=switch(args.fail_if_empty, "FAIL_IF_EMPTY"),
        writes=parse_write_options(args),
        check=switch(args.check, "CHECK"),
    )
    check_mode(settings)
    return settings


def check_mode(settings: Settings) -> None:
    """--check reads the bucket and writes nothing there."""
    if settings.check and settings.manifest:
        raise ConfigError(
            "--check writes nothing to the bucket, so MANIFEST / --manifest cannot be used with it: write the "
            "findings with --manifest-file instead"
        )
    if settings.check and settings.dry_run:
        raise ConfigError("--check and --dry-run are two different runs: choose one")


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


def check_manifest_file(path: Path | None) -> None:
    """The run manifest's folder, before the first upload: a typo must not cost the lineage of a whole run."""
    if path is None:
        return
    fix = "fix --manifest-file / MANIFEST_FILE"
    if path.is_dir():
        raise ConfigError(f"manifest file {path} is a folder: {fix} to name a file")
    if not path.parent.is_dir():
        raise ConfigError(f"the folder of the manifest file {path} does not exist: create it or {fix}")
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"the folder of the manifest file {path} is not writable: fix its permissions or {fix}")


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
