"""Uploads of jobs: each file compared with its object (skipped when proven the same), written by the engine, and
the write proven by the store's answer."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from s3_landing.config import Settings
from s3_landing.discovery import MIB, MULTIPART_THRESHOLD, Job, part_size_for
from s3_landing.errors import EngineError, FileChanged, Interrupted, ObjectKept, S3Failure, StoredBytesDiffer
from s3_landing.objects import lineage_metadata, source_path_value
from s3_landing.transfer.destination import Destination
from s3_landing.transfer.engine import (
    LEGACY_OBSTORE,
    Written,
    object_attributes,
    obstore_cannot_write,
    put_bytes,
    put_document,
    put_stream,
)
from s3_landing.transfer.files import (
    BufferBudget,
    ContentStats,
    Outcome,
    Receipt,
    Status,
    ensure_unchanged,
    feed,
    open_regular_file,
    read_whole,
)
from s3_landing.transfer.proof import (
    EVERY_FORM,
    Comparison,
    Digests,
    PartHasher,
    StoredObject,
    Wanted,
    compare_listed,
    compare_stored,
    digests_of_bytes,
    digests_of_file,
    write_proof,
)
from s3_landing.transfer.unchanged import Read

if TYPE_CHECKING:
    from obstore.store import S3Store


CONTENT_TYPE = "text/csv"
BUFFER_BUDGET = 64 * MIB  # bytes of small files held in memory at once, across all threads (parts are streamed)
# Parts in flight across all large files: LARGE_FILES_AT_ONCE files, PARTS_AT_ONCE parts each. More only adds server
# load (on 280 MB against SeaweedFS, 8 parts in flight took 3.7 s and 64 took 4.8 s); memory holds about
# (PARTS_AT_ONCE + 2) parts per file.
LARGE_FILES_AT_ONCE = 2
PARTS_AT_ONCE = 4
# A CompleteMultipartUpload retried after its answer was lost may find the upload already completed.
COMPLETED_ALREADY_CODES = ("NoSuchUpload", "InvalidPart")
HEAD_REFUSED = "head refused"  # why same-size files could not be compared, or writes proven
NOT_PROVEN = "not proven"
SENT_WITHOUT_PROOF = "sent without proof"
INTERRUPTED_MID_UPLOAD = "not sent: the run was interrupted during the upload, which was aborted"
SOURCE_PATH_LEFT_OUT = (
    "its path is too long for the object's metadata (S3 keeps 2 KB of user metadata): uploaded without "
    "x-amz-meta-source-path"
)


class UploadStream:
    """The file as obstore reads it for a multipart upload: every byte hashed on its way (the parts' MD5s and
    SHA-256s, to prove the write), and a stop or a changed file ends the upload, which obstore then aborts."""

    def __init__(
        self, job: Job, handle: BinaryIO, wanted: Wanted, stop: threading.Event, on_bytes: Callable[[int], None]
    ) -> None:
        self.job = job
        self.handle = handle
        self.stop = stop
        self.on_bytes = on_bytes
        self.hasher = PartHasher(job.source.size, wanted)
        self.position = 0
        self.failure: BaseException | None = None  # what ended the upload here: obstore raises its own error

    def read(self, size: int = -1) -> bytes:
        try:
            return self.next_block(size)
        except (OSError, FileChanged, Interrupted) as error:
            self.failure = error
            raise

    def next_block(self, size: int) -> bytes:
        if self.stop.is_set():
            raise Interrupted(INTERRUPTED_MID_UPLOAD)
        remaining = self.job.source.size - self.position
        if not remaining:
            if self.handle.read(1):
                raise FileChanged("grew while it was read")
            ensure_unchanged(self.job.source)  # the last moment before obstore completes the upload
            return b""
        block = self.handle.read(remaining if size < 0 else min(size, remaining))
        if not block:
            raise FileChanged("became shorter while it was read")
        self.position += len(block)
        self.hasher.update(block)
        self.on_bytes(len(block))
        return block

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) not in ((0, os.SEEK_CUR), (self.position, os.SEEK_SET)):
            raise OSError("an upload stream is read forward only")
        return self.position

    def tell(self) -> int:
        return self.position


class Transfer:
    """Uploads jobs into one destination; small files in one PUT, large ones in parallel parts."""

    def __init__(
        self,
        destination: Destination,
        settings: Settings,
        stop: threading.Event,
        on_bytes: Callable[[int], None],
        run_id: str,
    ) -> None:
        self.destination = destination
        self.store: S3Store = destination.store
        self.settings = settings
        self.run_id = run_id
        self.stop = stop
        self.on_bytes = on_bytes
        self.unverifiable: Counter[str] = Counter()  # files sent again, or sent, without proof, by why
        self.head_refused = threading.Event()
        self.kms_found = threading.Event()  # an object written this run turned out KMS-encrypted (bucket default)
        self.budget = BufferBudget(BUFFER_BUDGET)
        self.large_slots = threading.Semaphore(LARGE_FILES_AT_ONCE)
        self.lock = threading.Lock()
        self.large_started: dict[str, float] = {}  # key -> when its upload began (local clock), for the clean-up
        self.tags = dict(settings.writes.tags)
        self.sends_checksums = destination.sends_checksums

    def upload(self, job: Job, announce: Callable[[Job], None]) -> Outcome:
        """Upload one job, or skip it when proven unchanged; every error becomes a failed Outcome."""
        stats = ContentStats() if self.settings.output.records_content else None
        try:
            source_path = source_path_value(
                Path(os.path.relpath(job.source.path, self.settings.source.folder)), self.run_id
            )
            if self.stop.is_set():
                raise Interrupted()
            if job.source.size < MULTIPART_THRESHOLD:
                status, receipt = self.upload_small_file(job, announce, stats, source_path)
            else:
                status, receipt = self.upload_large_file(job, announce, stats, source_path)
            ensure_unchanged(job.source)
            warning = SOURCE_PATH_LEFT_OUT if source_path is None and status is Status.UPLOADED else ""
            summary = stats.summary() if stats else None
            outcome = Outcome(job.source.path, status, job.key, job.source.size, stats=summary, receipt=receipt)
            return replace(outcome, warning=warning)
        except Exception as error:  # noqa: BLE001 - one bad file must never stop the others
            return Outcome(job.source.path, Status.FAILED, job.key, job.source.size, error=error)

    def skip_if_unchanged(self, job: Job, read: Read | None) -> Outcome | None:
        """The skip of a small file whose listed ETag proves it, from its skip check's read (unchanged.SkipChecks):
        on a re-run most files end here, without a worker thread. None when the file must go to a worker (changed,
        unproven, or unreadable: the worker says why)."""
        if read is None:
            return None
        listed = compare_listed(job.remote, Digests(job.source.size, read.md5))
        if listed is None or listed.status != "same":
            return None
        self.on_bytes(job.source.size)
        receipt = Receipt(job.remote.etag if job.remote else "", proof="etag")
        return Outcome(job.source.path, Status.SKIPPED, job.key, job.source.size, stats=read.stats, receipt=receipt)

    def upload_small_file(
        self, job: Job, announce: Callable[[Job], None], stats: ContentStats | None, source_path: str | None
    ) -> tuple[Status, Receipt]:
        self.budget.acquire(job.source.size)
        try:
            data = read_whole(job.source)
            feed(stats, data)
            digests = digests_of_bytes(data)
            skipped = self.skip_when_same(job, digests)
            if skipped is not None:
                return Status.SKIPPED, skipped
            announce(job)
            metadata = lineage_metadata(digests.sha256, self.run_id, source_path)
            return self.write_proven(job, lambda: (self.write_small(job, data, metadata), digests))
        finally:
            self.budget.release(job.source.size)

    def upload_large_file(
        self, job: Job, announce: Callable[[Job], None], stats: ContentStats | None, source_path: str | None
    ) -> tuple[Status, Receipt]:
        # One read before the upload: the SHA-256 its metadata carries (fixed when the upload is created), and the
        # forms the bucket's same-size object is compared with.
        listed = job.remote.etag if job.same_size_in_bucket and job.remote else ""
        wanted = Wanted(md5=bool(listed) and "-" not in listed, part_md5s="-" in listed)
        digests = digests_of_file(job.source, wanted, stats)
        skipped = self.skip_when_same(job, digests)
        if skipped is not None:
            return Status.SKIPPED, skipped
        announce(job)
        metadata = lineage_metadata(digests.sha256, self.run_id, source_path)
        return self.write_proven(job, lambda: self.write_large(job, metadata))

    def skip_when_same(self, job: Job, digests: Digests) -> Receipt | None:
        """A receipt when the bucket holds this file's bytes under its key; None when the file must be sent. With
        --no-overwrite, an object there that is not proven to be this file's bytes is kept: the file fails."""
        keep = self.settings.writes.no_overwrite
        if not job.same_size_in_bucket and not (keep and job.remote is not None):
            return None
        comparison = self.compare(job, digests)
        if comparison.status == "same":
            self.on_bytes(job.source.size)
            return Receipt(job.remote.etag if job.remote else "", proof=comparison.proof)
        if keep:
            raise ObjectKept(self.kept(job, comparison))
        if comparison.status == "unverifiable":
            self.count_unverifiable(HEAD_REFUSED if self.head_refused.is_set() else NOT_PROVEN)
        return None

    def kept(self, job: Job, comparison: Comparison) -> str:
        """Why --no-overwrite keeps the object at the file's key, and how to go on."""
        url = f"s3://{self.settings.target.bucket}/{job.key}"
        if comparison.status == "unverifiable":
            held = f"{url} cannot be proven to hold this file's bytes or other ones ({comparison.why})"
        else:
            held = f"{url} holds other bytes ({comparison.why})"
        return (
            f"{held}; the object is kept (--no-overwrite): land the file under another --date, or remove the "
            "object, and run again"
        )

    def compare(self, job: Job, digests: Digests) -> Comparison:
        """The listing first; then a HEAD (which needs s3:GetObject), unless one was refused already this run."""
        listed = compare_listed(job.remote, digests)
        if listed is not None:
            return listed
        if self.head_refused.is_set():  # once refused, always: no round trip per file to hear it again
            return Comparison("unverifiable", "reading the object (HEAD) was refused")
        stored = self.read_stored(job.key)
        if stored.refused:
            self.head_refused.set()
        if job.source.size >= MULTIPART_THRESHOLD:  # the one read so far took only what the listing asked for
            digests = digests_of_file(job.source, EVERY_FORM)
        return compare_stored(stored, digests, self.destination.checks_checksums)

    def read_stored(self, key: str) -> StoredObject:
        from s3_landing.transfer.botocore_calls import read_stored  # botocore: imported at the run's first HEAD

        return read_stored(self.destination.client, self.settings.target.bucket, key)

    def count_unverifiable(self, why: str) -> None:
        with self.lock:
            self.unverifiable[why] += 1

    def write_proven(self, job: Job, write: Callable[[], tuple[Written, Digests]]) -> tuple[Status, Receipt]:
        """Write, then prove the stored bytes by the store's answer. A write the answer does not prove is sent once
        more; a second one fails the file. Where ETags are no MD5s (KMS encryption) and the store checks no
        checksum, nothing can prove a write: the file counts as sent without proof. With --no-overwrite a write
        that finds the key taken (412) is settled by comparing the object with the file."""
        destination, keep = self.destination, self.settings.writes.no_overwrite
        for attempt in (1, 2):
            try:
                written, sent = self.write_retrying(write)
            except EngineError as error:
                if not (keep and error.failure.status == 412):
                    raise
                return Status.SKIPPED, self.already_there(job)
            proof = write_proof(written.etag, sent, destination.sends_checksums, destination.checks_checksums)
            if proof or self.etags_are_no_md5s(job):
                if not proof:
                    self.count_unverifiable(SENT_WITHOUT_PROOF)
                checksum = sent.checksum if destination.sends_checksums else ""
                return Status.UPLOADED, Receipt(written.etag, written.version_id, checksum, proof)
            if keep or attempt == 2:
                break
        url = f"s3://{self.settings.target.bucket}/{job.key}"
        fix = f"--no-overwrite keeps it: remove the object ({url}) and run again" if keep else "run again"
        raise StoredBytesDiffer(
            f"the store's ETag {written.etag} is not this file's ({sent.multipart_etag or sent.md5}) after "
            f"{attempt} upload{'s' if attempt > 1 else ''}: the bytes stored under the key differ from the file; {fix}"
        )

    def etags_are_no_md5s(self, job: Job) -> bool:
        """KMS encryption, from --sse or the bucket's default, which the write probe's answer names. A run started
        without the probe learns it from the first object whose write its ETag did not prove (a HEAD)."""
        if self.destination.kms or self.kms_found.is_set():
            return True
        if self.destination.write_proven or not self.read_stored(job.key).etag_is_no_md5:
            return False
        self.kms_found.set()
        return True

    def already_there(self, job: Job) -> Receipt:
        """A conditional write refused (412): the key was taken since the listing, by another run or by this
        write itself (an answer lost and the request sent again). The same bytes: landed; other bytes: kept."""
        stored = self.read_stored(job.key)
        comparison = compare_stored(stored, digests_of_file(job.source, EVERY_FORM), self.destination.checks_checksums)
        if comparison.status != "same":
            raise ObjectKept(self.kept(job, replace(comparison, why=f"written since the listing; {comparison.why}")))
        self.on_bytes(job.source.size)
        return Receipt(stored.etag, None, proof=comparison.proof, already_there=True)

    def write_retrying(self, write: Callable[[], tuple[Written, Digests]]) -> tuple[Written, Digests]:
        """write, sent again after a connection failure that obstore 0.8 does not retry itself (README,
        Development); obstore 0.11+ retries those, and every write, on its own."""
        attempt = 1
        while True:
            try:
                return write()
            except EngineError as error:
                again = (LEGACY_OBSTORE and error.is_transport_failure) or error.failure.status == 409
                if not again or attempt >= self.settings.run.max_attempts:  # 409: a conditional write in progress
                    raise
            if self.stop.wait(min(0.1 * 2**attempt, 5.0)):
                raise Interrupted("not sent: the run was interrupted while a failed upload waited to be sent again")
            attempt += 1

    def write_small(self, job: Job, data: bytes, metadata: dict[str, str]) -> Written:
        writes = self.settings.writes
        if obstore_cannot_write(job.key, writes):
            from s3_landing.transfer import botocore_writes

            parameters = botocore_writes.object_parameters(CONTENT_TYPE, metadata, writes)
            if writes.no_overwrite:
                parameters["IfNoneMatch"] = "*"
            return self.by_botocore(
                lambda: botocore_writes.put_object(
                    self.destination.client,
                    self.settings.target.bucket,
                    job.key,
                    data,
                    parameters,
                    self.sends_checksums,
                )
            )
        attributes = object_attributes(CONTENT_TYPE, writes.storage_class, metadata)
        return put_bytes(self.store, job.key, data, attributes, self.tags, create=writes.no_overwrite)

    def write_large(self, job: Job, metadata: dict[str, str]) -> tuple[Written, Digests]:
        """A multipart upload, at most LARGE_FILES_AT_ONCE at a time; the digests of the bytes it read and sent. One
        whose completion's answer was lost (a broken connection, or a retry that found the upload gone) is settled
        by the object in the bucket."""
        with self.large_slots, open_regular_file(job.source) as handle:
            stream = UploadStream(job, handle, self.digests_to_send(), self.stop, self.on_bytes)
            with self.lock:
                self.large_started[job.key] = began = time.time()
            try:
                written = self.send_stream(job, stream, metadata)
            except EngineError as error:
                if stream.failure is not None:  # obstore reports a failed read as its own error
                    self.abort_leftover(job.key, began, stream.failure)
                    raise stream.failure from None
                if not (error.is_transport_failure or error.failure.code in COMPLETED_ALREADY_CODES):
                    self.abort_leftover(job.key, began, error)
                    raise
                written = self.settle_completion(job, error, began)
            return written, stream.hasher.result()

    def digests_to_send(self) -> Wanted:
        """What a multipart upload hashes on its way: the parts' MD5s to prove it by its ETag, unless the store
        checks the checksums sent (asked once a run, now); the parts' SHA-256s for the manifest's receipt."""
        checked = self.sends_checksums and self.destination.checks_checksums()
        return Wanted(sha256=False, part_md5s=not checked, part_sha256s=self.settings.output.records_content)

    def abort_leftover(self, key: str, began: float, failure: BaseException) -> None:
        """obstore aborts a failed multipart upload only when the failure comes before its last part is sent (and
        obstore 0.8 not even then): the upload of key this write began is aborted here if it is still open. After a
        signal the run's clean-up does it, in bounded time."""
        if isinstance(failure, Interrupted):
            return
        from botocore.exceptions import BotoCoreError, ClientError

        from s3_landing.transfer.botocore_calls import abort_ours

        with contextlib.suppress(BotoCoreError, ClientError):
            abort_ours(self.destination, self.settings.target.bucket, {key: began}, [key])

    def send_stream(self, job: Job, stream: UploadStream, metadata: dict[str, str]) -> Written:
        writes, part_size = self.settings.writes, part_size_for(job.source.size)
        # obstore has no conditional multipart upload (object_store#289): with --no-overwrite botocore's calls
        # complete it with If-None-Match, parts streamed the same way
        if writes.no_overwrite or obstore_cannot_write(job.key, writes):
            from s3_landing.transfer import botocore_writes

            parameters = botocore_writes.object_parameters(CONTENT_TYPE, metadata, writes)
            client, bucket, checksums = self.destination.client, self.settings.target.bucket, self.sends_checksums
            return self.by_botocore(
                lambda: botocore_writes.put_multipart(
                    client,
                    bucket,
                    job.key,
                    stream,
                    part_size,
                    PARTS_AT_ONCE,
                    parameters,
                    checksums,
                    if_none_match=writes.no_overwrite,
                )
            )
        attributes = object_attributes(CONTENT_TYPE, writes.storage_class, metadata)
        return put_stream(self.store, job.key, stream, part_size, PARTS_AT_ONCE, attributes, self.tags)

    @staticmethod
    def by_botocore(write: Callable[[], Written]) -> Written:
        """botocore's write, its failure read as the engine's (botocore retried it already)."""
        from botocore.exceptions import ClientError

        try:
            return write()
        except ClientError as error:
            details = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise EngineError(S3Failure(status, details.get("Code", ""), details.get("Message", ""))) from error

    def settle_completion(self, job: Job, error: EngineError, began: float) -> Written:
        """CompleteMultipartUpload is idempotent: when its answer was lost, the object in the bucket is the proof,
        compared with every digest form of the file (read again: this is rare)."""
        stored = self.read_stored(job.key)
        digests = digests_of_file(job.source, EVERY_FORM)
        if compare_stored(stored, digests, self.destination.checks_checksums).status != "same":
            self.abort_leftover(job.key, began, error)
            raise error
        return Written(stored.etag, None)


def write_document(destination: Destination, settings: Settings, key: str, handle: BinaryIO, content_type: str) -> None:
    """A document of ours (the run manifest), with the objects' write options."""
    writes = settings.writes
    if obstore_cannot_write(key, writes):
        from s3_landing.transfer import botocore_writes

        parameters = botocore_writes.object_parameters(content_type, {}, writes)
        destination.client.put_object(Bucket=settings.target.bucket, Key=key, Body=handle, **parameters)
    else:
        attributes = object_attributes(content_type, writes.storage_class, {})
        put_document(destination.store, key, handle, attributes, dict(writes.tags))
