"""How objects are written: encryption, storage class, canned ACL and tags (the headers governed lakes require),
checked up front where S3 defines the rule; and the lineage metadata every object carries."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from s3_landing.errors import ConfigError

SSE_MODES = ("AES256", "aws:kms")
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
STORAGE_CLASS_SYNTAX = re.compile(r"[A-Z][A-Z0-9_]{0,63}")  # S3 names them so; other stores have their own names
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 10, 128, 256
TAG_TEXT = re.compile(r"[\w .:+=@/-]*")  # letters and digits of any script, space and + - = . _ : / @
MAX_USER_METADATA = 2048  # S3: bytes of the UTF-8 names (without x-amz-meta-) and values together
SHA256_HEX_DIGITS = 64

# The lineage contract: the names under which every object carries its lineage (README, Lineage).
META_SHA256, META_RUN_ID, META_SOURCE_PATH = "sha256", "run-id", "source-path"


@dataclass(frozen=True)
class WriteOptions:
    """Encryption, storage class, ACL and tags, sent with every object (PUT and CreateMultipartUpload) and with the
    write probe, so that a bucket policy that requires them is met by all three."""

    sse: str = ""
    sse_kms_key_id: str = ""
    sse_bucket_key: bool = False
    storage_class: str = ""
    acl: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    no_overwrite: bool = False  # every object write conditional (If-None-Match: *); not a header of the probe

    def parameters(self) -> dict[str, Any]:
        """As botocore's parameters of CreateMultipartUpload and PutObject (the probes, and the writes obstore cannot
        make; engine.py gives obstore the same options)."""
        options = [
            ("ServerSideEncryption", self.sse),
            ("SSEKMSKeyId", self.sse_kms_key_id),
            ("BucketKeyEnabled", self.sse_bucket_key),
            ("StorageClass", self.storage_class),
            ("ACL", self.acl),
            ("Tagging", self.tagging),
        ]
        return {name: value for name, value in options if value}

    @property
    def tagging(self) -> str:
        """The tags URL-encoded as x-amz-tagging carries them."""
        return urlencode(self.tags, quote_via=quote)


def check_write_options(options: WriteOptions) -> WriteOptions:
    """Every option by S3's rules, before anything is sent (ConfigError names the first one broken)."""
    check_tags(options.tags)
    check_sse(options.sse, options.sse_kms_key_id, options.sse_bucket_key)
    check_storage_class(options.storage_class)
    check_acl(options.acl)
    return options


def check_sse(sse: str, kms_key_id: str, bucket_key: bool) -> None:
    if sse and sse not in SSE_MODES:
        raise ConfigError(f"SSE={sse!r} is not AES256 or aws:kms: write one of them exactly (--sse)")
    if kms_key_id and sse != "aws:kms":
        raise ConfigError("SSE_KMS_KEY_ID is set but SSE is not aws:kms: add --sse aws:kms (or SSE=aws:kms)")
    if bucket_key and sse != "aws:kms":
        raise ConfigError("SSE_BUCKET_KEY applies to SSE-KMS only: add --sse aws:kms (or SSE=aws:kms)")


def check_storage_class(storage_class: str) -> None:
    if storage_class and not STORAGE_CLASS_SYNTAX.fullmatch(storage_class):
        raise ConfigError(
            f"STORAGE_CLASS={storage_class!r} is not a storage class name: capitals, digits and '_', "
            "e.g. STANDARD_IA or INTELLIGENT_TIERING (--storage-class)"
        )


def check_acl(acl: str) -> None:
    if acl and acl not in CANNED_ACLS:
        raise ConfigError(f"OBJECT_ACL={acl!r} is not a canned ACL: use one of {', '.join(CANNED_ACLS)} (--acl)")


def check_tags(tags: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """S3's rules for object tags: at most 10, keys of 1 to 128 characters and values of up to 256, no aws: prefix,
    no key twice, letters, digits, space and + - = . _ : / @ only."""
    if len(tags) > MAX_TAGS:
        raise ConfigError(f"{len(tags)} tags given: S3 takes at most {MAX_TAGS} per object (--tag, OBJECT_TAGS)")
    seen: set[str] = set()
    for key, value in tags:
        if not 1 <= len(key) <= MAX_TAG_KEY:
            raise ConfigError(f"tag key {key!r} must have 1 to {MAX_TAG_KEY} characters (--tag, OBJECT_TAGS)")
        if len(value) > MAX_TAG_VALUE:
            raise ConfigError(f"the value of tag {key!r} has more than {MAX_TAG_VALUE} characters")
        if key.lower().startswith("aws:"):
            raise ConfigError(f"tag key {key!r} starts with aws:, which S3 keeps for AWS: choose another key")
        for text in (key, value):
            if not TAG_TEXT.fullmatch(text):
                raise ConfigError(
                    f"tag {key}={value} holds a character S3 does not take in tags: use letters, digits, "
                    "space and + - = . _ : / @"
                )
        if key in seen:
            raise ConfigError(f"tag key {key!r} is given twice: give each key once")
        seen.add(key)
    return tuple(tags)


def parse_tag_flags(flags: Sequence[str]) -> list[tuple[str, str]]:
    """--tag KEY=VALUE, repeated: taken literally, split at the first '='."""
    pairs = []
    for flag in flags:
        key, equals, value = flag.partition("=")
        if not equals:
            raise ConfigError(f"--tag {flag!r} is not KEY=VALUE: write it as --tag team=data")
        pairs.append((key, value))
    return pairs


def parse_tag_variable(text: str) -> list[tuple[str, str]]:
    """OBJECT_TAGS as S3's x-amz-tagging takes it: k=v&k2=v2, URL-encoded."""
    if not text:
        return []
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ConfigError(
            f"OBJECT_TAGS={text!r} is not KEY=VALUE pairs joined by '&', e.g. team=data&source=imdb"
        ) from None


def source_path_value(relative_path: Path, run_id: str) -> str | None:
    """The source path as x-amz-meta-source-path carries it: percent-encoded UTF-8 (other bytes of a name escaped
    as they are). None when it would push the lineage metadata past S3's 2 KB of user metadata."""
    value = quote(os.fsencode(relative_path), safe="/")
    fixed = len(META_SHA256) + SHA256_HEX_DIGITS + len(META_RUN_ID) + len(run_id)
    return value if fixed + len(META_SOURCE_PATH) + len(value) <= MAX_USER_METADATA else None


def lineage_metadata(sha256: str, run_id: str, source_path: str | None) -> dict[str, str]:
    """The user metadata every object carries (names without the x-amz-meta- of their headers)."""
    metadata = {META_SHA256: sha256, META_RUN_ID: run_id}
    if source_path is not None:
        metadata[META_SOURCE_PATH] = source_path
    return metadata
