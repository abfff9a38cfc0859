"""Configuration: flags, environment and .env into Settings, grouped as the run uses them (source, target, write
options, run mode, output). Each setting is declared once, in options.SETTINGS."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from s3_landing.errors import ConfigError
from s3_landing.objects import WriteOptions, check_write_options, parse_tag_flags, parse_tag_variable
from s3_landing.options import SETTINGS, RetryMode, build_parser, parse_whole_number, read

SHARD_INDEX_VARIABLES = ("SHARD_INDEX", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
QUIET, NORMAL, VERBOSE = 0, 1, 2
PLAIN_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's rule for new buckets: botocore's admits it


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


@dataclass(frozen=True)
class Source:
    """What is read: the folder, which links may lead out of it, whether an empty one is an error, this shard."""

    folder: Path
    follow_links_outside: bool = False
    fail_if_empty: bool = False
    shard: Shard = Shard()
    min_age: float = 0.0  # seconds: files modified more recently are left for the next run


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
    from dotenv import load_dotenv  # not at start-up: only the runs with a .env file need it

    load_dotenv(env_file, override=False)


def check_bucket_name(name: str | None) -> str:
    """The bucket name by botocore's own rule (which admits legacy names and access-point ARNs), with the fix for
    the usual mistakes."""
    if not name:
        raise ConfigError("no bucket name: set BUCKET_NAME (environment or .env) or pass --bucket")
    if PLAIN_BUCKET_NAME.fullmatch(name):
        return name
    from botocore.exceptions import ParamValidationError  # botocore judges the rest: legacy names, ARNs
    from botocore.handlers import validate_bucket_name

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
