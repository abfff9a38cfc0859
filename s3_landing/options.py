"""The command line and the variables: each setting declared once, in SETTINGS (its flag, variable, default, help
and parser), from which the parser, the loading (config.load_settings) and the documentation's rows come."""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

from s3_landing import __version__
from s3_landing.errors import ConfigError, UsageError
from s3_landing.objects import CANNED_ACLS

DEFAULT_SOURCE = "/app/data.base"
DEFAULT_PREFIX = "Raw/Local/CSV"
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
DATE_FORMAT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
DIGITS = re.compile(r"[0-9]+")
RetryMode = Literal["standard", "adaptive", "legacy"]
RETRY_MODES: tuple[RetryMode, ...] = ("standard", "adaptive", "legacy")


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


DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smh]?)")
SECONDS_PER_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """30s, 5m, 1h; a bare number is seconds."""
    match = DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ConfigError(
            f"MIN_AGE / --min-age {text!r} is not a duration: write 30s, 5m or 1h (a bare number is seconds)"
        )
    return float(match[1]) * SECONDS_PER_UNIT[match[2]]


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
    "source.min_age": Setting(
        "--min-age",
        "MIN_AGE",
        "leave CSV files modified less than this long ago (still being written) for the next run: 30s, 5m, 1h",
        note="default off",
        parse=parse_duration,
        metavar="DURATION",
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
    "writes.no_overwrite": Setting(
        "--no-overwrite",
        "NO_OVERWRITE",
        "write no object over another (conditional writes, If-None-Match): a key that holds other bytes fails its "
        "file and keeps the object",
        switch=True,
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
