"""The transfer stage without a server: the stream obstore reads a large file from, and how the answer to a write is
proven, sent again, or settled (the engine's writes replaced by stand-ins)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import boto3
import pytest
from botocore.stub import Stubber
from unit_support import settings_for

from s3_landing.config import RunMode
from s3_landing.discovery import MIB, Job, SourceFile, walk_csv_files
from s3_landing.errors import EngineError, FileChanged, Interrupted, S3Failure, StoredBytesDiffer
from s3_landing.transfer import uploads
from s3_landing.transfer.botocore_calls import abort_ours
from s3_landing.transfer.destination import Destination
from s3_landing.transfer.engine import Written
from s3_landing.transfer.files import Receipt, Status, open_regular_file
from s3_landing.transfer.proof import Digests, Wanted, digests_of_bytes
from s3_landing.transfer.uploads import SENT_WITHOUT_PROOF, Transfer, UploadStream

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from obstore.store import S3Store

KEY = "Raw/Local/CSV/Movies/2022/05/02/movies.csv"
DATA = b"id|title\n1|x\n"
DIGESTS = digests_of_bytes(DATA)
MD5 = hashlib.md5(DATA).hexdigest()


def s3_client() -> S3Client:
    session = boto3.session.Session(aws_access_key_id="AKIAUNIT", aws_secret_access_key="unit", region_name="us-east-1")
    return session.client("s3")


def transfer_for(
    tmp_path: Path,
    kms: bool = False,
    checks: bool = False,
    client: S3Client | None = None,
    max_attempts: int = 5,
    no_overwrite: bool = False,
) -> Transfer:
    made = client or s3_client()
    destination = Destination(cast("S3Store", None), {}, kms, True, lambda: checks, lambda: made)
    settings = settings_for(tmp_path, RunMode.UPLOAD, max_attempts=max_attempts)
    settings = replace(settings, writes=replace(settings.writes, no_overwrite=no_overwrite))
    return Transfer(destination, settings, threading.Event(), lambda _: None, "run-1")


def writes_answering(*etags: str) -> tuple[Callable[[], tuple[Written, Digests]], list[str]]:
    """A write stand-in whose answers carry these ETags in turn; the list records each call."""
    calls: list[str] = []

    def write() -> tuple[Written, Digests]:
        calls.append(etags[len(calls)])
        return Written(calls[-1], "v1"), DIGESTS

    return write, calls


def job_in(folder: Path) -> Job:
    """The job of a movies.csv file holding DATA, written in folder."""
    path = folder / "movies.csv"
    path.write_bytes(DATA)
    return Job(discovered(path), KEY, None)


def proven(transfer: Transfer, write: Callable[[], tuple[Written, Digests]]) -> Receipt:
    """The receipt of a write that write_proven counts as uploaded."""
    status, receipt = transfer.write_proven(job_in(transfer.settings.source.folder), write)
    assert status is Status.UPLOADED
    return receipt


def test_a_write_whose_etag_is_the_files_md5_is_proven_at_once(tmp_path: Path) -> None:
    write, calls = writes_answering(MD5)
    receipt = proven(transfer_for(tmp_path), write)
    assert (receipt.etag, receipt.version_id, receipt.proof, calls) == (MD5, "v1", "etag", [MD5])
    assert receipt.checksum_sha256 == DIGESTS.checksum


def test_a_write_the_answer_does_not_prove_is_sent_again_once_and_a_second_one_fails(tmp_path: Path) -> None:
    write, calls = writes_answering("e" * 32, MD5)
    assert proven(transfer_for(tmp_path), write).proof == "etag"
    assert len(calls) == 2
    write, calls = writes_answering("e" * 32, "f" * 32)
    with pytest.raises(StoredBytesDiffer, match="differ from the file"):
        proven(transfer_for(tmp_path), write)
    assert len(calls) == 2


def test_where_etags_are_no_md5s_a_store_that_checks_checksums_proves_every_write_without_a_resend(
    tmp_path: Path,
) -> None:
    write, calls = writes_answering("e" * 32)
    assert proven(transfer_for(tmp_path, kms=True, checks=True), write).proof == "checksum"
    assert len(calls) == 1


def test_where_etags_are_no_md5s_and_nothing_is_checked_a_write_counts_as_sent_without_proof(tmp_path: Path) -> None:
    transfer = transfer_for(tmp_path, kms=True, checks=False)
    write, calls = writes_answering("e" * 32)
    assert proven(transfer, write).proof == ""
    assert (len(calls), transfer.unverifiable[SENT_WITHOUT_PROOF]) == (1, 1)


def failing_then(successes: int, failure: S3Failure) -> tuple[Callable[[], tuple[Written, Digests]], list[int]]:
    calls: list[int] = []

    def write() -> tuple[Written, Digests]:
        calls.append(1)
        if len(calls) <= successes:
            raise EngineError(failure)
        return Written(MD5, None), DIGESTS

    return write, calls


def test_obstore_08s_unretried_connection_failures_are_sent_again_up_to_the_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "LEGACY_OBSTORE", True)
    write, calls = failing_then(2, S3Failure(None, kind="connection"))
    assert proven(transfer_for(tmp_path, max_attempts=3), write).proof == "etag"
    assert len(calls) == 3
    write, calls = failing_then(3, S3Failure(None, kind="connection"))
    with pytest.raises(EngineError):
        proven(transfer_for(tmp_path, max_attempts=3), write)
    assert len(calls) == 3
    write, calls = failing_then(1, S3Failure(403, "AccessDenied"))  # an answer is never sent again
    with pytest.raises(EngineError):
        proven(transfer_for(tmp_path), write)
    assert len(calls) == 1


def test_newer_obstore_retries_by_itself_so_a_failure_is_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "LEGACY_OBSTORE", False)
    write, calls = failing_then(1, S3Failure(None, kind="connection"))
    with pytest.raises(EngineError):
        proven(transfer_for(tmp_path), write)
    assert len(calls) == 1


def test_a_completion_found_done_after_a_lost_answer_is_settled_by_the_object(tmp_path: Path) -> None:
    lost = EngineError(S3Failure(404, "NoSuchUpload"))
    (tmp_path / "movies.csv").write_bytes(DATA)  # read again for every digest form
    answers: list[tuple[dict[str, object], bool]] = [
        ({"ContentLength": len(DATA), "ETag": f'"{MD5}"'}, True),
        ({"ContentLength": 1}, False),
    ]
    for head, settled in answers:
        client = s3_client()
        with Stubber(client) as stub:
            stub.add_response("head_object", head, {"Bucket": "lake", "Key": KEY, "ChecksumMode": "ENABLED"})
            transfer = transfer_for(tmp_path, client=client)
            job = Job(discovered(tmp_path / "movies.csv"), KEY, None)
            if settled:
                assert transfer.settle_completion(job, lost, 0.0).etag == MD5
            else:
                stub.add_response("list_multipart_uploads", {}, {"Bucket": "lake", "Prefix": KEY})
                with pytest.raises(EngineError):
                    transfer.settle_completion(job, lost, 0.0)


def discovered(path: Path) -> SourceFile:
    [found] = [item for item in walk_csv_files(path.parent) if isinstance(item, SourceFile)]
    return found


def stream_of(path: Path, stop: threading.Event | None = None) -> UploadStream:
    source = discovered(path)
    wanted = Wanted(sha256=False, part_md5s=True)
    return UploadStream(
        Job(source, KEY, None), open_regular_file(source), wanted, stop or threading.Event(), lambda _: None
    )


def test_the_upload_stream_hands_over_every_byte_once_and_hashes_the_parts(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(bytes(range(256)) * (80 * 1024 + 3))
    stream = stream_of(path)
    blocks = list(iter(lambda: stream.read(3 * MIB), b""))
    assert b"".join(blocks) == path.read_bytes()
    assert stream.hasher.result().multipart_etag.endswith("-3")
    assert stream.seek(0, 1) == stream.tell() == path.stat().st_size


def test_a_stop_or_a_file_that_grew_ends_the_stream_and_is_kept_for_the_report(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(b"y" * (2 * MIB))
    stop = threading.Event()
    stream = stream_of(path, stop)
    stream.read(MIB)
    stop.set()
    with pytest.raises(Interrupted):
        stream.read(MIB)
    assert isinstance(stream.failure, Interrupted)
    stream = stream_of(path)
    with path.open("ab") as handle:
        handle.write(b"more")
    stream.read(4 * MIB)
    with pytest.raises(FileChanged, match="grew"):
        stream.read(MIB)
    assert isinstance(stream.failure, FileChanged)


def test_only_uploads_this_run_began_are_aborted(tmp_path: Path) -> None:
    """Another run's upload of the same key, begun before ours (by the server's clock), is left alone."""
    client = s3_client()
    began = 1_700_000_000.0
    uploads = [
        {"Key": KEY, "UploadId": "other-run", "Initiated": "2023-11-14T22:13:18.000Z"},  # began - 2 s
        {"Key": KEY, "UploadId": "ours", "Initiated": "2023-11-14T22:13:21.000Z"},  # began + 1 s
        {"Key": KEY + ".other", "UploadId": "other-key", "Initiated": "2023-11-14T22:13:21.000Z"},
    ]
    with Stubber(client) as stub:
        stub.add_response("list_multipart_uploads", {"Uploads": uploads}, {"Bucket": "lake", "Prefix": KEY})
        stub.add_response("abort_multipart_upload", {}, {"Bucket": "lake", "Key": KEY, "UploadId": "ours"})
        destination = Destination(cast("S3Store", None), {}, False, True, lambda: False, lambda: client, clock_skew=0.0)
        assert abort_ours(destination, "lake", {KEY: began}, [KEY]) == []
        stub.assert_no_pending_responses()
