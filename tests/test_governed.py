"""Objects written the way a governed lake requires: encryption, storage class, canned ACL and tags, on single PUTs,
on CreateMultipartUpload and on the write probe, signed with the request. Read back from SeaweedFS where it stores
them; the recording proxy shows what was sent and signed where it cannot (SSE-KMS). Bad values stop the run before
anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from faultproxy import FaultProxy, Request
from seaweed import SeaweedServer
from test_cli import DATE, Run, run_uploader, uploader_env
from test_reliability import assert_holds_exactly, big_file, failed, key_of, proxied_env, small_files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROBE = ".upload_s3-write-check"


def object_writes(proxy: FaultProxy) -> list[Request]:
    """Single PUTs of objects and CreateMultipartUpload requests (the write probe's included); not parts."""
    return [
        request for request in proxy.requests if (request.method == "PUT" and not request.is_part) or request.is_create
    ]


def run_through(server: SeaweedServer, proxy: FaultProxy, bucket: str, source: Path, *args: str) -> Run:
    access_key, secret_key = server.creds["admin"]  # tags need SeaweedFS's Tagging right
    env = proxied_env(server, proxy, bucket, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    return run_uploader(server, ["--source", str(source), *args], env)


def test_encryption_storage_class_and_tags_land_on_every_object_and_the_probe(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = [*small_files(tmp_path, 2), big_file(tmp_path)]
    tags = ["--tag", "zone=raw", "--tag", "note=imdb  raw/2022 +v1"]
    run = run_through(s3_server, proxy, bucket, tmp_path, "--sse", "AES256", "--storage-class", "STANDARD_IA", *tags)
    assert run.code == 0, run.err
    assert_holds_exactly(admin_s3, bucket, files)
    for path in files:
        head = admin_s3.head_object(Bucket=bucket, Key=key_of(path))
        assert head.get("ServerSideEncryption") == "AES256", path
        assert head.get("StorageClass") == "STANDARD_IA", path
        tag_set = admin_s3.get_object_tagging(Bucket=bucket, Key=key_of(path))["TagSet"]
        assert {tag["Key"]: tag["Value"] for tag in tag_set} == {"zone": "raw", "note": "imdb  raw/2022 +v1"}
    writes = object_writes(proxy)
    # two PUTs, one CreateMultipartUpload, the write probe, and the checksum probe the multipart upload asks for
    assert len(writes) == len(files) + 2
    assert len([request for request in writes if PROBE in request.target]) == 2
    for request in writes:
        assert request.headers["x-amz-server-side-encryption"] == "AES256"
        assert request.headers["x-amz-storage-class"] == "STANDARD_IA"
        tags_sent = dict(parse_qsl(request.headers["x-amz-tagging"]))  # in any order: obstore keeps them in a map
        assert tags_sent == {"zone": "raw", "note": "imdb  raw/2022 +v1"}
        assert {"x-amz-server-side-encryption", "x-amz-storage-class", "x-amz-tagging"} <= request.signed_headers


def test_sse_kms_and_the_acl_are_sent_and_signed_on_every_write(
    s3_server: SeaweedServer, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """SeaweedFS has no KMS to check SSE-KMS against: the recording proxy shows the headers go out, signed, on
    the probe, the PUTs (and their retries) and CreateMultipartUpload."""
    small_files(tmp_path, 2)
    big_file(tmp_path)
    kms = ["--sse", "aws:kms", "--sse-kms-key-id", "alias/raw  zone", "--sse-bucket-key"]
    run = run_through(s3_server, proxy, bucket, tmp_path, *kms, "--acl", "bucket-owner-full-control")
    # SeaweedFS, without a KMS, answers InternalError (not SignatureDoesNotMatch: the signatures hold)
    assert set(failed(run).values()) == {
        "S3 answered InternalError: We encountered an internal error, please try again. (after 2 attempts)"
    }
    writes = object_writes(proxy)
    assert any(PROBE in request.target for request in writes)
    expected = {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "alias/raw  zone",
        "x-amz-server-side-encryption-bucket-key-enabled": "true",
        "x-amz-acl": "bucket-owner-full-control",
    }
    for request in writes:
        assert {name: request.headers.get(name) for name in expected} == expected, request.target
        assert set(expected) <= request.signed_headers
        assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


def test_the_run_manifest_is_written_with_the_same_options(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    small_files(tmp_path, 1)
    run = run_through(s3_server, proxy, bucket, tmp_path, "--manifest", "--sse", "AES256", "--tag", "zone=raw")
    assert run.code == 0, run.err
    (manifest,) = [request for request in proxy.requests if "/_manifests/" in request.target]
    assert manifest.headers["x-amz-server-side-encryption"] == "AES256"
    assert manifest.headers["x-amz-tagging"] == "zone=raw"
    key = manifest.path.split("/", 2)[2]
    assert admin_s3.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption") == "AES256"


def test_the_least_privilege_identity_works_when_no_option_is_used(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    files = [*small_files(tmp_path, 2), big_file(tmp_path)]
    env = uploader_env(s3_server, "writer", BUCKET_NAME=bucket, UPLOAD_DATE=DATE)  # List and Write, as the policy
    run = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert run.code == 0, run.err
    assert_holds_exactly(admin_s3, bucket, files)
    assert admin_s3.get_object_tagging(Bucket=bucket, Key=key_of(files[0]))["TagSet"] == []


@pytest.mark.parametrize(
    ("args", "variables", "message"),
    [
        (["--sse", "aes256"], {}, "SSE='aes256' is not AES256 or aws:kms"),
        ([], {"SSE": "kms"}, "SSE='kms' is not AES256 or aws:kms"),
        (["--sse-kms-key-id", "alias/k"], {}, "SSE_KMS_KEY_ID is set but SSE is not aws:kms"),
        ([], {"SSE_BUCKET_KEY": "true", "SSE": "AES256"}, "SSE_BUCKET_KEY applies to SSE-KMS only"),
        ([], {"SSE_BUCKET_KEY": "maybe"}, "SSE_BUCKET_KEY='maybe' is neither true nor false"),
        (["--storage-class", "standard_ia"], {}, "STORAGE_CLASS='standard_ia' is not a storage class name"),
        (["--acl", "bucket-owner-full"], {}, "OBJECT_ACL='bucket-owner-full' is not a canned ACL"),
        (["--tag", "zone"], {}, "--tag 'zone' is not KEY=VALUE"),
        ([], {"OBJECT_TAGS": "zone"}, "OBJECT_TAGS='zone' is not KEY=VALUE pairs joined by '&'"),
        ([f"--tag=k{n}=v" for n in range(11)], {}, "11 tags given: S3 takes at most 10 per object"),
        (["--tag", "aws:owner=me"], {}, "tag key 'aws:owner' starts with aws:"),
        (["--tag", f"{'k' * 129}=v"], {}, "must have 1 to 128 characters"),
        (["--tag", f"k={'v' * 257}"], {}, "the value of tag 'k' has more than 256 characters"),
        (["--tag", "k=a", "--tag", "k=b"], {}, "tag key 'k' is given twice"),
        (["--tag", "k=a;b"], {}, "holds a character S3 does not take in tags"),
    ],
)
def test_a_bad_write_option_is_one_line_and_exit_2_before_anything_is_sent(
    s3_server: SeaweedServer,
    bucket: str,
    proxy: FaultProxy,
    tmp_path: Path,
    args: list[str],
    variables: dict[str, str],
    message: str,
) -> None:
    small_files(tmp_path, 1)
    env = proxied_env(s3_server, proxy, bucket, **variables)
    run = run_uploader(s3_server, ["--source", str(tmp_path), *args], env)
    assert run.code == 2
    (line,) = run.err.splitlines()
    assert line.startswith("upload_s3: error: ") and message in line, line
    assert proxy.requests == []


def test_ten_tags_at_the_limits_of_s3s_rules_are_accepted(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    (path,) = small_files(tmp_path, 1)
    tags = {f"k{n}": f"v{n}" for n in range(8)} | {"k" * 128: "v" * 256, "é:+-=._/@ x": ""}
    env_tags = urlencode(tags, quote_via=quote)
    access_key, secret_key = s3_server.creds["admin"]
    env = proxied_env(
        s3_server, proxy, bucket, OBJECT_TAGS=env_tags, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key
    )
    run = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert run.code == 0, run.err
    tag_set = admin_s3.get_object_tagging(Bucket=bucket, Key=key_of(path))["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in tag_set} == tags
