"""S3-compatible stores that list ETags differently from S3 and SeaweedFS, played by the fault proxy rewriting
SeaweedFS's listings: the whole file's MD5 for a multipart object, no ETag at all, an empty one. And names with a
backslash, which some stores turn into '/'."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from faultproxy import FaultProxy, Request
from seaweed import SeaweedServer
from test_cli import Run, run_uploader
from test_reliability import assert_holds_exactly, big_file, key_of, proxied_env, sent, small_files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ETAG = re.compile(rb"<ETag>.*?</ETag>", re.DOTALL)


def upload(server: SeaweedServer, proxy: FaultProxy, bucket: str, source: Path) -> Run:
    env = proxied_env(server, proxy, bucket, PROGRESS_INTERVAL="0")
    return run_uploader(server, ["--source", str(source)], env)


def rerun_with_listings(
    server: SeaweedServer, proxy: FaultProxy, bucket: str, source: Path, rewrite: Callable[[bytes], bytes]
) -> Run:
    """Upload, then run again with the listings rewritten; returns the second run."""
    first = upload(server, proxy, bucket, source)
    assert first.code == 0, first.err
    proxy.rewrite_listings = rewrite
    return upload(server, proxy, bucket, source)


def test_a_store_giving_multipart_objects_the_whole_files_md5_does_not_get_them_again(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = big_file(tmp_path)
    whole_md5 = hashlib.md5(big.read_bytes()).hexdigest()
    before = 0

    def whole_file_etags(body: bytes) -> bytes:
        nonlocal before
        before = before or len(proxy.requests)
        return ETAG.sub(f"<ETag>&quot;{whole_md5}&quot;</ETag>".encode(), body)

    again = rerun_with_listings(s3_server, proxy, bucket, tmp_path, whole_file_etags)
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 0 enviados, 1 ignorados sem alterações, 0 com falha")
    assert not [request for request in proxy.requests[before:] if request.is_part]
    assert_holds_exactly(admin_s3, bucket, [big])


@pytest.mark.parametrize("listed", [b"", b"<ETag></ETag>"], ids=["no-etag", "empty-etag"])
def test_a_listing_without_usable_etags_is_settled_by_what_a_head_proves(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path, listed: bytes
) -> None:
    files = small_files(tmp_path, 3)
    for path in files[:1]:  # written by another tool: no lineage metadata, which is never needed as proof
        admin_s3.put_object(Bucket=bucket, Key=key_of(path), Body=path.read_bytes())
    again = rerun_with_listings(s3_server, proxy, bucket, tmp_path, lambda body: ETAG.sub(listed, body))
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 0 enviados, 3 ignorados sem alterações, 0 com falha")
    assert again.err == ""
    assert len([request for request in proxy.requests if request.method == "HEAD" and "/Raw/" in request.target]) == 3
    assert_holds_exactly(admin_s3, bucket, files)


HEAD_PROOF = re.compile(rb"\r\n(etag|x-amz-checksum-sha256|x-amz-checksum-type): [^\r]*", re.IGNORECASE)


def test_objects_a_store_neither_lists_nor_shows_with_an_etag_or_checksum_are_sent_again_with_one_line(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = small_files(tmp_path, 3)
    proxy.rewrite_answer = lambda request, answer: HEAD_PROOF.sub(b"", answer) if request.method == "HEAD" else answer
    again = rerun_with_listings(s3_server, proxy, bucket, tmp_path, lambda body: ETAG.sub(b"", body))
    assert again.code == 0, again.err
    assert sent(again) == set(files)
    assert again.err.splitlines() == [
        "Aviso: 3 arquivos enviados de novo: nothing proves their same-size objects hold the file's bytes (no MD5 "
        "ETag, and no checksum the store checked), so an unchanged file cannot be told from a changed one"
    ]
    assert_holds_exactly(admin_s3, bucket, files)


def test_a_name_with_a_backslash_is_uploaded_with_a_warning(
    s3_server: SeaweedServer, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    odd = tmp_path / "series\\2024.csv"
    odd.write_text("tconst|x\ntt1|y\n", encoding="utf-8")
    run = upload(s3_server, proxy, bucket, tmp_path)
    assert run.code == 0, run.err
    assert run.err.splitlines() == [
        f"Aviso: {odd}: the name holds a backslash, which some S3-compatible stores turn into '/': there the object "
        "lands under another key and the file is sent again on every run; rename it if that store is yours"
    ]
    assert sent(run) == {odd}


def test_a_store_listing_objects_without_their_last_modified_still_gets_no_file_again(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """object_store refuses a listing without LastModified: botocore, which reads what there is, lists it then."""
    files = small_files(tmp_path, 3)
    again = rerun_with_listings(
        s3_server, proxy, bucket, tmp_path, lambda body: re.sub(rb"<LastModified>.*?</LastModified>", b"", body)
    )
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 0 enviados, 3 ignorados sem alterações, 0 com falha")
    assert not [request for request in proxy.requests if request.method == "HEAD" and "/Raw/" in request.target]
    assert_holds_exactly(admin_s3, bucket, files)


def signed_region(request: Request) -> str:
    return request.headers["authorization"].split("Credential=")[1].split("/")[2]


def wrong_region_answer(region: str, signed_for: str) -> bytes:
    """S3's answer to a request signed for a region other than the bucket's."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AuthorizationHeaderMalformed</Code><Message>The '
        f"authorization header is malformed; the region '{signed_for}' is wrong; expecting '{region}'</Message>"
        f"<Region>{region}</Region></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nx-amz-bucket-region: {region}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_a_bucket_in_another_region_is_listed_and_written_with_signatures_for_that_region(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """S3 refuses a listing signed for another region, naming the bucket's, and HeadBucket names it too (with a 301
    or 403 as well). The run, started without botocore from the environment's AWS_REGION, starts again with botocore's
    HeadBucket: the engine, which signs for the region it is given alone, is opened again for that region, and lists
    the folders again."""
    files = small_files(tmp_path, 2)

    def in_eu_west_1(request: Request, answer: bytes) -> bytes:
        if "list-type=2" in request.target and signed_region(request) != "eu-west-1":
            return wrong_region_answer("eu-west-1", signed_region(request))
        if request.method != "HEAD" or "/Raw/" in request.target:
            return answer
        return answer.replace(b"\r\n", b"\r\nx-amz-bucket-region: eu-west-1\r\n", 1)

    first = upload(s3_server, proxy, bucket, tmp_path)
    assert first.code == 0, first.err
    files.append(tmp_path / "series_new.csv")
    files[-1].write_bytes(files[0].read_bytes() + b"1|2\n")
    proxy.rewrite_answer = in_eu_west_1
    before = len(proxy.requests)
    again = upload(s3_server, proxy, bucket, tmp_path)
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 1 enviados, 2 ignorados sem alterações, 0 com falha")
    listings = [request for request in proxy.requests[before:] if "list-type=2" in request.target]
    writes = [request for request in proxy.requests[before:] if request.method == "PUT" and "/Raw/" in request.target]
    assert len(writes) == 1
    assert [signed_region(request) for request in listings + writes][-3:] == ["eu-west-1"] * 3  # listings, write
    assert_holds_exactly(admin_s3, bucket, files)


def test_folder_markers_beside_the_objects_change_neither_a_re_run_nor_the_check(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A console's "create folder" leaves "<folder>/" objects: object_store lists them without their "/", so the
    day folder's own is left out, and one named as a file's key ("x.csv/", which S3 allows and SeaweedFS does not,
    so the proxy lists it) makes botocore list that folder."""
    files = small_files(tmp_path, 2)
    for folder in {key_of(path).rsplit("/", 1)[0] for path in files}:
        admin_s3.put_object(Bucket=bucket, Key=f"{folder}/", Body=b"")
    marker = f"<Contents><Key>{key_of(files[0])}/</Key><ETag>&quot;{hashlib.md5(b'').hexdigest()}&quot;</ETag>"
    marker += "<Size>0</Size><LastModified>2022-05-02T10:00:00Z</LastModified></Contents></ListBucketResult>"
    again = rerun_with_listings(
        s3_server, proxy, bucket, tmp_path, lambda body: body.replace(b"</ListBucketResult>", marker.encode())
    )
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 0 enviados, 2 ignorados sem alterações, 0 com falha")
    env = proxied_env(s3_server, proxy, bucket, PROGRESS_INTERVAL="0")
    audit = run_uploader(s3_server, ["--source", str(tmp_path), "--check"], env)
    assert audit.code == 0, audit.out + audit.err
    assert "objeto sem arquivo local" not in audit.out + audit.err
