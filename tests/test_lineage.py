"""Lineage on every object (x-amz-meta-sha256, -run-id, -source-path), and skips that stay content-exact where the
listed ETag is not an MD5 of the file (SSE-KMS objects, gateways): the stored SHA-256 is read with a HEAD. Through
the real command line against SeaweedFS; the fault proxy plays stores that list other ETags."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from datagen import write_movies, write_series
from faultproxy import FaultProxy
from seaweed import SeaweedServer
from test_cli import DATE, Run, run_uploader, uploader_env
from test_reliability import assert_holds_exactly, big_file, key_of, proxied_env, sent, small_files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ETAG = re.compile(rb"<ETag>.*?</ETag>", re.DOTALL)
NOT_AN_MD5 = b"<ETag>&quot;" + b"e" * 32 + b"&quot;</ETag>"  # what SSE-KMS objects list: 32 hex digits, not the MD5


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_object_carries_its_sha256_run_id_and_source_path(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "data.base"
    (source / "a  b").mkdir(parents=True)
    spaced = source / "a  b" / "movies x.csv"  # percent-encoded, so no header value carries the spaces
    write_movies(spaced, 5_000, seed=1)
    accented = source / "séries ø.csv"
    write_series(accented, 3_000, seed=2)
    big = big_file(source)  # multipart: the metadata is given to CreateMultipartUpload
    manifest = tmp_path / "manifest.json"
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    run = run_uploader(s3_server, ["--source", str(source), "--manifest-file", str(manifest)], env)
    assert run.code == 0, run.err
    run_id = json.loads(manifest.read_text(encoding="utf-8"))["run"]["id"]
    encoded = {spaced: "a%20%20b/movies%20x.csv", accented: "s%C3%A9ries%20%C3%B8.csv", big: "movies_big.csv"}
    for path, source_path in encoded.items():
        head = admin_s3.head_object(Bucket=bucket, Key=key_of(path))
        assert head["Metadata"] == {"sha256": sha256_of(path), "run-id": run_id, "source-path": source_path}


def test_a_source_path_too_long_for_the_metadata_is_left_out_with_a_warning(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    deep = tmp_path.joinpath(*["d" * 200] * 10)  # 2,010 characters: with the rest, past S3's 2 KB
    deep.mkdir(parents=True)
    (path,) = small_files(deep, 1)
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    run = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert run.code == 0, run.err
    assert run.err.splitlines() == [
        f"Aviso: {path}: its path is too long for the object's metadata (S3 keeps 2 KB of user metadata): uploaded "
        "without x-amz-meta-source-path"
    ]
    metadata = admin_s3.head_object(Bucket=bucket, Key=key_of(path))["Metadata"]
    assert sorted(metadata) == ["run-id", "sha256"]
    assert metadata["sha256"] == sha256_of(path)


def rerun_listing(
    server: SeaweedServer, proxy: FaultProxy, bucket: str, source: Path, identity: str = "rw", **extra: str
) -> Run:
    """Run again with every listed ETag replaced by one that is not the file's MD5."""
    proxy.rewrite_listings = lambda body: ETAG.sub(NOT_AN_MD5, body)
    access_key, secret_key = server.creds[identity]
    env = proxied_env(server, proxy, bucket, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key, **extra)
    return run_uploader(server, ["--source", str(source)], env)


def test_objects_listed_without_an_md5_etag_are_skipped_by_their_stored_checksum(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = [*small_files(tmp_path, 3), big_file(tmp_path)]
    first = run_uploader(s3_server, ["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket))
    assert first.code == 0, first.err
    before = len(proxy.requests)
    again = rerun_listing(s3_server, proxy, bucket, tmp_path)
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 0 enviados, 4 ignorados sem alterações, 0 com falha")
    assert again.err == ""
    second = proxy.requests[before:]
    assert not [request for request in second if request.method == "PUT"]
    assert len([request for request in second if request.method == "HEAD"]) >= len(files)


def test_a_same_size_change_is_found_by_the_stored_checksum_and_sent(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = [*small_files(tmp_path, 3), big_file(tmp_path)]
    first = run_uploader(s3_server, ["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket))
    assert first.code == 0, first.err
    for changed in (files[0], files[-1]):
        content = bytearray(changed.read_bytes())
        content[-2] = ord("X") if content[-2] != ord("X") else ord("Y")
        changed.write_bytes(bytes(content))
    again = rerun_listing(s3_server, proxy, bucket, tmp_path)
    assert again.code == 0, again.err
    assert sent(again) == {files[0], files[-1]}
    assert_holds_exactly(admin_s3, bucket, files)
    assert admin_s3.head_object(Bucket=bucket, Key=key_of(files[0]))["Metadata"]["sha256"] == sha256_of(files[0])


def test_without_the_right_to_read_objects_such_files_are_sent_again_with_one_line(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = small_files(tmp_path, 3)
    first = run_uploader(s3_server, ["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket))
    assert first.code == 0, first.err
    before = len(proxy.requests)
    # List and Write, no Read; one file at a time, so that the first refusal comes before any other HEAD
    again = rerun_listing(s3_server, proxy, bucket, tmp_path, identity="writer", UPLOAD_CONCURRENCY="1")
    assert again.code == 0, again.err
    assert sent(again) == set(files)
    heads = [request for request in proxy.requests[before:] if request.method == "HEAD" and "/Raw/" in request.target]
    assert len(heads) == 1  # after the first refusal, no HEAD per file
    assert again.err.splitlines() == [
        "Aviso: 3 arquivos enviados de novo: their objects' ETags are not an MD5 of the file (changed, or encrypted "
        "with SSE-KMS) and reading the object (HEAD) was refused; grant s3:GetObject to make re-runs "
        "content-exact (README, IAM policy)"
    ]
    assert_holds_exactly(admin_s3, bucket, files)
