"""Write options and lineage metadata as S3 defines them (s3_landing.objects), without a server."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from s3_landing.errors import ConfigError
from s3_landing.objects import (
    MAX_USER_METADATA,
    WriteOptions,
    check_tags,
    lineage_metadata,
    parse_tag_flags,
    parse_tag_variable,
    source_path_value,
)

RUN_ID = "20261129T230000Z-0123abcd"


def test_tags_are_sent_url_encoded_and_read_back_as_given() -> None:
    tags = (("zone", "raw"), ("note", "a  b/c+d=e&f"), ("é", ""))
    options = WriteOptions(tags=tags)
    assert options.tagging == "zone=raw&note=a%20%20b%2Fc%2Bd%3De%26f&%C3%A9="
    assert tuple(parse_qsl(options.tagging, keep_blank_values=True)) == tags
    assert options.parameters()["Tagging"] == options.tagging


def test_no_option_means_no_parameter() -> None:
    assert WriteOptions().parameters() == {}


def test_each_option_has_its_botocore_parameter() -> None:
    options = WriteOptions("aws:kms", "alias/k", True, "GLACIER_IR", "bucket-owner-full-control")
    assert options.parameters() == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/k",
        "BucketKeyEnabled": True,
        "StorageClass": "GLACIER_IR",
        "ACL": "bucket-owner-full-control",
    }


def test_tag_flags_split_at_the_first_equals_sign_and_the_variable_is_url_decoded() -> None:
    assert parse_tag_flags(["a=b=c", "empty="]) == [("a", "b=c"), ("empty", "")]
    assert parse_tag_variable("a=b%3Dc&sp=x%20y&plus=1+2") == [("a", "b=c"), ("sp", "x y"), ("plus", "1 2")]
    assert parse_tag_variable("") == []


@pytest.mark.parametrize(
    "tags",
    [
        [(f"k{n}", "v") for n in range(10)],
        [("k" * 128, "v" * 256)],
        [("Ünïcode 1:+-=._/@", "")],
    ],
)
def test_tags_within_s3s_rules_pass(tags: list[tuple[str, str]]) -> None:
    assert check_tags(tags) == tuple(tags)


@pytest.mark.parametrize(
    "tags",
    [
        [(f"k{n}", "v") for n in range(11)],
        [("", "v")],
        [("k" * 129, "v")],
        [("k", "v" * 257)],
        [("AWS:key", "v")],
        [("k", "1"), ("k", "2")],
        [("k", "a\nb")],
        [("k", "a;b")],
    ],
)
def test_tags_breaking_s3s_rules_are_refused(tags: list[tuple[str, str]]) -> None:
    with pytest.raises(ConfigError):
        check_tags(tags)


def test_the_source_path_is_percent_encoded_utf8_with_other_bytes_escaped_as_they_are() -> None:
    assert source_path_value(Path("a  b/séries.csv"), RUN_ID) == "a%20%20b/s%C3%A9ries.csv"
    assert source_path_value(Path(os.fsdecode(b"x\xff.csv")), RUN_ID) == "x%FF.csv"


def test_the_source_path_is_left_out_exactly_when_the_metadata_would_pass_2_kb() -> None:
    fixed = len("sha256") + 64 + len("run-id") + len(RUN_ID) + len("source-path")
    fits = Path("p" * (MAX_USER_METADATA - fixed))
    assert source_path_value(fits, RUN_ID) == str(fits)
    assert source_path_value(Path(str(fits) + "p"), RUN_ID) is None
    metadata = lineage_metadata("0" * 64, RUN_ID, str(fits))
    assert sum(len(name) + len(value) for name, value in metadata.items()) == MAX_USER_METADATA
    assert lineage_metadata("0" * 64, RUN_ID, None) == {"sha256": "0" * 64, "run-id": RUN_ID}
