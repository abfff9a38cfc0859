"""What proves that an object holds a file's bytes (README, Integrity), through the real command line: on a store
that checks nothing (moto) behind a proxy that corrupts request bodies; on a bucket whose ETags are never MD5s (SSE-KMS,
played by the proxy in front of SeaweedFS); and the checksum and receipt an object and the manifest keep."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.config import Config
from faultproxy import Fault, FaultProxy, Request, Rule
from seaweed import SeaweedServer, make_client
from test_cli import DATE, body, keys_in, run_uploader, uploader_env
from test_reliability import assert_holds_exactly, big_file, failed, key_of, proxied_env, sent, small_files

from s3_landing.discovery import part_size_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MOTO_KEYS = ("AKIAMOTOTEST", "moto-secret-key-for-tests")


def moto_env(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": MOTO_KEYS[0],
        "AWS_SECRET_ACCESS_KEY": MOTO_KEYS[1],
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_MAX_ATTEMPTS": "2",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "BUCKET_NAME": bucket,
        "UPLOAD_DATE": "2022-05-02",
        "PROGRESS_INTERVAL": "0",
        **extra,
    }


class Moto:
    """The identities run_uploader checks the output for: moto's one pair."""

    def __init__(self) -> None:
        self.creds = {"moto": MOTO_KEYS}


def every_fourth_body_corrupted() -> Rule:
    puts = itertools.count(1)

    def rule(request: Request) -> Fault | None:
        return "corrupt" if request.method == "PUT" and next(puts) % 4 == 0 else None

    return rule


def test_on_a_store_that_checks_nothing_no_corrupted_object_is_called_sent_or_present(
    moto_endpoint: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    files = [*small_files(source, 24), big_file(source)]
    bucket = f"hole-{secrets.token_hex(4)}"
    # moto 5.1 (Python 3.9) shows multipart objects with a wrong full-object checksum: the bytes are compared here
    s3 = make_client(moto_endpoint, *MOTO_KEYS, config=Config(response_checksum_validation="when_required"))
    s3.create_bucket(Bucket=bucket)
    with FaultProxy(moto_endpoint) as proxy:
        proxy.faults = every_fourth_body_corrupted()
        manifest = tmp_path / "manifest.json"
        run = run_uploader(
            Moto(), ["--source", str(source), "--manifest-file", str(manifest)], moto_env(proxy.endpoint, bucket)
        )
        assert proxy.injected["corrupt"] >= 6
        corrupted_keys = {request.path.split("/", 2)[2] for request in proxy.requests if request.fault == "corrupt"}
    assert sent(run), run.err
    for path in sent(run):  # every file called sent holds its bytes: the ETag the store computed proved it
        assert body(s3, bucket, key_of(path)) == path.read_bytes(), path
    for reason in failed(run).values():  # corrupted twice: named, with what to do
        assert "the bytes stored under the key differ from the file" in reason, reason
    assert set(sent(run)) | set(failed(run)) == set(files)
    assert corrupted_keys & {key_of(path) for path in sent(run)}  # some were corrupted once, sent again, and landed
    entries = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    assert {entry["proof"] for entry in entries if entry["status"] == "uploaded"} == {"etag"}

    args = ["--source", str(source), "--check", "--log-format", "json"]
    check = run_uploader(Moto(), args, moto_env(moto_endpoint, bucket))
    for line in check.out.splitlines() + check.err.splitlines():
        event = json.loads(line)
        if event["event"] == "check" and event["status"] == "present":
            path = Path(event["file"])
            assert body(s3, bucket, key_of(path)) == path.read_bytes(), path

    again = run_uploader(Moto(), ["--source", str(source)], moto_env(moto_endpoint, bucket))
    assert again.code == 0, again.err
    assert sent(again) == set(failed(run))
    assert_holds_exactly(s3, bucket, files)


ETAG_HEADER = re.compile(rb"\r\n[Ee][Tt]ag: \"[^\"]*\"")
ETAG_XML = re.compile(rb"<ETag>[^<]*</ETag>")
CHECKSUM_HEADER = re.compile(rb"\r\nx-amz-checksum-sha256: [^\r]*", re.IGNORECASE)


def as_if_sse_kms(request: Request, answer: bytes) -> bytes:
    """Every object's ETag becomes random hex, as SSE-KMS ETags are, and every object write and HEAD says aws:kms.
    (Parts keep theirs: the completion must list what the server gave.)"""
    if request.is_part:
        return answer
    head, separator, rest = answer.partition(b"\r\n\r\n")
    head = ETAG_HEADER.sub(lambda _: b'\r\nETag: "' + secrets.token_hex(16).encode() + b'"', head)
    if request.method in ("PUT", "HEAD") or request.is_create:
        head += b"\r\nx-amz-server-side-encryption: aws:kms"
    rest = ETAG_XML.sub(lambda _: b"<ETag>&quot;" + secrets.token_hex(16).encode() + b"&quot;</ETag>", rest)
    if len(rest) and b"content-length:" in head.lower():
        head = re.sub(rb"(?i)\r\ncontent-length: \d+", b"\r\nContent-Length: " + str(len(rest)).encode(), head)
    return head + separator + rest


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_a_bucket_whose_etags_are_never_md5s_gets_no_resends_and_no_failures(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path, checksums: str
) -> None:
    files = [*small_files(tmp_path, 6), big_file(tmp_path)]
    proxy.rewrite_answer = as_if_sse_kms
    env = proxied_env(s3_server, proxy, bucket, AWS_REQUEST_CHECKSUM_CALCULATION=checksums, PROGRESS_INTERVAL="0")
    manifest = tmp_path.parent / f"{tmp_path.name}-manifest.json"
    run = run_uploader(s3_server, ["--source", str(tmp_path), "--manifest-file", str(manifest)], env)
    assert run.code == 0, run.err
    assert sent(run) == set(files)
    writes = [request for request in proxy.requests if request.method == "PUT" and "write-check" not in request.target]
    assert len(writes) == 6 + 3  # each small file once, each part of the big one once: nothing sent again
    proofs = {entry["proof"] for entry in json.loads(manifest.read_text(encoding="utf-8"))["files"]}
    if checksums == "when_supported":  # SeaweedFS checks x-amz-checksum-sha256: each write was proven by it
        assert proofs == {"checksum"}
        assert run.err == ""
    else:  # no checksum sent, ETags no MD5s: nothing can prove the bytes, and one line says so
        assert proofs == {None}
        assert run.err.splitlines() == [
            "Aviso: 7 arquivos enviados sem prova: the objects' ETags are no MD5s here (KMS encryption) and the store "
            "does not check x-amz-checksum-sha256, so nothing proves the bytes it stored (README, Integrity)"
        ]
    assert_holds_exactly(admin_s3, bucket, files)
    if checksums == "when_supported":  # a re-run proves every object by the checksum SeaweedFS keeps (HEAD)
        again = run_uploader(s3_server, ["--source", str(tmp_path)], env)
        assert again.code == 0, again.err
        assert again.summary().startswith("Resumo: 0 enviados, 7 ignorados sem alterações, 0 com falha")


def test_a_re_run_whose_first_file_a_head_proves_makes_the_probe_then_goes_on_in_parallel(
    s3_server: SeaweedServer, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Started without botocore, a run's first write proves the right to write. When the first file to compare turns
    out unchanged by a HEAD (listed ETags are no MD5s here), nothing was written: botocore's probe proves it, and the
    other files are compared in parallel, not each alone."""
    small_files(tmp_path, 6)
    proxy.rewrite_answer = as_if_sse_kms
    env = proxied_env(s3_server, proxy, bucket, PROGRESS_INTERVAL="0")
    first = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert first.code == 0, first.err
    before = len(proxy.requests)
    again = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 0 enviados, 6 ignorados sem alterações, 0 com falha")
    requests = proxy.requests[before:]
    probe = [at for at, request in enumerate(requests) if "write-check" in request.target]
    heads = [at for at, request in enumerate(requests) if request.method == "HEAD" and "/Raw/" in request.target]
    assert len(probe) == 2  # CreateMultipartUpload and its abort
    assert len(heads) == 6
    assert heads[0] < probe[0] and probe[-1] < heads[1]


def test_the_store_keeps_each_files_sha256_and_the_manifest_is_the_receipt(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    small, big = small_files(tmp_path, 1)[0], big_file(tmp_path)
    manifest = tmp_path.parent / f"{tmp_path.name}-manifest.json"
    env = proxied_env(s3_server, proxy, bucket)
    run = run_uploader(s3_server, ["--source", str(tmp_path), "--manifest-file", str(manifest)], env)
    assert run.code == 0, run.err
    data = big.read_bytes()
    part = part_size_for(len(data))
    parts = [data[offset : offset + part] for offset in range(0, len(data), part)]
    composite = hashlib.sha256(b"".join(hashlib.sha256(chunk).digest() for chunk in parts)).digest()
    expected = {
        small: base64.b64encode(hashlib.sha256(small.read_bytes()).digest()).decode(),
        big: f"{base64.b64encode(composite).decode()}-{len(parts)}",
    }
    entries = {entry["path"]: entry for entry in json.loads(manifest.read_text(encoding="utf-8"))["files"]}
    for path, checksum in expected.items():
        head = admin_s3.head_object(Bucket=bucket, Key=key_of(path), ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == checksum
        entry = entries[str(path.relative_to(tmp_path))]
        proof = "checksum" if path == big else "etag"  # SeaweedFS checks checksums: no MD5 of the parts needed
        assert (entry["etag"], entry["checksum_sha256"], entry["proof"]) == (head["ETag"].strip('"'), checksum, proof)
        assert "version_id" in entry
    for request in proxy.requests:  # every body went with its checksum, for the store to check
        if request.method == "PUT" and "write-check" not in request.target:
            assert "x-amz-checksum-sha256" in request.signed_headers
            assert request.headers["x-amz-content-sha256"] != "UNSIGNED-PAYLOAD"
    assert keys_in(admin_s3, bucket) == {key_of(small), key_of(big)}


def test_every_run_ends_with_the_programs_own_exit_code_against_a_server_closing_idle_connections(
    tmp_path: Path,
) -> None:
    """obstore's native threads never race the interpreter's shutdown: the command leaves with os._exit after its
    last line (an interpreter left to finalize aborted now and then, SIGABRT)."""
    small_files(tmp_path, 3)
    with SeaweedServer(extra_args=["-idleTimeout=1", "-s3.idleTimeout=1"]) as server:
        server.client("admin").create_bucket(Bucket="idle")
        env = uploader_env(server, BUCKET_NAME="idle", UPLOAD_DATE=DATE)
        codes = [run_uploader(server, ["--source", str(tmp_path), "--quiet"], env).code for _ in range(50)]
        missing = run_uploader(server, ["--source", str(tmp_path), "--bucket", "no-such-bucket"], env).code
    assert codes == [0] * 50
    assert missing == 2
