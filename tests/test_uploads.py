"""The transfer stage's local side and its completion logic, without a server: files read as discovery saw them,
parts streamed from the file, and a CompleteMultipartUpload whose lost answer is settled by a listing."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from s3_landing.config import Settings
from s3_landing.discovery import Job, SourceFile, multipart_etag, walk_csv_files
from s3_landing.transfer import destination, files
from s3_landing.transfer.sending import PutSender
from s3_landing.transfer.uploads import Transfer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

KEY = "Raw/Movies/2024/01/31/movies.csv"
SIZE = 20 * 1024 * 1024
PARTS: list[CompletedPartTypeDef] = [{"PartNumber": 1, "ETag": '"a"'}, {"PartNumber": 2, "ETag": '"b"'}]
ETAG = multipart_etag([hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()])


def stubbed_client() -> S3Client:
    session = boto3.session.Session(aws_access_key_id="AKIAUNIT", aws_secret_access_key="unit", region_name="us-east-1")
    return session.client("s3")


def transfer_for(client: S3Client) -> Transfer:
    settings = Settings(Path("/data"), "lake", "Raw", dt.date(2024, 1, 31), None, 2, False)
    return Transfer(client, cast("PutSender", None), settings, threading.Event(), lambda _: None, "run-1")


def job() -> Job:
    return Job(SourceFile(Path("/data/movies.csv"), "/data/movies.csv", SIZE, 1, 1, 1), KEY, None)


SHA256 = "5" * 64


def complete_after_a_lost_answer(code: str, listed_etag: str | None, stored_sha256: str | None = None) -> None:
    client = stubbed_client()
    with Stubber(client) as stub:
        stub.add_client_error("complete_multipart_upload", code, http_status_code=404)
        if listed_etag is not None:
            listed = {"Key": KEY, "Size": SIZE, "ETag": f'"{listed_etag}"'}
            stub.add_response("list_objects_v2", {"Contents": [listed]}, {"Bucket": "lake", "Prefix": KEY})
        if stored_sha256 is not None:
            head = {"ContentLength": SIZE, "Metadata": {"sha256": stored_sha256}}
            stub.add_response("head_object", head, {"Bucket": "lake", "Key": KEY})
        transfer_for(client).complete(job(), "upload-1", PARTS, ETAG, SHA256)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["NoSuchUpload", "InvalidPart"])
def test_a_completion_found_done_is_accepted_when_the_object_matches(code: str) -> None:
    complete_after_a_lost_answer(code, ETAG)


def test_a_completion_found_done_fails_when_the_object_differs() -> None:
    with pytest.raises(ClientError, match="NoSuchUpload"):
        complete_after_a_lost_answer("NoSuchUpload", "0" * 32 + "-2", stored_sha256="0" * 64)


def test_a_completion_found_done_under_sse_kms_is_accepted_by_the_stored_checksum() -> None:
    complete_after_a_lost_answer("NoSuchUpload", "e" * 32, stored_sha256=SHA256)  # the ETag is no MD5 there


def test_any_other_completion_error_fails_without_a_listing() -> None:
    with pytest.raises(ClientError, match="AccessDenied"):
        complete_after_a_lost_answer("AccessDenied", None)


def discovered(path: Path) -> SourceFile:
    [found] = [item for item in walk_csv_files(path.parent) if isinstance(item, SourceFile)]
    return found


def test_a_file_slice_reads_its_window_again_and_again(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with files.FileSlice(discovered(path), 256, 300) as part:
        assert len(part) == 300
        assert part.read(10) == bytes(range(10))
        part.rewind()
        assert part.read() == (bytes(range(256)) * 2)[:300]
        assert part.read(5) == b""


def test_a_file_slice_of_a_file_cut_short_raises_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(b"x" * 1000)
    source = discovered(path)
    with files.FileSlice(source, 500, 500) as part:
        with path.open("r+b") as handle:
            handle.truncate(600)
        with pytest.raises(files.FileChanged, match="shorter"):
            part.read()


def test_parts_carry_the_md5_of_their_bytes_and_a_file_that_grew_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(b"y" * (SIZE + 5))
    source = discovered(path)
    with files.open_regular_file(source) as handle:
        parts = list(files.file_parts(handle, source.size, None))
    assert [part.length for part in parts] == [8 * 1024 * 1024, 8 * 1024 * 1024, 4 * 1024 * 1024 + 5]
    assert parts[2].md5 == hashlib.md5(b"y" * (4 * 1024 * 1024 + 5)).digest()
    with path.open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(files.FileChanged, match="changed since it was found"):
        files.open_regular_file(source)
    with path.open("rb") as handle, pytest.raises(files.FileChanged, match="grew while it was read"):
        list(files.file_parts(handle, source.size, None))


def test_bucket_region_comes_from_head_bucket_even_when_it_is_refused() -> None:
    client = boto3.session.Session().client(
        "s3", region_name="us-east-1", aws_access_key_id="AKIAUNIT", aws_secret_access_key="unit"
    )
    with Stubber(client) as stub:
        stub.add_response("head_bucket", {"ResponseMetadata": {"HTTPHeaders": {"x-amz-bucket-region": "sa-east-1"}}})
        stub.add_client_error(
            "head_bucket",
            "301",
            http_status_code=301,
            response_meta={"HTTPHeaders": {"x-amz-bucket-region": "eu-west-1"}},
        )
        stub.add_response("head_bucket", {"ResponseMetadata": {"HTTPHeaders": {}}})
        assert destination.bucket_region(client, "lake") == "sa-east-1"
        assert destination.bucket_region(client, "lake") == "eu-west-1"
        assert destination.bucket_region(client, "lake") is None
