"""The run's start: the Destination, made without botocore when the environment alone says everything botocore would
make of it (importing botocore and building its client cost 0.25 s of every run); otherwise botocore's start
(cli.py) makes it.

The direct start lists today's folders with obstore and makes no write probe: the run's first write is the proof
(cli.py). Whatever fails there (credentials, region, endpoint) is left to botocore's start, which explains it, or
follows the bucket's region where the environment named another."""

from __future__ import annotations

import concurrent.futures as cf
import configparser
import os
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from s3_landing.config import Settings
from s3_landing.discovery import today_folders
from s3_landing.errors import EngineError
from s3_landing.transfer.destination import Destination, list_folder
from s3_landing.transfer.engine import Access, Endpoint, open_stores
from s3_landing.transfer.proof import UNREADABLE_ENCRYPTION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from s3_landing.transfer.botocore_calls import ChecksumCheck

# The AWS_* variables whose whole effect on botocore is known here. Any other one (a profile, an endpoint for S3
# alone, FIPS or dual-stack endpoints, credentials that expire, ...) leaves the start to botocore.
DIRECT_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",  # read into the settings
        "AWS_CA_BUNDLE",
        "AWS_CONFIG_FILE",  # the file must be absent or empty
        "AWS_SHARED_CREDENTIALS_FILE",  # the environment's keys come first; its default profile may hold only keys
        "AWS_EC2_METADATA_DISABLED",
        "AWS_RETRY_MODE",  # botocore's own calls
        "AWS_MAX_ATTEMPTS",
        "AWS_REQUEST_CHECKSUM_CALCULATION",
        "AWS_RESPONSE_CHECKSUM_VALIDATION",  # downloads only, but checked as botocore does
        "AWS_BATCH_JOB_ARRAY_INDEX",  # this program's shard index (config.py), not botocore's
    }
)
CREDENTIAL_NAMES = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
CHECKSUM_CALCULATIONS = ("when_supported", "when_required")
# Regions of the aws partition, whose S3 endpoints botocore names as below (not China, GovCloud or the ISO regions)
AWS_PARTITION_REGION = re.compile(r"(af|ap|ca|eu|il|me|mx|sa|us)-[a-z]+-\d+")
VIRTUAL_HOSTABLE_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def direct_start(settings: Settings) -> Destination | None:
    """The Destination of an upload, opened directly when the environment allows it and the listings succeed. None
    leaves the start to botocore, which makes the same requests again and says what is wrong, if anything is."""
    direct = direct_access(settings, os.environ)
    if direct is None:
        return None
    try:
        return direct_destination(settings, *direct)
    except EngineError:
        return None


def direct_access(settings: Settings, environ: Mapping[str, str]) -> tuple[Endpoint, Access] | None:
    """The endpoint and credentials botocore would sign with, when the environment alone decides them: keys in
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (first in botocore's chain), a region in AWS_REGION (as the AWS CLI
    v2 and the other SDKs read it; botocore reads AWS_DEFAULT_REGION alone, and the bucket's region, when another,
    is found by botocore's start after the listing is refused) or AWS_DEFAULT_REGION, no AWS config file, no other
    AWS_* variable. None otherwise, and with --no-overwrite (its probe is botocore's)."""
    if settings.writes.no_overwrite or any(n.startswith("AWS_") and n not in DIRECT_VARIABLES for n in environ):
        return None
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    checksums = environ.get("AWS_REQUEST_CHECKSUM_CALCULATION", CHECKSUM_CALCULATIONS[0]).lower()
    validation = environ.get("AWS_RESPONSE_CHECKSUM_VALIDATION", CHECKSUM_CALCULATIONS[0]).lower()
    if not (key_id and secret and region) or {checksums, validation} - set(CHECKSUM_CALCULATIONS):
        return None  # a bad checksum setting: botocore's start names it
    if has_config(environ):
        return None
    endpoint = direct_endpoint(settings.target.bucket, settings.target.endpoint_url, region)
    if endpoint is None:
        return None
    keys = {"access_key_id": key_id, "secret_access_key": secret}
    if environ.get("AWS_SESSION_TOKEN"):
        keys["session_token"] = environ["AWS_SESSION_TOKEN"]
    sends_checksums = checksums != "when_required"
    return endpoint, Access(keys, None, environ.get("AWS_CA_BUNDLE") or None, sends_checksums)


def has_config(environ: Mapping[str, str]) -> bool:
    """An AWS config file with something in it, or a shared credentials file whose default profile holds more than
    keys: botocore reads settings from both (a region, an endpoint, an addressing style, FIPS...)."""
    return config_file_used(environ) or credentials_file_holds_settings(environ)


def aws_file(environ: Mapping[str, str], variable: str, name: str) -> str:
    return os.path.expanduser(environ.get(variable) or os.path.join("~", ".aws", name))


def config_file_used(environ: Mapping[str, str]) -> bool:
    try:
        return os.stat(aws_file(environ, "AWS_CONFIG_FILE", "config")).st_size > 0
    except OSError:
        return False


def credentials_file_holds_settings(environ: Mapping[str, str]) -> bool:
    try:
        with open(aws_file(environ, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), encoding="utf-8") as handle:
            profiles = configparser.ConfigParser(interpolation=None)
            profiles.read_file(handle)
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError, configparser.Error):
        return True  # botocore's start says what is wrong with it, if anything
    return profiles.has_section("default") and not set(profiles["default"]) <= CREDENTIAL_NAMES


def direct_endpoint(bucket: str, endpoint_url: str | None, region: str) -> Endpoint | None:
    """What botocore's endpoint rules give for these: path style at a custom endpoint; on AWS, the bucket's
    virtual-hosted name (the global name in us-east-1). None for what is left to botocore: access point ARNs, names
    not usable in a host name, regions outside the aws partition. tests/test_start.py holds this to botocore's
    answers."""
    if ":" in bucket:  # an access point's ARN
        return None
    if endpoint_url:
        url = urlsplit(endpoint_url)
        host = (url.hostname or "").lower()
        if host.endswith("amazonaws.com") or host.startswith(f"{bucket.lower()}."):  # S3's own, or naming the bucket
            return None
        return Endpoint(f"{url.scheme}://{url.netloc}", False, region)
    if AWS_PARTITION_REGION.fullmatch(region) is None or VIRTUAL_HOSTABLE_BUCKET.fullmatch(bucket) is None:
        return None
    host = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
    return Endpoint(f"https://{bucket}.{host}", True, region)


def direct_destination(settings: Settings, endpoint: Endpoint, access: Access) -> Destination:
    """The store, and what today's folders hold, listed by obstore. Raises EngineError when a listing fails."""
    bucket, writes, attempts = settings.target.bucket, settings.writes, settings.run.max_attempts
    store, lister = open_stores(bucket, endpoint, access, writes, attempts)
    later = Later(settings, endpoint.region, access.checksums)
    with cf.ThreadPoolExecutor(2, thread_name_prefix="listing") as pool:
        listings = pool.map(lambda folder: list_folder(lister, later.client, settings, folder), today_folders(settings))
        remote = {key: found for listing in listings for key, found in listing.items()}
    kms = settings.writes.sse in UNREADABLE_ENCRYPTION
    checks = later.checks_checksums
    return Destination(store, remote, kms, access.checksums, checks, later.client, None, False, later.probes_begun)


class Later:
    """botocore's client and the checksum probe, made by the first call that needs them."""

    def __init__(self, settings: Settings, region: str, sends_checksums: bool) -> None:
        self.settings = settings
        self.region = region
        self.sends_checksums = sends_checksums
        self.lock = threading.Lock()
        self.made: S3Client | None = None
        self.probes_begun: dict[str, float] = {}
        self.check: ChecksumCheck | None = None

    def client(self) -> S3Client:
        with self.lock:
            if self.made is None:
                from s3_landing.transfer.botocore_calls import make_s3_client, new_session

                self.made = make_s3_client(self.settings, new_session(), self.region)
            return self.made

    def checks_checksums(self) -> bool:
        from s3_landing.transfer.botocore_calls import ChecksumCheck

        with self.lock:
            if self.check is None:
                self.check = ChecksumCheck(self.client, self.settings, self.sends_checksums, self.probes_begun)
            check = self.check
        return check()
