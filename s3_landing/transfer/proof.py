"""When an object counts as a local file's bytes: the one rule behind skips, the check after each write, and
--check. A checksum we computed is a claim; proof is what the store computed or checked:

- an ETag equal to an MD5 form of the file: the file's MD5, the multipart ETag at our part size (MD5 of the part
  MD5s, -N), or the whole file's MD5 some stores give multipart objects;
- the store's own x-amz-checksum-sha256 (full, or composite -N at our part size) equal to the file's, where the store
  is known to check checksums: it refused a wrong one this run, or the object is encrypted with KMS or a customer key
  (S3 does not give such objects an MD5 ETag, and the stores that offer that encryption check checksums). Stores
  that keep a client's checksum unchecked (rclone serve s3, seen here) echo it back, so their checksum proves nothing.

x-amz-meta-sha256 is lineage, never proof. Its presence only says the object came from this program, so that a
multipart ETag is at our part size and a mismatch is a difference (never a sameness)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from s3_landing.discovery import MIB, RemoteObject, SourceFile, part_size_for
from s3_landing.transfer.files import ContentStats, feed, file_chunks, open_regular_file

Status = Literal["same", "different", "unverifiable"]
UNREADABLE_ENCRYPTION = ("aws:kms", "aws:kms:dsse")  # S3: objects under these (or SSE-C) have no MD5 ETag


def md5_etag(digests: Iterable[bytes]) -> str:
    parts = list(digests)
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def composite_sha256(digests: Iterable[bytes]) -> str:
    """S3's COMPOSITE checksum of a multipart object: SHA-256 of the parts' SHA-256s, base64, -N."""
    parts = list(digests)
    return f"{base64.b64encode(hashlib.sha256(b''.join(parts)).digest()).decode()}-{len(parts)}"


@dataclass
class Digests:
    """What a local file's bytes hash to, in every form an object's ETag or checksum may take here."""

    size: int
    md5: str = ""  # the whole file's, hex
    sha256: str = ""  # the whole file's, hex
    part_md5s: list[bytes] = field(default_factory=list)  # at part_size_for(size), for multipart uploads
    part_sha256s: list[bytes] = field(default_factory=list)

    @property
    def checksum(self) -> str:
        """x-amz-checksum-sha256 as the store reports it: full for a single PUT, composite for multipart."""
        if self.part_sha256s:
            return composite_sha256(self.part_sha256s)
        return base64.b64encode(bytes.fromhex(self.sha256)).decode() if self.sha256 else ""

    @property
    def multipart_etag(self) -> str:
        return md5_etag(self.part_md5s) if self.part_md5s else ""

    def matches_etag(self, etag: str) -> bool:
        return bool(etag) and etag in (self.md5, self.multipart_etag)

    def matches_checksum(self, checksum: str) -> bool:
        full = base64.b64encode(bytes.fromhex(self.sha256)).decode() if self.sha256 else ""
        return bool(checksum) and checksum in (full, self.checksum)


@dataclass(frozen=True)
class Wanted:
    """The digests a read computes. Each is a pass over the bytes (here, per 280 MB: MD5 0.5 s of CPU, SHA-256
    0.2 s), and on 2 cores shared with the server that CPU is upload time, so a read takes only what it needs."""

    sha256: bool = True  # the whole file's
    md5: bool = False  # the whole file's
    part_md5s: bool = False
    part_sha256s: bool = False


EVERY_FORM = Wanted(sha256=True, md5=True, part_md5s=True, part_sha256s=True)


class PartHasher:
    """The digests wanted, fed chunk by chunk in order (parts at the file's part size), and the manifest's content
    details when stats are given."""

    def __init__(self, size: int, wanted: Wanted, stats: ContentStats | None = None) -> None:
        self.digests = Digests(size)
        self.wanted = wanted
        self.sha256 = hashlib.sha256() if wanted.sha256 else None
        self.md5 = hashlib.md5() if wanted.md5 else None
        self.stats = stats
        self.part_size = part_size_for(size)
        self.parts = wanted.part_md5s or wanted.part_sha256s
        self.new_part()

    def new_part(self) -> None:
        self.part_md5 = hashlib.md5() if self.wanted.part_md5s else None
        self.part_sha256 = hashlib.sha256() if self.wanted.part_sha256s else None
        self.left_in_part = self.part_size

    def update(self, chunk: bytes) -> None:
        for whole in (self.sha256, self.md5):
            if whole is not None:
                whole.update(chunk)
        feed(self.stats, chunk)
        view = memoryview(chunk) if self.parts else memoryview(b"")
        while view:
            taken, view = view[: self.left_in_part], view[self.left_in_part :]
            for digest in (self.part_md5, self.part_sha256):
                if digest is not None:
                    digest.update(taken)
            self.left_in_part -= len(taken)
            if not self.left_in_part:
                self.close_part()

    def close_part(self) -> None:
        if self.part_md5 is not None:
            self.digests.part_md5s.append(self.part_md5.digest())
        if self.part_sha256 is not None:
            self.digests.part_sha256s.append(self.part_sha256.digest())
        self.new_part()

    def result(self) -> Digests:
        if self.parts and self.left_in_part != self.part_size:
            self.close_part()
        self.digests.sha256 = self.sha256.hexdigest() if self.sha256 is not None else ""
        self.digests.md5 = self.md5.hexdigest() if self.md5 is not None else ""
        return self.digests


def digests_of_bytes(data: bytes) -> Digests:
    return Digests(len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def digests_of_file(source: SourceFile, wanted: Wanted, stats: ContentStats | None = None) -> Digests:
    """One streamed read of a file (1 MiB blocks: memory stays flat) for the digests wanted."""
    hasher = PartHasher(source.size, wanted, stats)
    with open_regular_file(source) as handle:
        for block in file_chunks(handle.read, source.size, MIB):
            hasher.update(block)
    return hasher.result()


@dataclass(frozen=True)
class Comparison:
    """same (with the proof: "etag" or "checksum"), different, or unverifiable, each with why."""

    status: Status
    why: str = ""
    proof: str = ""


@dataclass(frozen=True)
class StoredObject:
    """What a HEAD (checksum mode on) tells of an object, or why it tells nothing: refused (no s3:GetObject),
    missing (gone since the listing), or another failure."""

    size: int | None = None
    etag: str = ""
    checksum: str = ""  # x-amz-checksum-sha256 as the store keeps it
    encryption: str = ""
    customer_key: bool = False
    lineage: bool = False  # carries x-amz-meta-sha256: written by upload_s3, whose part size the file's size fixes
    refused: bool = False
    missing: bool = False
    failure: str = ""

    @property
    def etag_is_no_md5(self) -> bool:
        return self.customer_key or self.encryption in UNREADABLE_ENCRYPTION


def compare_listed(remote: RemoteObject | None, digests: Digests) -> Comparison | None:
    """The listing decides when the object is missing, has another size, or lists an ETag that proves it; None when
    only a HEAD can tell."""
    if remote is None:
        return Comparison("different", "no object under its key")
    if remote.size != digests.size:
        return Comparison("different", f"the object has {remote.size} bytes")
    if digests.matches_etag(remote.etag):
        return Comparison("same", proof="etag")
    return None


def compare_stored(stored: StoredObject, digests: Digests, checks_checksums: Callable[[], bool]) -> Comparison:
    """The object as a HEAD showed it against the file. checks_checksums tells (asked only when it matters) whether
    the store refused a wrong checksum this run."""
    if stored.missing:
        return Comparison("different", "the object was deleted after the listing")
    if stored.refused:
        reason = "its ETag is not this file's MD5 and reading the object (HEAD) was refused: grant s3:GetObject"
        return Comparison("unverifiable", reason)
    if stored.failure:
        return Comparison("unverifiable", stored.failure)
    if stored.size != digests.size:
        return Comparison("different", f"the object has {stored.size} bytes")
    if digests.matches_etag(stored.etag):
        return Comparison("same", proof="etag")
    if stored.checksum and (stored.etag_is_no_md5 or checks_checksums()):
        if digests.matches_checksum(stored.checksum):
            return Comparison("same", proof="checksum")
        return Comparison("different", "the store's SHA-256 checksum of the object differs")
    if stored.etag and "-" not in stored.etag and not stored.etag_is_no_md5:
        return Comparison("different", "its ETag, the MD5 of the bytes stored, is not this file's MD5")
    if stored.etag and stored.lineage and not stored.etag_is_no_md5:  # never "same": a forged claim only re-sends
        return Comparison("different", "its multipart ETag, at the part size this program uses, is not this file's")
    why = "its ETag is no MD5 of this file (KMS encryption, or parts of another size) and the store keeps no " + (
        "checksum it checked" if stored.checksum else "checksum"
    )
    return Comparison("unverifiable", why)


def write_proof(etag: str, digests: Digests, checksum_sent: bool, checks_checksums: Callable[[], bool]) -> str:
    """How the answer to our own write proves the stored bytes: "etag", "checksum" (the store checks the
    x-amz-checksum-sha256 we sent, and accepted the write), or "" when it does not."""
    if digests.matches_etag(etag):
        return "etag"
    if checksum_sent and checks_checksums():
        return "checksum"
    return ""
