"""Uploads of jobs: small files in one PUT, large ones in parallel parts; skips of unchanged files."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
)

from s3_landing.config import Settings
from s3_landing.discovery import MIB, MULTIPART_THRESHOLD, Job, is_same_content, list_remote_objects, multipart_etag
from s3_landing.objects import META_SHA256, lineage_metadata, metadata_headers, source_path_value
from s3_landing.transfer.files import (
    BufferBudget,
    ContentStats,
    FileChanged,
    FilePart,
    FileSlice,
    Interrupted,
    Outcome,
    ensure_unchanged,
    feed,
    file_chunks,
    file_parts,
    open_regular_file,
    read_whole,
)
from s3_landing.transfer.sending import PutSender

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef


CONTENT_TYPE = "text/csv"
BUFFER_BUDGET = 64 * MIB  # bytes of small files held in memory at once, across all threads (parts are streamed)
# Parts queued or in flight across all large files. More only adds server load: on 280 MB against SeaweedFS,
# 8 took 3.7 s and 64 took 4.8 s (medians of 3, bench data); s3transfer uses 10, s5cmd 5 per file.
PARTS_IN_FLIGHT = 8
# A CompleteMultipartUpload retried after its answer was lost may find the upload already completed.
COMPLETED_ALREADY_CODES = ("NoSuchUpload", "InvalidPart")
ABORT_GRACE_SECONDS = 2.0  # then how long aborting their multipart uploads may take
HEAD_REFUSED = "head refused"  # why a same-size file could not be compared by its stored checksum
NO_CHECKSUM = "no checksum"
SOURCE_PATH_LEFT_OUT = (
    "its path is too long for the object's metadata (S3 keeps 2 KB of user metadata): uploaded without "
    "x-amz-meta-source-path"
)


def whole_file_md5(handle: BinaryIO, size: int, stats: ContentStats | None) -> str:
    digest = hashlib.md5()
    for block in file_chunks(handle, size, MIB):
        digest.update(block)
        feed(stats, block)
    return digest.hexdigest()


def whole_file_sha256(job: Job) -> str:
    """The file's SHA-256, read in 1 MiB blocks: the pass before a multipart upload (whose metadata is fixed when
    it is created), and --check's."""
    digest = hashlib.sha256()
    with open_regular_file(job.source) as handle:
        for block in file_chunks(handle, job.source.size, MIB):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredObject:
    """What a HEAD tells of an object: the SHA-256 it carries (x-amz-meta-sha256), its size and encryption; or why
    it tells nothing: refused (no s3:GetObject), missing (gone since the listing), or another failure."""

    sha256: str | None = None
    size: int | None = None
    encryption: str = ""
    refused: bool = False
    missing: bool = False
    failure: str = ""


def read_stored(client: S3Client, bucket: str, key: str) -> StoredObject:
    try:
        answer = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("403", "AccessDenied", "Forbidden"):
            return StoredObject(refused=True)
        if code in ("404", "NoSuchKey", "NotFound"):
            return StoredObject(missing=True)
        return StoredObject(failure=f"reading the stored checksum (HEAD) failed: {code or error}")
    except BotoCoreError as error:
        return StoredObject(failure=f"reading the stored checksum (HEAD) failed: {error}")
    metadata = answer.get("Metadata", {})
    return StoredObject(metadata.get(META_SHA256), answer.get("ContentLength"), answer.get("ServerSideEncryption", ""))


def matches_listed_etag(job: Job, stats: ContentStats | None = None) -> bool:
    """The local file against the listed ETag, in the form the store gave: S3's MD5 of the part MD5s plus -N,
    or the whole file's MD5 (small files, and multipart objects on some stores). Either way the file is read once."""
    assert job.remote is not None
    with open_regular_file(job.source) as handle:
        if "-" in job.remote.etag:
            etag = multipart_etag([part.md5 for part in file_parts(handle, job.source.size, stats)])
        else:
            etag = whole_file_md5(handle, job.source.size, stats)
    return is_same_content(job.remote, job.source.size, etag)


class Transfer:
    """Uploads jobs with one shared client; small files in one PUT, large ones in parallel parts."""

    def __init__(
        self,
        client: S3Client,
        sender: PutSender,
        settings: Settings,
        stop: threading.Event,
        on_bytes: Callable[[int], None],
        run_id: str,
    ) -> None:
        self.client = client
        self.sender = sender
        self.settings = settings
        self.run_id = run_id
        self.object_headers = {"content-type": CONTENT_TYPE, **settings.writes.headers()}
        self.unverifiable: Counter[str] = Counter()  # same-size files sent again for want of a checksum, by why
        self.head_refused = threading.Event()
        self.stop = stop
        self.on_bytes = on_bytes
        self.budget = BufferBudget(BUFFER_BUDGET)
        parts_in_flight = min(settings.concurrency, PARTS_IN_FLIGHT)
        self.part_slots = threading.Semaphore(parts_in_flight)
        self.part_pool = cf.ThreadPoolExecutor(parts_in_flight, thread_name_prefix="part")
        self.lock = threading.Lock()
        self.open_uploads: dict[str, str] = {}  # key -> multipart upload id, until completed or aborted

    def close(self) -> dict[str, str]:
        """Shut the part pool; after a signal, abort the multipart uploads still open, in bounded time. Returns the
        uploads that could not be aborted (key -> upload id)."""
        stopped = self.stop.is_set()
        self.part_pool.shutdown(wait=not stopped, cancel_futures=True)
        with self.lock:
            unfinished = dict(self.open_uploads)
        aborts = [threading.Thread(target=self.abort_quietly, args=item, daemon=True) for item in unfinished.items()]
        for thread in aborts:
            thread.start()
        deadline = time.monotonic() + ABORT_GRACE_SECONDS
        for thread in aborts:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.sender.close()
        with self.lock:
            return dict(self.open_uploads)

    def upload(self, job: Job, announce: Callable[[Job], None]) -> Outcome:
        """Upload one job, or skip it when unchanged; every error becomes a failed Outcome."""
        stats = ContentStats() if self.settings.records_content else None
        try:
            source_path = source_path_value(Path(os.path.relpath(job.source.path, self.settings.source)), self.run_id)
            if self.stop.is_set():
                raise Interrupted()
            if job.source.size < MULTIPART_THRESHOLD:
                status = self.upload_small_file(job, announce, stats, source_path)
            else:
                status = self.upload_large_file(job, announce, stats, source_path)
            ensure_unchanged(job.source)
            warning = SOURCE_PATH_LEFT_OUT if source_path is None and status == "uploaded" else ""
            return Outcome(
                job.source.path,
                status,
                job.key,
                job.source.size,
                stats=stats.summary() if stats else None,
                warning=warning,
            )
        except Exception as error:  # noqa: BLE001 - one bad file must never stop the others
            return Outcome(job.source.path, "failed", job.key, job.source.size, error=error)

    def skip_if_unchanged(self, job: Job) -> Outcome | None:
        """The skip check of a small file the bucket holds at the same size, in the calling thread: on a re-run most
        files end here, without the hand-off to a worker thread and back, which costs more than reading and hashing
        them. None when the file must go to a worker (changed, or unreadable: the worker reports why)."""
        if not job.may_be_unchanged or job.source.size >= MULTIPART_THRESHOLD:
            return None
        stats = ContentStats() if self.settings.records_content else None
        try:
            data = read_whole(job.source)
            if not is_same_content(job.remote, job.source.size, hashlib.md5(data).hexdigest()):
                return None
            ensure_unchanged(job.source)
        except (OSError, FileChanged):
            return None
        feed(stats, data)
        self.on_bytes(job.source.size)
        return Outcome(job.source.path, "skipped", job.key, job.source.size, stats=stats.summary() if stats else None)

    def upload_small_file(
        self, job: Job, announce: Callable[[Job], None], stats: ContentStats | None, source_path: str | None
    ) -> str:
        self.budget.acquire(job.source.size)
        try:
            data = read_whole(job.source)
            feed(stats, data)
            digest = hashlib.md5(data)
            unchanged = is_same_content(job.remote, job.source.size, digest.hexdigest())
            sha256 = "" if unchanged else hashlib.sha256(data).hexdigest()
            if unchanged or self.stored_checksum_matches(job, sha256):
                self.on_bytes(job.source.size)
                return "skipped"
            announce(job)
            headers = {**self.object_headers, **metadata_headers(lineage_metadata(sha256, self.run_id, source_path))}
            self.sender.put(job.key, data, digest.digest(), {}, headers)
            self.on_bytes(job.source.size)
            return "uploaded"
        finally:
            self.budget.release(job.source.size)

    def upload_large_file(
        self, job: Job, announce: Callable[[Job], None], stats: ContentStats | None, source_path: str | None
    ) -> str:
        if job.may_be_unchanged:
            if matches_listed_etag(job, stats):
                self.on_bytes(job.source.size)
                return "skipped"
            stats = None  # counted during the comparison; if the file changes after it, the upload fails
        sha256 = whole_file_sha256(job)
        if self.stored_checksum_matches(job, sha256):
            self.on_bytes(job.source.size)
            return "skipped"
        announce(job)
        self.put_multipart(job, stats, lineage_metadata(sha256, self.run_id, source_path))
        return "uploaded"

    def stored_checksum_matches(self, job: Job, sha256: str) -> bool:
        """For a same-size object whose ETag is not an MD5 of the file (SSE-KMS, some gateways, or a changed
        file): the SHA-256 stored in its metadata, read with a HEAD (which needs s3:GetObject)."""
        if not job.same_size_in_bucket:
            return False
        if self.head_refused.is_set():  # once refused, always: no round trip per file to hear it again
            self.count_unverifiable(HEAD_REFUSED)
            return False
        stored = read_stored(self.client, self.settings.bucket, job.key)
        if stored.refused:
            self.head_refused.set()
            self.count_unverifiable(HEAD_REFUSED)
        elif stored.sha256 is None and not job.may_be_unchanged:
            self.count_unverifiable(NO_CHECKSUM)
        return stored.sha256 == sha256 and stored.size == job.source.size

    def count_unverifiable(self, why: str) -> None:
        with self.lock:
            self.unverifiable[why] += 1

    def put_multipart(self, job: Job, stats: ContentStats | None, metadata: dict[str, str]) -> None:
        upload_id = self.client.create_multipart_upload(
            Bucket=self.settings.bucket,
            Key=job.key,
            ContentType=CONTENT_TYPE,
            Metadata=metadata,
            **self.settings.writes.parameters(),
        )["UploadId"]
        with self.lock:
            self.open_uploads[job.key] = upload_id
        try:
            parts, digests = self.send_parts(job, upload_id, stats)
            ensure_unchanged(job.source)
            self.complete(job, upload_id, parts, multipart_etag(digests), metadata[META_SHA256])
            with self.lock:
                del self.open_uploads[job.key]
        except BaseException:
            self.abort_quietly(job.key, upload_id)
            raise

    def complete(self, job: Job, upload_id: str, parts: list[CompletedPartTypeDef], etag: str, sha256: str) -> None:
        """CompleteMultipartUpload, idempotent: if a lost answer made botocore retry it and the retry finds the
        upload gone, the object in the bucket is checked: its listing (size and the locally computed ETag), else,
        where ETags are no MD5s (SSE-KMS), the SHA-256 it carries (HEAD)."""
        try:
            self.client.complete_multipart_upload(
                Bucket=self.settings.bucket, Key=job.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in COMPLETED_ALREADY_CODES:
                raise
            listed = list_remote_objects(self.client, self.settings.bucket, job.key).get(job.key)
            if is_same_content(listed, job.source.size, etag):
                return
            stored = read_stored(self.client, self.settings.bucket, job.key) if listed else StoredObject()
            if stored.sha256 != sha256 or stored.size != job.source.size:
                raise

    def send_parts(
        self, job: Job, upload_id: str, stats: ContentStats | None
    ) -> tuple[list[CompletedPartTypeDef], list[bytes]]:
        """Hash each part as the file is read once, then stream it from the file: memory stays flat at any size.
        Returns the parts as CompleteMultipartUpload lists them, and their MD5 digests."""
        futures: list[cf.Future[CompletedPartTypeDef]] = []
        digests: list[bytes] = []
        try:
            with open_regular_file(job.source) as handle:
                for part in file_parts(handle, job.source.size, stats):
                    if self.stop.is_set():
                        raise Interrupted("not sent: the run was interrupted during the upload, which was aborted")
                    self.part_slots.acquire()
                    futures.append(self.part_pool.submit(self.send_part, upload_id, job, part))
                    digests.append(part.md5)
            return [future.result() for future in futures], digests
        finally:
            cf.wait(futures)

    def send_part(self, upload_id: str, job: Job, part: FilePart) -> CompletedPartTypeDef:
        query = {"partNumber": str(part.number), "uploadId": upload_id}
        try:
            with FileSlice(job.source, part.offset, part.length) as body:
                etag = self.sender.put(job.key, body, part.md5, query)
        finally:
            self.part_slots.release()
        self.on_bytes(part.length)
        return {"PartNumber": part.number, "ETag": etag}

    def abort_quietly(self, key: str, upload_id: str) -> None:
        # The file is reported as failed either way; if the abort fails too, a lifecycle rule cleans up.
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(Bucket=self.settings.bucket, Key=key, UploadId=upload_id)
            with self.lock:
                self.open_uploads.pop(key, None)
