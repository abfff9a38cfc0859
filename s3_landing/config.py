"""Configuration: flags, environment and .env into Settings. Each setting is declared once, in SETTINGS: its flag,
variable, default, help and parser; the command line, the loading and the documentation's rows come from there."""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import ParamValidationError
from botocore.handlers import validate_bucket_name
from dotenv import load_dotenv

from s3_landing import __version__
from s3_landing.errors import ConfigError, UsageError
from s3_landing.objects import CANNED_ACLS, WriteOptions, check_write_options, parse_tag_flags, parse_tag_variable

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


class RunMode(Enum):
    UPLOAD = "upload"
    DRY_RUN = "dry run"  # print the plan, contact nothing
    CHECK = "check"  # compare with the bucket, send nothing


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
class Source:
    """What is read: the folder, which links may lead out of it, whether an empty one is an error, this shard."""

    folder: Path
    follow_links_outside: bool = False
    fail_if_empty: bool = False
    shard: Shard = Shard()


@dataclass(frozen=True)
class Target:
    """Where it goes: s3://bucket/prefix/<Movies|Series>/<date>/, at the endpoint (AWS when None)."""

    bucket: str
    prefix: str
    date: dt.date
    endpoint_url: str | None = None


@dataclass(frozen=True)
class Run:
    """What the run does, and how hard it works at it."""

    mode: RunMode = RunMode.UPLOAD
    concurrency: int = 16
    retry_mode: RetryMode = "standard"
    max_attempts: int = 5


@dataclass(frozen=True)
class Output:
    """What the run tells: lines or JSON, how much, how often the progress, and where its manifest goes."""

    log_format: str = "human"
    verbosity: int = NORMAL
    progress_interval: float = 5.0
    manifest_to_bucket: bool = False
    manifest_file: Path | None = None

    @property
    def records_content(self) -> bool:
        """Manifests need each file's SHA-256, header and row count, taken while it is read for upload."""
        return self.manifest_to_bucket or self.manifest_file is not None


@dataclass(frozen=True)
class Settings:
    source: Source
    target: Target
    writes: WriteOptions = field(default_factory=WriteOptions)
    run: Run = Run()
    output: Output = Output()


def default_concurrency() -> int:
    # Uploads wait on the network far more than on the CPU: a few threads per core, capped.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(16, min(64, 32 * cores))


@dataclass(frozen=True)
class Setting:
    """One setting: the flag and the variable it comes from (a flag wins), the text it takes when neither is given,
    how that text becomes a value, and its help; `note` is what --help adds after the variable (the default, as
    documented). A switch is true/false: the flag sets it, the variable takes true/false, 1/0, yes/no, on/off."""

    flag: str | None
    variable: str
    help: str
    default: str = ""
    note: str = ""
    parse: Callable[[str], Any] = str
    switch: bool = False
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    custom: bool = False  # read by load_settings itself (the rows that do not fit one; see below)

    @property
    def dest(self) -> str:
        return (self.flag or "").lstrip("-").replace("-", "_")

    def help_text(self) -> str:
        if self.custom:
            return self.help
        return f"{self.help} [{self.variable}{f'; {self.note}' if self.note else ''}]"


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


def normalize_prefix(raw: str) -> str:
    # The challenge writes the prefix with backslashes (Raw\Local\CSV); S3 keys use "/".
    parts = [part for part in raw.replace("\\", "/").split("/") if part]
    return "/".join(parts)


def parse_endpoint(text: str) -> str:
    """An http(s) URL of the S3 endpoint, checked up front: botocore fails late, or with a traceback."""
    parts = urlsplit(text)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise ConfigError(
            f"AWS_ENDPOINT_URL / --endpoint-url {text!r} is not an http(s) URL: write it as https://HOST[:PORT] "
            "(http:// for a local server)"
        )
    return text


def parse_log_format(text: str) -> str:
    log_format = text.lower()
    if log_format not in ("human", "json"):
        raise ConfigError(f"LOG_FORMAT={log_format!r} must be human or json")
    return log_format


def parse_retry_mode(text: str) -> RetryMode:
    for mode in RETRY_MODES:
        if text == mode:
            return mode
    raise ConfigError(f"AWS_RETRY_MODE={text!r} is not one of {', '.join(RETRY_MODES)}")


# Every setting, by the Settings field it fills ("group.field"); the order is --help's.
SETTINGS: dict[str, Setting] = {
    "source.folder": Setting(
        "--source", "LOCAL_DIR", "folder to upload", DEFAULT_SOURCE, f"default {DEFAULT_SOURCE}", Path, metavar="DIR"
    ),
    "target.bucket": Setting("--bucket", "BUCKET_NAME", "target bucket", note="required"),
    "target.prefix": Setting(
        "--prefix",
        "RAW_ZONE_PATH",
        "key prefix of the raw zone",
        DEFAULT_PREFIX,
        f"default {DEFAULT_PREFIX}",
        normalize_prefix,
    ),
    "target.date": Setting(
        "--date",
        "UPLOAD_DATE",
        "partition date",
        note="default: today in the local time zone, TZ",
        parse=parse_date,
        metavar="YYYY-MM-DD",
    ),
    "target.endpoint_url": Setting(
        "--endpoint-url",
        "AWS_ENDPOINT_URL",
        "S3-compatible endpoint (MinIO, SeaweedFS, R2...)",
        parse=parse_endpoint,
        metavar="URL",
    ),
    "run.concurrency": Setting(
        "--concurrency",
        "UPLOAD_CONCURRENCY",
        "files and parts in flight",
        str(default_concurrency()),
        f"default {default_concurrency()} here",
        lambda text: parse_whole_number(text, "concurrency", 1, 256),
        metavar="N",
    ),
    "dry_run": Setting("--dry-run", "DRY_RUN", "print what would be uploaded; touch nothing", switch=True),
    "check": Setting(
        "--check",
        "CHECK",
        "send nothing: compare every local file with its object in the bucket, and list objects "
        "without a local file; exit 1 unless every file is present",
        switch=True,
    ),
    "source.follow_links_outside": Setting(
        "--follow-links-outside",
        "FOLLOW_LINKS_OUTSIDE",
        "also follow symbolic links whose target lies outside the source folder",
        switch=True,
    ),
    "source.fail_if_empty": Setting(
        "--fail-if-empty",
        "FAIL_IF_EMPTY",
        "exit 2 when the source folder holds no CSV file at all, e.g. a volume not mounted",
        switch=True,
    ),
    "env_file": Setting(
        "--env-file", "", "read settings from this file [default: ./.env if present]", metavar="PATH", custom=True
    ),
    "source.shard": Setting(
        "--shard",
        "SHARD_INDEX",
        "take only this worker's share of the files, e.g. 0/4 [SHARD_INDEX and "
        "SHARD_COUNT; the index also from JOB_COMPLETION_INDEX (Kubernetes) or AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch)]",
        metavar="INDEX/COUNT",
        custom=True,
    ),
    "output.manifest_to_bucket": Setting(
        "--manifest",
        "MANIFEST",
        "write a JSON run manifest to PREFIX/_manifests/YYYY/MM/DD/<run id>.json in the bucket",
        switch=True,
    ),
    "output.manifest_file": Setting(
        "--manifest-file",
        "MANIFEST_FILE",
        "write the run manifest to this local file (also to the bucket with --manifest)",
        parse=Path,
        metavar="PATH",
    ),
    "writes.sse": Setting("--sse", "SSE", "server-side encryption of every object", metavar="AES256|aws:kms"),
    "writes.sse_kms_key_id": Setting(
        "--sse-kms-key-id", "SSE_KMS_KEY_ID", "KMS key (id, ARN or alias) for --sse aws:kms", metavar="KEY"
    ),
    "writes.sse_bucket_key": Setting(
        "--sse-bucket-key", "SSE_BUCKET_KEY", "use an S3 Bucket Key with --sse aws:kms (fewer KMS calls)", switch=True
    ),
    "writes.storage_class": Setting(
        "--storage-class",
        "STORAGE_CLASS",
        "storage class as the store names it; S3 has STANDARD, GLACIER and others",
        metavar="CLASS",
    ),
    "writes.acl": Setting("--acl", "OBJECT_ACL", f"canned ACL: {', '.join(CANNED_ACLS)}", metavar="ACL"),
    "writes.tags": Setting(
        "--tag",
        "OBJECT_TAGS",
        "tag every object; repeat for more, up to 10 [OBJECT_TAGS as key=value&key2=value2]",
        metavar="KEY=VALUE",
        custom=True,
    ),
    "output.log_format": Setting(
        "--log-format",
        "LOG_FORMAT",
        "human lines or one JSON object per line",
        "human",
        parse=parse_log_format,
        choices=("human", "json"),
    ),
    "output.progress_interval": Setting(
        "--progress-interval",
        "PROGRESS_INTERVAL",
        "seconds between progress lines, 0 for none",
        "5",
        "default 5",
        lambda text: parse_seconds(text, "progress interval"),
        metavar="SECONDS",
    ),
    "quiet": Setting("--quiet", "QUIET", "print only errors and the final summary", switch=True),
    "verbose": Setting("--verbose", "VERBOSE", "also print why each file was skipped", switch=True),
    "run.retry_mode": Setting(None, "AWS_RETRY_MODE", "", "standard", parse=parse_retry_mode),
    "run.max_attempts": Setting(
        None, "AWS_MAX_ATTEMPTS", "", "5", parse=lambda text: parse_whole_number(text, "AWS_MAX_ATTEMPTS", 1, 50)
    ),
}
# What does not fit one row, each for its reason:
# - --shard INDEX/COUNT comes from two variables, and its index from any of three (SHARD_INDEX_VARIABLES: the
#   platforms that run shards set theirs);
# - --tag KEY=VALUE is repeated and taken literally, OBJECT_TAGS is one URL-encoded k=v&k2=v2 (S3's x-amz-tagging);
# - --dry-run and --check choose one run mode, --quiet and --verbose one verbosity: two switches each, one field;
# - --env-file names the file the variables come from, so it has no variable itself;
# - AWS_RETRY_MODE and AWS_MAX_ATTEMPTS are the AWS tools' own variables, with no flag, like the AWS chain's
#   (credentials, region, AWS_CA_BUNDLE, proxies), which botocore and obstore read themselves: the epilog names them.
DESCRIPTION = (
    "Upload the CSV files of a folder to s3://BUCKET/PREFIX/<Movies|Series>/YYYY/MM/DD/<name>. Every flag has an "
    "environment variable (also read from a .env file); flags win over the environment, which wins over the .env file."
)
EPILOG = (
    "Credentials and region follow the standard AWS chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
    "AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION (or AWS_DEFAULT_REGION), instance and task roles. Also read: TZ (the "
    "time zone that decides today's date), AWS_MAX_ATTEMPTS (attempts of every request, uploads included), "
    "AWS_RETRY_MODE (botocore's calls: listings, HEADs, probes), AWS_CA_BUNDLE (the CA of an endpoint with a private "
    "certificate), AWS_REQUEST_CHECKSUM_CALCULATION (when_required: no x-amz-checksum-sha256 on uploads), "
    "HTTPS_PROXY, HTTP_PROXY and NO_PROXY. Exit codes: 0 all uploaded or unchanged, 1 some files failed, 2 nothing "
    "could be done, 130/143 interrupted by SIGINT/SIGTERM."
)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="upload_s3.py", description=DESCRIPTION, epilog=EPILOG)
    for item in SETTINGS.values():
        if item.flag is None:
            continue
        options: dict[str, Any] = {"help": item.help_text()}
        if item.switch:
            options.update(action="store_true", default=None)
        elif item.choices:
            options["choices"] = item.choices
        else:
            options["metavar"] = item.metavar
        if item.flag == "--tag":
            options["action"] = "append"
        parser.add_argument(item.flag, **options)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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


def switch(flag_value: bool | None, variable: str) -> bool:
    """A true/false setting: the flag, or the variable as true/false, 1/0, yes/no or on/off in any case."""
    text = os.environ.get(variable, "").strip()
    if flag_value or text.lower() in TRUE_WORDS:
        return True
    if not text or text.lower() in FALSE_WORDS:
        return False
    raise ConfigError(f"{variable}={text!r} is neither true nor false: write true or false (or 1/0, yes/no, on/off)")


def read(item: Setting, args: argparse.Namespace) -> Any:
    """The setting's value: the flag's, else the variable's, else the default's; None when none is given (or the
    setting is read another way)."""
    if item.custom:
        return None
    flag_value = getattr(args, item.dest, None) if item.flag else None
    if item.switch:
        return switch(flag_value, item.variable)
    text = flag_value if flag_value is not None else os.environ.get(item.variable, "").strip() or item.default
    return item.parse(text) if text else None


def check_bucket_name(name: str | None) -> str:
    """The bucket name by botocore's own rule (which admits legacy names and access-point ARNs), with the fix for
    the usual mistakes."""
    if not name:
        raise ConfigError("no bucket name: set BUCKET_NAME (environment or .env) or pass --bucket")
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


def check_endpoint_leaves_out_the_bucket(endpoint: str | None, bucket: str) -> None:
    if not endpoint:
        return
    parts = urlsplit(endpoint)
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments and segments[-1] == bucket:
        raise ConfigError(
            f"AWS_ENDPOINT_URL / --endpoint-url {endpoint!r} ends with the bucket's name: give the endpoint alone "
            f"({parts.scheme}://{parts.netloc}); the bucket goes in BUCKET_NAME / --bucket"
        )


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


def run_mode(dry_run: bool, check: bool) -> RunMode:
    if dry_run and check:
        raise ConfigError("--check and --dry-run are two different runs: choose one")
    return RunMode.CHECK if check else RunMode.DRY_RUN if dry_run else RunMode.UPLOAD


def verbosity(quiet: bool, verbose: bool) -> int:
    if quiet and verbose:
        raise ConfigError("--quiet and --verbose contradict each other: choose one")
    return QUIET if quiet else VERBOSE if verbose else NORMAL


def grouped(values: dict[str, Any], group: str) -> dict[str, Any]:
    """The values of one group's fields, by field name; the ones not given are left to the field's default."""
    prefix = f"{group}."
    return {
        name[len(prefix) :]: value for name, value in values.items() if name.startswith(prefix) and value is not None
    }


def load_settings(argv: Sequence[str] | None) -> Settings:
    args = build_parser().parse_args(argv)
    load_env_file(args.env_file)
    values: dict[str, Any] = {"target.bucket": check_bucket_name(read(SETTINGS["target.bucket"], args))}
    values.update((name, read(item, args)) for name, item in SETTINGS.items() if name != "target.bucket")
    values["target.date"] = values["target.date"] or today_in_local_zone()
    check_endpoint_leaves_out_the_bucket(values["target.endpoint_url"], values["target.bucket"])
    tags = parse_tag_flags(args.tag) if args.tag else parse_tag_variable(os.environ.get("OBJECT_TAGS", "").strip())
    settings = Settings(
        source=Source(**grouped(values, "source"), shard=parse_shard(args.shard)),
        target=Target(**grouped(values, "target")),
        writes=check_write_options(WriteOptions(**grouped(values, "writes"), tags=tuple(tags))),
        run=Run(mode=run_mode(values["dry_run"], values["check"]), **grouped(values, "run")),
        output=Output(verbosity=verbosity(values["quiet"], values["verbose"]), **grouped(values, "output")),
    )
    if settings.run.mode is RunMode.CHECK and settings.output.manifest_to_bucket:
        raise ConfigError(
            "--check writes nothing to the bucket, so MANIFEST / --manifest cannot be used with it: write the "
            "findings with --manifest-file instead"
        )
    return settings


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
