"""--check's verdicts without a server: a local file against what its object's listing and HEAD say."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from unit_support import settings_for

from s3_landing.audit import Finding, compare, extras
from s3_landing.config import RunMode, Shard
from s3_landing.discovery import Job, RemoteObject, SourceFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY = "Raw/Movies/2024/01/31/movies.csv"
CONTENT = b"tconst|title\ntt1|x\n"
SHA256 = hashlib.sha256(CONTENT).hexdigest()


def client() -> S3Client:
    return boto3.session.Session("AKIAUNIT", "unit", region_name="us-east-1").client("s3")


def job_for(tmp_path: Path, remote: RemoteObject | None) -> Job:
    path = tmp_path / "movies.csv"
    path.write_bytes(CONTENT)
    info = path.stat()
    source = SourceFile(path, str(path), info.st_size, info.st_mtime_ns, info.st_dev, info.st_ino)
    return Job(source, KEY, remote)


def verdict(tmp_path: Path, remote: RemoteObject | None, head: dict[str, Any] | str | None = None) -> Finding:
    s3 = client()
    with Stubber(s3) as stub:
        if isinstance(head, dict):
            stub.add_response("head_object", head, {"Bucket": "lake", "Key": KEY, "ChecksumMode": "ENABLED"})
        elif isinstance(head, str):
            stub.add_client_error("head_object", head, http_status_code={"403": 403, "404": 404}.get(head, 500))
        finding = compare(s3, "lake", job_for(tmp_path, remote))
        stub.assert_no_pending_responses()
    return finding


def test_an_md5_etag_of_the_file_is_present_without_a_head(tmp_path: Path) -> None:
    finding = verdict(tmp_path, RemoteObject(len(CONTENT), hashlib.md5(CONTENT).hexdigest()))
    assert (finding.verdict.status, finding.sha256) == ("present", SHA256)


def test_no_object_is_missing_and_another_size_is_different(tmp_path: Path) -> None:
    assert verdict(tmp_path, None).verdict.status == "missing"
    assert verdict(tmp_path, RemoteObject(1, "x")).verdict.status == "different"


CHECKSUM = base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()
OTHER_CHECKSUM = base64.b64encode(hashlib.sha256(b"other").digest()).decode()


def head_of(etag: str, size: int = len(CONTENT), **fields: str) -> dict[str, Any]:
    return {"ContentLength": size, "ETag": f'"{etag}"', "Metadata": {"sha256": SHA256}, **fields}


@pytest.mark.parametrize(
    ("etag", "head", "status"),
    [
        # x-amz-meta-sha256 (here always the file's) is lineage, never proof: an MD5 ETag of other bytes differs
        ("e" * 32, head_of("e" * 32), "different"),
        # without a write probe, a checksum counts for KMS-encrypted objects only (their ETags are no MD5s)
        ("e" * 32, head_of("e" * 32, ServerSideEncryption="aws:kms", ChecksumSHA256=CHECKSUM), "present"),
        ("e" * 32, head_of("e" * 32, ServerSideEncryption="aws:kms", ChecksumSHA256=OTHER_CHECKSUM), "different"),
        ("e" * 32, head_of("e" * 32, ServerSideEncryption="aws:kms"), "unverifiable"),
        ("e" * 32, head_of("e" * 32, ServerSideEncryption="aws:kms:dsse"), "unverifiable"),
        ("e" * 32, head_of("e" * 32, ChecksumSHA256=CHECKSUM), "different"),  # an echoed claim beside another MD5
        ("", head_of(""), "unverifiable"),  # no ETag, no checksum
        (
            "e" * 32 + "-2",
            {"ContentLength": len(CONTENT), "ETag": '"' + "e" * 32 + '-2"'},
            "unverifiable",
        ),  # parts of other sizes?
        ("e" * 32 + "-2", head_of("e" * 32 + "-2"), "different"),  # written by upload_s3: at its part size
        ("e" * 32, head_of("e" * 32, size=len(CONTENT) + 1), "different"),  # replaced since the listing
        ("e" * 32, "403", "unverifiable"),
        ("e" * 32, "InternalError", "unverifiable"),  # after botocore's retries: nothing known, so not "different"
        ("e" * 32, "404", "missing"),  # deleted since the listing
    ],
)
def test_an_etag_that_is_not_the_files_md5_is_settled_by_what_a_head_proves(
    tmp_path: Path, etag: str, head: dict[str, Any] | str, status: str
) -> None:
    assert verdict(tmp_path, RemoteObject(len(CONTENT), etag), head).verdict.status == status


def test_a_refused_head_says_which_right_is_missing(tmp_path: Path) -> None:
    finding = verdict(tmp_path, RemoteObject(len(CONTENT), "e" * 32), "403")
    assert "grant s3:GetObject" in finding.reason


def test_extras_are_the_days_objects_no_local_file_has_in_this_shard(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, RunMode.CHECK, shard=Shard(0, 2))
    remote = {f"Raw/Movies/2024/01/31/{name}": RemoteObject(1, "e") for name in ("a.csv", "b.csv", "c.csv", "d.csv")}
    found = {finding.key for finding in extras(settings, remote, {"Raw/Movies/2024/01/31/a.csv"})}
    mine = {key for key in remote if settings.source.shard.owns(key.rsplit("/", 1)[1])}
    assert mine - {"Raw/Movies/2024/01/31/a.csv"}  # the shard owns some of them: the test can see a difference
    assert found == mine - {"Raw/Movies/2024/01/31/a.csv"}
